package proxy

// What the reverse proxy does with well-formed traffic: keep-alive,
// pipelining, bodies both ways in every framing, interim and bodiless
// responses, upgrades, forwarded headers and header rules.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plb/plb/internal/testhttp"
)

// rawBackend answers each request with the raw response of its path (or
// 404) and closes after responses that say "Connection: close".
func rawBackend(t *testing.T, responses map[string]string) *testhttp.Backend {
	return testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		raw, ok := responses[req.URL.Path]
		if !ok {
			testhttp.Respond(c, 404, "", "no such script")
			return true
		}
		io.WriteString(c, raw)
		return !strings.Contains(raw, "Connection: close")
	})
}

func TestKeepAliveAndBackendReuse(t *testing.T) {
	be := testhttp.OKBackend(t, "b")
	ts := startProxy(t, []string{be.Addr}, "", testhttp.StdProxy)
	addr := ts.addr()
	c := testhttp.Dial(t, addr)
	for i := 0; i < 20; i++ {
		resp, body := c.Do(fmt.Sprintf("GET /%d HTTP/1.1\r\nHost: t\r\n\r\n", i))
		if resp.StatusCode != 200 || body != fmt.Sprintf("b GET /%d", i) || resp.Close {
			t.Fatalf("request %d: %d %q close=%v", i, resp.StatusCode, body, resp.Close)
		}
		if !strings.Contains(resp.Header.Get("Keep-Alive"), "timeout=") {
			t.Fatalf("Keep-Alive header %q", resp.Header.Get("Keep-Alive"))
		}
	}
	if n := be.Accepted.Load(); n != 1 {
		t.Fatalf("20 requests on one client used %d backend connections, want 1", n)
	}

	// HTTP/1.0 keep-alive on request, close without it.
	c10 := testhttp.Dial(t, addr)
	for i := 0; i < 3; i++ {
		resp, _ := c10.Do("GET /ten HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
		if resp.StatusCode != 200 || resp.Close || resp.ProtoMinor != 0 {
			t.Fatalf("1.0 keep-alive: %d close=%v proto %s", resp.StatusCode, resp.Close, resp.Proto)
		}
	}
	resp, _ := c10.Do("GET /ten HTTP/1.0\r\n\r\n")
	if resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("1.0 without keep-alive: %d close=%v", resp.StatusCode, resp.Close)
	}
	c10.ExpectClosed()

	// Without persist_client every response closes.
	ts2 := startProxy(t, []string{be.Addr}, "", testhttp.ServiceKeys("persist_client = false"))
	c2 := testhttp.Dial(t, ts2.addr())
	if resp, _ := c2.Do("GET / HTTP/1.1\r\nHost: t\r\n\r\n"); !resp.Close {
		t.Fatal("keep-alive granted without persist_client")
	}
	c2.ExpectClosed()
}

