package proxy

// Bad input gets a clear answer and loses nothing: every case answers with
// the right status, the next request is served, and no descriptor leaks.

import (
	"bufio"
	"io"
	"net"
	nethttp "net/http"
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/internal/testhttp"
)

// scriptedBackend behaves by request path: /ok answers, /echo echoes the
// body, /badchunk sends broken chunked framing, /close closes without a
// response, /hang never answers.
func scriptedBackend(t *testing.T) *testhttp.Backend {
	return testhttp.NewBackend(t, func(b *testhttp.Backend, c net.Conn, id int64) {
		br := bufio.NewReader(c)
		for {
			req, err := nethttp.ReadRequest(br)
			if err != nil {
				return
			}
			body, err := io.ReadAll(req.Body)
			if err != nil {
				return
			}
			b.Record(testhttp.Request{Method: req.Method, URI: req.RequestURI, Header: req.Header, Body: body, Conn: id})
			switch req.URL.Path {
			case "/badchunk":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
				io.Copy(io.Discard, br)
				return
			case "/close":
				return
			case "/hang":
				io.Copy(io.Discard, br) // until the proxy gives up
				return
			case "/echo":
				testhttp.Respond(c, 200, "", string(body))
			default:
				testhttp.Respond(c, 200, "", "ok "+req.URL.Path)
			}
			if req.Close {
				return
			}
		}
	})
}

// badCase sends raw (in a goroutine: the server may answer before reading
// all of it) and expects status, a body containing want, and a close.
type badCase struct {
	name   string
	raw    string
	status int
	want   string
}

func TestBadInput(t *testing.T) {
	be := scriptedBackend(t)
	ts := startProxy(t, []string{be.Addr}, "server_retry = 1000", testhttp.ServiceKeys(
		"persist_backend = false",
		`backend_timeout = "300ms"`,
	))
	addr := ts.addr()
	testhttp.MustGet(t, addr, "/warm")
	be.WaitOpen(t, 0)
	base := testhttp.FDCount(t)

	cases := []badCase{
		{"malformed request line", "GET /x HTTP/1.1 junk\r\nHost: t\r\n\r\n", 400, ""},
		{"not http", "hello there\r\n\r\n", 400, ""},
		{"head too large", "GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + strings.Repeat("a", 120<<10) + "\r\n\r\n", 431, ""},
		{"too many headers", "GET / HTTP/1.1\r\nHost: t\r\n" + strings.Repeat("X-A: b\r\n", 300) + "\r\n", 431, ""},
		{"uri too long", "GET /" + strings.Repeat("u", 20<<10) + " HTTP/1.1\r\nHost: t\r\n\r\n", 414, ""},
		{"content-length with transfer-encoding", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, ""},
		{"differing content-lengths", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400, ""},
		{"negative content-length", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", 400, "Content-Length < 0"},
		{"bad chunk from client", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400, ""},
		{"bad chunk from backend", "GET /badchunk HTTP/1.1\r\nHost: t\r\n\r\n", 502, ""},
		{"backend closes without response", "GET /close HTTP/1.1\r\nHost: t\r\n\r\n", 502, ""},
		{"backend never answers", "GET /hang HTTP/1.1\r\nHost: t\r\n\r\n", 504, ""},
		{"http/2.0", "GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testhttp.Dial(t, addr)
			go io.WriteString(c.NC, tc.raw)
			resp, body := c.Read(strings.SplitN(tc.raw, " ", 2)[0])
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%q)", resp.StatusCode, tc.status, body)
			}
			if !strings.Contains(body, tc.want) {
				t.Fatalf("body %q does not contain %q", body, tc.want)
			}
			c.ExpectClosed()
			c.NC.Close()
			if got := testhttp.MustGet(t, addr, "/next"); got != "ok /next" {
				t.Fatalf("next request: %q", got)
			}
			be.WaitOpen(t, 0)
			testhttp.WaitFDs(t, base)
		})
	}

	t.Run("client leaves mid-body", func(t *testing.T) {
		c := testhttp.Dial(t, addr)
		c.Send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n" + strings.Repeat("x", 100<<10))
		be.WaitOpen(t, 1) // the request reached a backend
		c.NC.Close()
		be.WaitOpen(t, 0) // and that backend connection was let go
		testhttp.MustGet(t, addr, "/next")
		testhttp.WaitFDs(t, base)
	})

	t.Run("client leaves mid-chunked-body", func(t *testing.T) {
		c := testhttp.Dial(t, addr)
		// Past buffer_backend_connect (100k), so that a backend is asked for.
		c.Send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n20000\r\n" + strings.Repeat("x", 110<<10))
		be.WaitOpen(t, 1)
		c.NC.(*net.TCPConn).CloseWrite()
		c.ExpectClosed()
		c.NC.Close()
		be.WaitOpen(t, 0)
		testhttp.MustGet(t, addr, "/next")
		testhttp.WaitFDs(t, base)
	})

	t.Run("client leaves while waiting", func(t *testing.T) {
		c := testhttp.Dial(t, addr)
		c.Send("GET /hang HTTP/1.1\r\nHost: t\r\n\r\n")
		be.WaitOpen(t, 1)
		c.NC.Close()
		be.WaitOpen(t, 0) // at the latest after backend_timeout
		testhttp.MustGet(t, addr, "/next")
		testhttp.WaitFDs(t, base)
	})
}

// TestNoNodeReachable: every node refuses: 503 with Retry-After; once a
// node is reachable the next request is served.
func TestNoNodeReachable(t *testing.T) {
	dead1, dead2 := testhttp.DeadAddr(t), testhttp.DeadAddr(t)
	ts := startProxy(t, []string{dead1, dead2}, "", testhttp.ServiceKeys("persist_backend = false"))
	addr := ts.addr()
	base := testhttp.FDCount(t)
	for i := 0; i < 3; i++ {
		resp, body := testhttp.Get(t, addr, "/x")
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("status %d, Retry-After %q, body %q", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	testhttp.WaitFDs(t, base)
	// An empty pool answers the same.
	ts.pool.SetNodes(nil)
	if resp, _ := testhttp.Get(t, addr, "/x"); resp.StatusCode != 503 {
		t.Fatalf("empty pool: status %d", resp.StatusCode)
	}
	good := testhttp.OKBackend(t, "good")
	ts.pool.SetNodes([]string{dead1, good.Addr})
	if body := testhttp.MustGet(t, addr, "/x"); !strings.HasPrefix(body, "good ") {
		t.Fatalf("body %q", body)
	}
}

// TestClientTimeouts: a client that stops mid-head gets 408 after
// header_timeout; an idle keep-alive client is closed after
// persist_client_idle_timeout.
func TestClientTimeouts(t *testing.T) {
	be := testhttp.OKBackend(t, "b")
	ts := startProxy(t, []string{be.Addr}, "", testhttp.ServiceKeys("persist_backend = false",
		`header_timeout = "300ms"`, `persist_client_idle_timeout = "300ms"`))
	addr := ts.addr()
	base := testhttp.FDCount(t)

	c := testhttp.Dial(t, addr)
	c.Send("GET / HTTP/1.1\r\nHost: t\r\n")
	start := time.Now()
	resp, _ := c.Read("GET")
	if resp.StatusCode != 408 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	c.ExpectClosed()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("408 after %v", d)
	}
	c.NC.Close()

	c = testhttp.Dial(t, addr)
	if resp, _ := c.Do("GET / HTTP/1.1\r\nHost: t\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	c.ExpectClosed()
	c.NC.Close()
	testhttp.WaitFDs(t, base)
}
