package proxy

// Attacks on backend connection reuse found by review (issue 11): each
// failed before its fix. The leak matrix itself is in
// backend_conns_test.go.

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	nethttp "net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plb/plb/internal/testhttp"
	"github.com/plb/plb/internal/testutil"
)

// TestPOSTNotResentAfterReusedClose: a POST whose handler performs its
// side effect and then drops the connection without an answer (a crashing
// worker) on a reused backend connection is not sent again: it would be
// applied twice.
func TestPOSTNotResentAfterReusedClose(t *testing.T) {
	var charged atomic.Int64
	be := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		if req.Method == "POST" {
			charged.Add(1) // the side effect happened
			return false   // then the worker dies: no answer
		}
		testhttp.Respond(c, 200, "", "ok")
		return true
	})
	ts := startProxyTOML(t, testhttp.OneLoop(testhttp.ProxyTOML([]string{be.Addr}, "server_retry = 100", testhttp.StdProxy)), harnessOptions{})
	c := testhttp.Dial(t, ts.addr())
	c.Do("GET /warm HTTP/1.1\r\nHost: t\r\n\r\n") // leaves an idle, reusable connection
	resp, body := c.Do("POST /transfer HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\namount=100")
	t.Logf("client got %d %q; backend requests: %d", resp.StatusCode, body, len(be.Requests()))
	for _, r := range be.Requests() {
		t.Logf("  backend conn %d: %s %s %q", r.Conn, r.Method, r.URI, r.Body)
	}
	if n := charged.Load(); n != 1 {
		t.Fatalf("non-idempotent POST applied %d times by the backend (resends counted: %d)",
			n, ts.svc.Stats.Resends.Load())
	}
}

// TestQueuedClientWaitsForCoolDown: with max_backend_conns, a connection
// freed by a HEAD response is not handed to a queued client before its
// cool-down is over: a body the backend sends on HEAD a moment later must
// not become the queued victim's response.
func TestQueuedClientWaitsForCoolDown(t *testing.T) {
	release := make(chan struct{})
	var evilArrived atomic.Bool
	be := testhttp.DirtyBackend(t, func(c net.Conn, br *bufio.Reader, req *nethttp.Request) bool {
		evilArrived.Store(true)
		<-release
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
		time.Sleep(3 * time.Millisecond)
		io.WriteString(c, testhttp.LeakResponse) // the "body" of the HEAD response
		return true
	})
	ts := runProxy(t, testhttp.OneLoop(testhttp.ProxyTOML([]string{be.Addr}, "server_retry = 100",
		testhttp.ServiceKeys("max_backend_conns = 1"))))
	attacker, victim := queueBehindHEAD(t, ts, "/evil", evilArrived.Load)
	close(release)
	if resp, _ := attacker.Read("HEAD"); resp.StatusCode != 200 {
		t.Fatalf("attacker: %d", resp.StatusCode)
	}
	resp, body := victim.Read("GET")
	if body != "victim /victim" {
		t.Fatalf("queued victim asked for /victim and got %d %q", resp.StatusCode, body)
	}
}

// TestClientFaultNotBlamedOnNode: a client that half-closes in the middle
// of a streamed request body ends its backend connection; that is the
// client's doing, and server_retry such clients must not make a healthy
// node suspect.
func TestClientFaultNotBlamedOnNode(t *testing.T) {
	be := testhttp.EchoBackend(t)
	var logs testutil.SyncBuffer
	ts := startProxyTOML(t, testhttp.ProxyTOML([]string{be.Addr}, "server_retry = 3", testhttp.StdProxy),
		harnessOptions{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	addr := ts.addr()
	for i := 0; i < 3; i++ {
		c := testhttp.Dial(t, addr)
		c.Send("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n" + strings.Repeat("x", 200<<10))
		time.Sleep(50 * time.Millisecond)
		c.NC.(*net.TCPConn).CloseWrite() // the client gives up mid-body
		c.ExpectClosed()
	}
	n := ts.pool.Nodes()[0]
	time.Sleep(100 * time.Millisecond)
	if f := n.Failures.Load(); f != 0 || strings.Contains(logs.String(), "node suspect") {
		t.Fatalf("clients that gave up mid-body counted %d failures against a healthy node:\n%s", f, testhttp.GrepLines(logs.String(), "suspect"))
	}
}

// TestConnectionCannotNameFramingLive: "Connection: Content-Length" (or
// Transfer-Encoding) must not make plb drop that field from the request it
// forwards while it still sends the body: a backend (Go's parser here)
// would read the body as the next request on the pooled connection, the
// start of a POST whose body swallows the next client's request, cookies
// included.
func TestConnectionCannotNameFramingLive(t *testing.T) {
	smuggled := "POST /comment HTTP/1.1\r\nHost: t\r\nContent-Length: 80\r\n\r\ntext="
	for name, attack := range map[string]string{
		"Content-Length": fmt.Sprintf("POST /evil HTTP/1.1\r\nHost: t\r\nConnection: keep-alive, Content-Length\r\nContent-Length: %d\r\n\r\n%s",
			len(smuggled), smuggled),
		"Transfer-Encoding": fmt.Sprintf("POST /evil HTTP/1.1\r\nHost: t\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n",
			len(smuggled)+2, "\r\n"+smuggled),
	} {
		t.Run(name, func(t *testing.T) {
			be := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
				testhttp.Respond(c, 200, "", "page "+req.URL.Path)
				return true
			})
			ts := startProxyTOML(t, testhttp.OneLoop(testhttp.ProxyTOML([]string{be.Addr}, "server_retry = 100", testhttp.StdProxy)), harnessOptions{})
			addr := ts.addr()
			attacker := testhttp.Dial(t, addr)
			resp, body := attacker.Do(attack)
			t.Logf("attacker got %d %q", resp.StatusCode, body)
			victim := testhttp.Dial(t, addr)
			vresp, vbody := victim.Do("GET /victim HTTP/1.1\r\nHost: t\r\nCookie: session=VICTIM-SECRET\r\n\r\n")
			if vresp.StatusCode != 200 || vbody != "page /victim" {
				t.Errorf("victim asked for /victim and got %d %q", vresp.StatusCode, vbody)
			}
			for _, r := range be.Requests() {
				if strings.Contains(string(r.Body), "VICTIM-SECRET") {
					t.Errorf("the victim's request (its cookie) became the body of the attacker's smuggled %s %s", r.Method, r.URI)
				}
			}
		})
	}
}