func TestPipelinedInOrder(t *testing.T) {
	be := scriptedBackend(t)
	ts := startProxy(t, []string{be.Addr}, "", testhttp.StdProxy)
	c := testhttp.Dial(t, ts.addr())
	var all strings.Builder
	for i := 0; i < 10; i++ {
		if i == 5 {
			all.WriteString("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
			continue
		}
		fmt.Fprintf(&all, "GET /p%d HTTP/1.1\r\nHost: t\r\n\r\n", i)
	}
	c.Send(all.String())
	for i := 0; i < 10; i++ {
		want := fmt.Sprintf("ok /p%d", i)
		if i == 5 {
			want = "hello"
		}
		resp, body := c.Read("GET")
		if resp.StatusCode != 200 || body != want {
			t.Fatalf("response %d: %d %q, want %q", i, resp.StatusCode, body, want)
		}
	}
}

func TestRequestBodies(t *testing.T) {
	be := scriptedBackend(t)
	ts := startProxy(t, []string{be.Addr}, "", testhttp.ServiceKeys(`buffer_size = "64k"`))
	c := testhttp.Dial(t, ts.addr())

	big := make([]byte, 3<<20)
	rand.Read(big)
	for _, size := range []int{0, 1, 100 << 10, len(big)} {
		body := big[:size]
		c.Send(fmt.Sprintf("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n", size))
		go c.NC.Write(body)
		resp, got := c.Read("POST")
		if resp.StatusCode != 200 || got != string(body) {
			t.Fatalf("Content-Length %d: status %d, %d bytes back", size, resp.StatusCode, len(got))
		}
	}

	// A small body in the same packet as the head.
	for _, body := range []string{"x", "hello world"} {
		resp, got := c.Do(fmt.Sprintf("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
		if resp.StatusCode != 200 || got != body {
			t.Fatalf("body with the head: status %d, %q back", resp.StatusCode, got)
		}
	}

	// Chunked, in pieces that split the framing anywhere.
	var chunked bytes.Buffer
	var want bytes.Buffer
	for off := 0; off < len(big); {
		n := min(1+off%70000, len(big)-off)
		fmt.Fprintf(&chunked, "%x;ext=1\r\n", n)
		chunked.Write(big[off : off+n])
		chunked.WriteString("\r\n")
		want.Write(big[off : off+n])
		off += n
	}
	chunked.WriteString("0\r\nX-Trailer: yes\r\n\r\n")
	c.Send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
	go func() {
		b := chunked.Bytes()
		for len(b) > 0 {
			n := min(len(b), 8191)
			if _, err := c.NC.Write(b[:n]); err != nil {
				return
			}
			b = b[n:]
		}
	}()
	resp, got := c.Read("POST")
	if resp.StatusCode != 200 || got != want.String() {
		t.Fatalf("chunked: status %d, %d bytes back, want %d", resp.StatusCode, len(got), want.Len())
	}
	// The connection is still good.
	if resp, body := c.Do("GET /after HTTP/1.1\r\nHost: t\r\n\r\n"); resp.StatusCode != 200 || body != "ok /after" {
		t.Fatalf("after bodies: %d %q", resp.StatusCode, body)
	}
}

func TestResponseFraming(t *testing.T) {
	be := rawBackend(t, map[string]string{
		"/chunked":    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
		"/closedelim": "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
		"/head":       "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: text/plain\r\n\r\n",
		"/204":        "HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n",
		"/304":        "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 1234\r\n\r\n",
		"/ok":         "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	})
	ts := startProxy(t, []string{be.Addr}, "", testhttp.StdProxy)
	addr := ts.addr()

	t.Run("1.1 keep-alive", func(t *testing.T) {
		c := testhttp.Dial(t, addr)
		for i := 0; i < 2; i++ {
			resp, body := c.Do("GET /chunked HTTP/1.1\r\nHost: t\r\n\r\n")
			if body != "hello world" || len(resp.TransferEncoding) != 1 || resp.Close {
				t.Fatalf("chunked: %q TE %v close %v", body, resp.TransferEncoding, resp.Close)
			}
			resp, body = c.Do("GET /closedelim HTTP/1.1\r\nHost: t\r\n\r\n")
			if body != "until the end" || len(resp.TransferEncoding) != 1 || resp.Close {
				t.Fatalf("close-delimited to 1.1: %q TE %v close %v", body, resp.TransferEncoding, resp.Close)
			}
			resp, body = c.Do("HEAD /head HTTP/1.1\r\nHost: t\r\n\r\n")
			if resp.StatusCode != 200 || body != "" || resp.ContentLength != 1000 {
				t.Fatalf("HEAD: %d %q length %d", resp.StatusCode, body, resp.ContentLength)
			}
			resp, body = c.Do("GET /204 HTTP/1.1\r\nHost: t\r\n\r\n")
			if resp.StatusCode != 204 || body != "" || resp.Header.Get("X-A") != "b" {
				t.Fatalf("204: %d %q", resp.StatusCode, body)
			}
			resp, body = c.Do("GET /304 HTTP/1.1\r\nHost: t\r\n\r\n")
			if resp.StatusCode != 304 || body != "" {
				t.Fatalf("304: %d %q", resp.StatusCode, body)
			}
		}
		if resp, body := c.Do("GET /ok HTTP/1.1\r\nHost: t\r\n\r\n"); body != "ok" || resp.Close {
			t.Fatalf("after: %q", body)
		}
	})

	t.Run("chunked raw passthrough", func(t *testing.T) {
		c := testhttp.Dial(t, addr)
		c.Send("GET /chunked HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
		raw, _ := io.ReadAll(c.BR)
		if !bytes.HasSuffix(raw, []byte("\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")) {
			t.Fatalf("raw response %q", raw)
		}
	})

	t.Run("1.0 de-chunked", func(t *testing.T) {
		c := testhttp.Dial(t, addr)
		resp, body := c.Do("GET /chunked HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
		if body != "hello world" || len(resp.TransferEncoding) != 0 || !resp.Close || resp.ProtoMinor != 0 {
			t.Fatalf("chunked to 1.0: %q TE %v close %v %s", body, resp.TransferEncoding, resp.Close, resp.Proto)
		}
		c.ExpectClosed()
		c = testhttp.Dial(t, addr)
		resp, body = c.Do("GET /closedelim HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
		if body != "until the end" || !resp.Close {
			t.Fatalf("close-delimited to 1.0: %q close %v", body, resp.Close)
		}
		c.ExpectClosed()
	})
}

func TestExpectContinue(t *testing.T) {
	be := testhttp.NewBackend(t, func(b *testhttp.Backend, c net.Conn, id int64) {
		br := bufio.NewReader(c)
		for {
			req, err := nethttp.ReadRequest(br)
			if err != nil {
				return
			}
			if req.Header.Get("Expect") == "100-continue" {
				io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
			}
			body, _ := io.ReadAll(req.Body)
			testhttp.Respond(c, 200, "", "got "+string(body))
		}
	})
	ts := startProxy(t, []string{be.Addr}, "", testhttp.StdProxy)
	c := testhttp.Dial(t, ts.addr())
	for i := 0; i < 2; i++ {
		c.Send("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		resp, _ := c.Read("POST")
		if resp.StatusCode != 100 {
			t.Fatalf("interim status %d", resp.StatusCode)
		}
		c.Send("hello")
		resp, body := c.Read("POST")
		if resp.StatusCode != 200 || body != "got hello" {
			t.Fatalf("final: %d %q", resp.StatusCode, body)
		}
	}
}

// TestUpgradeTunnel: an upgraded connection carries bytes both ways with
// flow control, whichever side ends first, and both connections go away
// once both sides have ended.
func TestUpgradeTunnel(t *testing.T) {
	afterBye := make(chan string, 1)
	be := testhttp.NewBackend(t, func(b *testhttp.Backend, c net.Conn, id int64) {
		br := bufio.NewReader(c)
		req, err := nethttp.ReadRequest(br)
		if err != nil {
			return
		}
		if req.Header.Get("Upgrade") != "websocket" || !strings.EqualFold(req.Header.Get("Connection"), "upgrade") {
			testhttp.Respond(c, 400, "Connection: close\r\n", "no upgrade asked")
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		if req.URL.Path == "/bye" { // the backend ends first
			io.WriteString(c, "bye")
			c.(*net.TCPConn).CloseWrite()
			rest, _ := io.ReadAll(br)
			afterBye <- string(rest)
			return
		}
		// Echo until the client's EOF (hiding ReadFrom/WriteTo: no splice
		// pipes to upset the descriptor count).
		io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{br})
	})
	ts := startProxy(t, []string{be.Addr}, "", testhttp.ServiceKeys("persist_backend = false"))
	addr := ts.addr()
	upgrade := func(path string) *testhttp.Client {
		c := testhttp.Dial(t, addr)
		c.Send("GET " + path + " HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		resp, err := nethttp.ReadResponse(c.BR, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "websocket" {
			t.Fatalf("status %d, Upgrade %q", resp.StatusCode, resp.Header.Get("Upgrade"))
		}
		return c
	}
	base := testhttp.FDCount(t)

	t.Run("client ends first", func(t *testing.T) {
		c := upgrade("/ws")
		c.Send("ping")
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c.BR, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("echo %q: %v", buf, err)
		}
		// Many megabytes both ways at once: flow control in both directions.
		data := make([]byte, 8<<20)
		rand.Read(data)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.NC.Write(data)
			c.NC.(*net.TCPConn).CloseWrite()
		}()
		got, err := io.ReadAll(c.BR)
		wg.Wait()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("tunnel returned %d of %d bytes: %v", len(got), len(data), err)
		}
		c.NC.Close()
		be.WaitOpen(t, 0)
		testhttp.WaitFDs(t, base)
	})

	t.Run("backend ends first", func(t *testing.T) {
		c := upgrade("/bye")
		// The backend's EOF reaches the client, which may still send.
		if got, err := io.ReadAll(c.BR); err != nil || string(got) != "bye" {
			t.Fatalf("read %q: %v", got, err)
		}
		c.Send("still here")
		c.NC.(*net.TCPConn).CloseWrite()
		select {
		case got := <-afterBye:
			if got != "still here" {
				t.Fatalf("backend got %q after its EOF", got)
			}
		case <-time.After(testTimeout):
			t.Fatal("the client's EOF did not reach the backend")
		}
		c.NC.Close()
		be.WaitOpen(t, 0)
		testhttp.WaitFDs(t, base)
	})
}

func TestForwardedFor(t *testing.T) {
	be := testhttp.OKBackend(t, "b")
	xff := func(ts *harness) string {
		c := testhttp.Dial(t, ts.addr())
		c.Do("GET /x HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 10.1.2.3\r\nX-Forwarded-Host: evil\r\n\r\n")
		r := be.Requests()
		last := r[len(r)-1]
		return strings.Join(last.Header.Values("X-Forwarded-For"), "|") + " host=" + last.Header.Get("X-Forwarded-Host")
	}
	untrusted := startProxy(t, []string{be.Addr}, "", testhttp.StdProxy)
	if got := xff(untrusted); got != "127.0.0.1 host=" {
		t.Errorf("untrusted client: %q", got)
	}
	trusted := startProxy(t, []string{be.Addr}, "", testhttp.ServiceKeys(`trusted_upstream_proxies = "127.0.0.1/32"`))
	if got := xff(trusted); got != "10.1.2.3, 127.0.0.1 host=evil" {
		t.Errorf("trusted client: %q", got)
	}
	other := startProxy(t, []string{be.Addr}, "", testhttp.ServiceKeys(`trusted_upstream_proxies = "10.0.0.0/8"`))
	if got := xff(other); got != "127.0.0.1 host=" {
		t.Errorf("client outside the trusted networks: %q", got)
	}
}

func TestHeaderRulesAndHopByHop(t *testing.T) {
	be := testhttp.OKBackend(t, "b")
	ts := startProxy(t, []string{be.Addr}, "", testhttp.ServiceKeys(`headers = ["insert X-Added: yes", "remove X-Secret"]`))
	c := testhttp.Dial(t, ts.addr())
	c.Do("GET /x HTTP/1.1\r\nHost: t\r\nX-Secret: s\r\nX-Added: client\r\nX-Kept: k\r\n" +
		"Keep-Alive: 300\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\nConnection: keep-alive\r\n\r\n")
	h := be.Requests()[0].Header
	if v := h.Values("X-Added"); len(v) != 1 || v[0] != "yes" {
		t.Errorf("X-Added %q", v)
	}
	for _, name := range []string{"X-Secret", "Keep-Alive", "Te", "Proxy-Connection"} {
		if v := h.Get(name); v != "" {
			t.Errorf("%s forwarded: %q", name, v)
		}
	}
	if h.Get("X-Kept") != "k" {
		t.Errorf("X-Kept %q", h.Get("X-Kept"))
	}
}

// TestBackendClosesIdle: an idle backend connection the backend closed is
// noticed, or the request sent on it is resent on a new connection.
func TestBackendClosesIdle(t *testing.T) {
	be := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		testhttp.Respond(c, 200, "", "ok")
		return req.URL.Path != "/bye" // close silently after /bye's answer
	})
	ts := startProxy(t, []string{be.Addr}, "", testhttp.StdProxy)
	c := testhttp.Dial(t, ts.addr())
	for i := 0; i < 5; i++ {
		path := "/x"
		if i%2 == 0 {
			path = "/bye"
		}
		resp, body := c.Do("GET " + path + " HTTP/1.1\r\nHost: t\r\n\r\n")
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		if i == 2 {
			time.Sleep(20 * time.Millisecond) // let the proxy see this close while idle
		}
	}
	if n := be.Accepted.Load(); n != 3 {
		t.Fatalf("%d backend connections, want 3", n)
	}
}

// TestConnectAhead: with connect_ahead = 2, spare backend connections are
// opened (and verified with verify_backend) after a request, and the next
// requests reuse them instead of dialing.
func TestConnectAhead(t *testing.T) {
	be := testhttp.OKBackend(t, "b")
	// One loop: spares live on the loop that dialed them.
	ts := runProxy(t, strings.Replace(testhttp.ProxyTOML([]string{be.Addr}, "",
		testhttp.ServiceKeys("connect_ahead = 2", "backend_persist_cache = 0")), "workers = 2", "workers = 1", 1))
	addr := ts.addr()
	testhttp.MustGet(t, addr, "/first")
	// The request's own connection plus two spares.
	testhttp.WaitFor(t, "two spare backend connections", func() bool { return be.Accepted.Load() >= 3 })
	svc := ts.svc
	testhttp.WaitFor(t, "spares idle", func() bool { return svc.Bored.Load() >= 2 })
	before := be.Accepted.Load()
	c := testhttp.Dial(t, addr)
	resp, _ := c.Do("GET /second HTTP/1.1\r\nHost: t\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// The request took a spare; one more is dialed to refill, never more.
	testhttp.WaitFor(t, "refill", func() bool { return svc.Bored.Load() >= 2 })
	if n := be.Accepted.Load() - before; n > 1 {
		t.Fatalf("second request dialed %d new backend connections, want at most 1 (refill)", n)
	}
}