// queueBehindHEAD sends a HEAD of path on a new connection, waits until the
// backend has it (arrived), then queues a victim's GET /victim behind it
// (the configuration's max_backend_conns = 1 is reached).
func queueBehindHEAD(t *testing.T, ts *harness, path string, arrived func() bool) (attacker, victim *testhttp.Client) {
	t.Helper()
	addr := ts.addr()
	attacker = testhttp.Dial(t, addr)
	attacker.Send("HEAD " + path + " HTTP/1.1\r\nHost: t\r\n\r\n")
	testhttp.WaitFor(t, "HEAD at the backend", arrived)
	victim = testhttp.Dial(t, addr)
	victim.Send("GET /victim HTTP/1.1\r\nHost: t\r\n\r\n")
	testhttp.WaitFor(t, "victim queued", func() bool { return ts.svc.Stats.Waiting.Load() == 1 })
	return attacker, victim
}

// TestErrorRetryNeverDropsAStreamedBody: a GET whose body streamed to the
// backend gets a 5xx; enable_error_retries must not retry it, since the
// retry would send the head (Content-Length: N) with no body. A backend that answers a GET before reading its body (nginx
// does, for a static file, then discards the body) keeps the connection
// expecting N more bytes; plb pools it, and the next request written on
// it is eaten as that body. The attacker aligns N with its own next
// request's head so that its body is read as requests plb never saw, and
// the answer to the last of them goes to the next client.
func TestErrorRetryNeverDropsAStreamedBody(t *testing.T) {
	var flaked atomic.Bool
	be := testhttp.NewRequestBackend(t, func(b *testhttp.Backend, c net.Conn, br *bufio.Reader, req *nethttp.Request, id int64, n int) bool {
		b.Record(testhttp.Request{Method: req.Method, URI: req.RequestURI, Conn: id})
		switch {
		case req.RequestURI == "/flaky" && !flaked.Swap(true):
			io.Copy(io.Discard, req.Body)
			testhttp.Respond(c, 503, "", "busy")
			return false
		case req.RequestURI == "/poison":
			time.Sleep(300 * time.Millisecond)
			testhttp.Respond(c, 200, "", "POISON")
		default:
			testhttp.Respond(c, 200, "", "for "+req.RequestURI) // answer first ...
		}
		io.Copy(io.Discard, req.Body) // ... then discard the body
		return true
	})
	ts := runProxy(t, testhttp.OneLoop(testhttp.ProxyTOML([]string{be.Addr}, "server_retry = 100",
		testhttp.ServiceKeys("enable_error_retries = true", `error_retry_schedule = "0"`))))
	addr := ts.addr()

	s1 := "GET /s1 HTTP/1.1\r\nHost: x\r\n\r\n"
	s2 := "GET /poison HTTP/1.1\r\nHost: x\r\n\r\n"
	// The first body is over buffer_backend_connect (100k by default), so
	// it streams; n is its length, what the retried request leaves owed.
	const n = 120000
	// The head plb writes for the attacker's second request, whose body
	// pads it to n bytes before s1 and s2.
	h2 := func(m int) string {
		return fmt.Sprintf("GET /c HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nX-Forwarded-For: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n", m)
	}
	pad := n - len(h2(100000))
	m := pad + len(s1) + len(s2)
	if len(h2(m)) != len(h2(100000)) {
		t.Fatal("digits")
	}

	atk := testhttp.Dial(t, addr)
	atk.Send(fmt.Sprintf("GET /flaky HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", n))
	atk.Send(strings.Repeat("z", n-1000))
	time.Sleep(100 * time.Millisecond) // past buffer_backend_connect: streamed
	atk.Send(strings.Repeat("z", 1000))
	resp, body := atk.Read("GET")
	t.Logf("attacker 1 (GET /flaky): %d %q", resp.StatusCode, body)
	resp, body = atk.Do(fmt.Sprintf("GET /c HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", m) + strings.Repeat("p", pad) + s1 + s2)
	t.Logf("attacker 2 (GET /c): %d %q", resp.StatusCode, body)

	vic := testhttp.Dial(t, addr)
	resp, body = vic.Do("GET /private HTTP/1.1\r\nHost: x\r\n\r\n")
	t.Logf("victim (GET /private): %d %q", resp.StatusCode, body)
	var uris []string
	for _, r := range be.Requests() {
		uris = append(uris, fmt.Sprintf("%s@%d", r.URI, r.Conn))
	}
	t.Logf("backend saw: %v", uris)
	if body != "for /private" {
		t.Errorf("victim got %q, want %q", body, "for /private")
	}
}

// TestHeldBodyGoesWithItsRequestOnly: a GET whose body is held whole,
// 5xx-retried, then a bodiless request on the same connection, then
// another client: each backend request carries its own body only.
func TestHeldBodyGoesWithItsRequestOnly(t *testing.T) {
	var flaked atomic.Bool
	be := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		if req.RequestURI == "/flaky" && !flaked.Swap(true) {
			testhttp.Respond(c, 503, "", "busy")
			return false
		}
		testhttp.Respond(c, 200, "", req.RequestURI+":"+string(body))
		return true
	})
	ts := runProxy(t, testhttp.OneLoop(testhttp.ProxyTOML([]string{be.Addr}, "server_retry = 100",
		testhttp.ServiceKeys("enable_error_retries = true", `error_retry_schedule = "0"`))))
	addr := ts.addr()
	a := testhttp.Dial(t, addr)
	_, body := a.Do("GET /flaky HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nsecret")
	t.Logf("1: %q", body)
	_, body2 := a.Do("GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	t.Logf("2: %q", body2)
	b := testhttp.Dial(t, addr)
	_, body3 := b.Do("GET /other HTTP/1.1\r\nHost: x\r\n\r\n")
	t.Logf("3: %q", body3)
	if body != "/flaky:secret" || body2 != "/next:" || body3 != "/other:" {
		t.Errorf("bodies %q %q %q", body, body2, body3)
	}
}

// TestAmbiguousTransferEncodingRefused: a Transfer-Encoding other than one
// field holding only "chunked" is answered by plb (501 for a coding it
// does not implement, 400 for an ambiguous list) and closed; nothing of it
// reaches the backend, which might read the list differently (some take
// the first coding, some ignore unknown ones) and desync.
func TestAmbiguousTransferEncodingRefused(t *testing.T) {
	be := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		testhttp.Respond(c, 200, "", "page "+req.URL.Path)
		return true
	})
	ts := startProxyTOML(t, testhttp.OneLoop(testhttp.ProxyTOML([]string{be.Addr}, "server_retry = 100", testhttp.StdProxy)), harnessOptions{})
	addr := ts.addr()
	body := "5\r\nhello\r\n0\r\n\r\n"
	for _, tc := range []struct {
		te     string // the Transfer-Encoding lines
		status int
	}{
		{"Transfer-Encoding: identity, chunked\r\n", 501},
		{"Transfer-Encoding: foo, chunked\r\n", 501},
		{"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", 501},
		{"Transfer-Encoding: chunked,\r\n", 400},
		{"Transfer-Encoding: chunked\r\nTransfer-Encoding:\r\n", 400},
		{"Transfer-Encoding: , chunked\r\n", 400},
	} {
		c := testhttp.Dial(t, addr)
		resp, _ := c.Do("POST /smuggle HTTP/1.1\r\nHost: t\r\n" + tc.te + "\r\n" + body)
		if resp.StatusCode != tc.status {
			t.Errorf("%q: status %d, want %d", tc.te, resp.StatusCode, tc.status)
		}
		c.ExpectClosed()
	}
	// The one form plb reads goes through.
	c := testhttp.Dial(t, addr)
	if resp, got := c.Do("POST /ok HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + body); resp.StatusCode != 200 || got != "page /ok" {
		t.Fatalf("plain chunked POST: %d %q", resp.StatusCode, got)
	}
	for _, r := range be.Requests() {
		if r.URI == "/smuggle" {
			t.Errorf("an ambiguous Transfer-Encoding reached the backend: %s %s", r.Method, r.URI)
		}
	}
}
