package proxy

// The life of a backend connection (issue 11, DESIGN.md "Backend
// connections: the rules"): reuse only after a clean exchange, the node
// before the connection, idle connections sized by the load, verification
// as Perlbal meant it, safe retries, blame for the node's own faults,
// hop-by-hop fields, and a graceful stop that answers what it received.

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	nethttp "net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plb/plb/internal/testhttp"
	"github.com/plb/plb/internal/testutil"
)

// TestReuseOnlyAfterCleanExchange: a backend made to send more than its
// response (a body on HEAD, 204 or 304; bytes past Content-Length; a 101
// nobody asked for; an early answer to a POST whose body it then reads as
// a request) never gets another client's request on that connection:
// while attackers repeat it, concurrent victims on keep-alive connections
// only ever get their own pages, and the attacker gets the correct
// response (502 for the 101).
func TestReuseOnlyAfterCleanExchange(t *testing.T) {
	twoWrites := func(head, rest string) testhttp.Misbehave {
		return func(c net.Conn, br *bufio.Reader, req *nethttp.Request) bool {
			io.Copy(io.Discard, req.Body)
			io.WriteString(c, head)
			io.WriteString(c, rest) // a second segment, a moment later
			return true
		}
	}
	oneWrite := func(raw string) testhttp.Misbehave {
		return func(c net.Conn, br *bufio.Reader, req *nethttp.Request) bool {
			io.Copy(io.Discard, req.Body)
			io.WriteString(c, raw)
			return true
		}
	}
	smuggled := "GET /secret HTTP/1.1\r\nHost: x\r\n\r\n"
	cases := []struct {
		name   string
		req    string // the attacker's request
		m      testhttp.Misbehave
		status int // what the attacker must get
		body   string
	}{
		{"body on HEAD", "HEAD /evil HTTP/1.1\r\nHost: t\r\n\r\n",
			oneWrite("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" + testhttp.LeakResponse), 200, ""},
		{"body on HEAD in its own segment", "HEAD /evil HTTP/1.1\r\nHost: t\r\n\r\n",
			twoWrites("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "hello"+testhttp.LeakResponse), 200, ""},
		{"body on 204", "GET /evil HTTP/1.1\r\nHost: t\r\n\r\n",
			twoWrites("HTTP/1.1 204 No Content\r\n\r\n", testhttp.LeakResponse), 204, ""},
		{"body on 204 with a length", "GET /evil HTTP/1.1\r\nHost: t\r\n\r\n",
			oneWrite("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello"), 204, ""},
		{"body on 304", "GET /evil HTTP/1.1\r\nHost: t\r\nIf-None-Match: x\r\n\r\n",
			twoWrites("HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n", testhttp.LeakResponse), 304, ""},
		{"bytes past Content-Length", "GET /evil HTTP/1.1\r\nHost: t\r\n\r\n",
			oneWrite("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + testhttp.LeakResponse), 200, "ok"},
		{"bytes past Content-Length in their own segment", "GET /evil HTTP/1.1\r\nHost: t\r\n\r\n",
			twoWrites("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", testhttp.LeakResponse), 200, "ok"},
		{"bytes past the last chunk", "GET /evil HTTP/1.1\r\nHost: t\r\n\r\n",
			oneWrite("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n" + testhttp.LeakResponse), 200, "ok"},
		{"unasked 101", "GET /evil HTTP/1.1\r\nHost: t\r\n\r\n",
			oneWrite("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n" + testhttp.LeakResponse), 502, "bad response from backend"},
		{"early answer, body read as a request",
			fmt.Sprintf("POST /evil HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s", len(smuggled), smuggled),
			func(c net.Conn, br *bufio.Reader, req *nethttp.Request) bool {
				// python's http.server answering 501 to a POST, keeping
				// the connection: the body is then read as a request.
				io.WriteString(c, "HTTP/1.1 501 Unsupported\r\nContent-Length: 0\r\n\r\n")
				inner, err := nethttp.ReadRequest(br)
				if err != nil {
					return false
				}
				_ = inner
				io.WriteString(c, testhttp.LeakResponse)
				return true
			}, 501, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			be := testhttp.DirtyBackend(t, tc.m)
			ts := runProxy(t, testhttp.OneLoop(testhttp.ProxyTOML([]string{be.Addr}, "server_retry = 1000",
				testhttp.ServiceKeys("backend_persist_cache = 8"))))
			addr := ts.addr()
			const attacks, victims = 60, 4
			var stop atomic.Bool
			var leaked, served atomic.Int64
			var wg sync.WaitGroup
			for v := 0; v < victims; v++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := testhttp.DialQuiet(addr)
					if c == nil {
						return
					}
					defer c.Close()
					br := bufio.NewReader(c)
					for i := 0; i < 5000 && !stop.Load(); i++ {
						path := fmt.Sprintf("/victim%d-%d", v, i)
						fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path)
						resp, err := nethttp.ReadResponse(br, nil)
						if err != nil {
							return
						}
						b, _ := io.ReadAll(resp.Body)
						if string(b) != "victim "+path {
							leaked.Add(1)
							t.Logf("victim asked for %s and got %d %q", path, resp.StatusCode, b)
							return
						}
						served.Add(1)
					}
				}()
			}
			for i := 0; i < attacks; i++ {
				c := testhttp.Dial(t, addr)
				resp, body := c.Do(tc.req)
				if resp.StatusCode != tc.status || body != tc.body && !(tc.status == 502 && strings.HasSuffix(body, tc.body)) {
					t.Fatalf("attack %d: %d %q, want %d %q", i, resp.StatusCode, body, tc.status, tc.body)
				}
				c.NC.Close()
			}
			stop.Store(true)
			wg.Wait()
			// Extra bytes in a segment of their own, a moment after the
			// response, may still be on their way when the next request
			// goes out on that connection: no proxy can see those. What
			// plb sees of them (arriving while idle, or behind the next
			// response) stops the reuse of the node's connections, so
			// the first attack at most could reach anyone.
			raceable := strings.Contains(tc.name, "own segment") || strings.Contains(tc.name, "204") ||
				strings.Contains(tc.name, "304")
			if served.Load() == 0 || leaked.Load() > 1 || leaked.Load() == 1 && !raceable {
				t.Fatalf("%d victims got another response; %d served", leaked.Load(), served.Load())
			}
			if raceable && !ts.pool.Nodes()[0].ReuseSuspended(time.Now()) {
				t.Fatal("the node's bytes unasked did not stop the reuse of its connections")
			}
		})
	}
}

// TestUnaskedBytesSeenBeforeReuse: bytes a backend sends a moment after a
// complete response, in a segment of their own, are seen before the
// connection carries another request (a later request gets its own page
// on a new connection), and the node's connections are no longer reused.
// After a response without a body by rule (HEAD here), the connection
// also rests for a moment, so a body sent that late is caught even when
// the next request comes at once.
func TestUnaskedBytesSeenBeforeReuse(t *testing.T) {
	for _, tc := range []struct {
		name, req, head, rest string
		nextAfter             time.Duration // when the next client asks
	}{
		{"bytes past Content-Length", "GET /evil HTTP/1.1\r\nHost: t\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", testhttp.LeakResponse, 30 * time.Millisecond},
		{"body on HEAD", "HEAD /evil HTTP/1.1\r\nHost: t\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "hello" + testhttp.LeakResponse, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sent := make(chan struct{}, 1)
			be := testhttp.DirtyBackend(t, func(c net.Conn, br *bufio.Reader, req *nethttp.Request) bool {
				io.WriteString(c, tc.head)
				time.Sleep(3 * time.Millisecond)
				io.WriteString(c, tc.rest)
				sent <- struct{}{}
				return true
			})
			ts := startProxyTOML(t, testhttp.OneLoop(testhttp.ProxyTOML([]string{be.Addr}, "", testhttp.StdProxy)), harnessOptions{})
			addr := ts.addr()
			victim := testhttp.Dial(t, addr)
			if _, body := victim.Do("GET /victim0 HTTP/1.1\r\nHost: t\r\n\r\n"); body != "victim /victim0" {
				t.Fatalf("first: %q", body)
			}
			attacker := testhttp.Dial(t, addr)
			resp, _ := attacker.Do(tc.req)
			if resp.StatusCode != 200 {
				t.Fatalf("attacker: %s", resp.Status)
			}
			time.Sleep(tc.nextAfter)
			for i := 1; i <= 3; i++ {
				path := fmt.Sprintf("/victim%d", i)
				if _, body := victim.Do("GET " + path + " HTTP/1.1\r\nHost: t\r\n\r\n"); body != "victim "+path {
					t.Fatalf("victim asked for %s and got %q", path, body)
				}
			}
			<-sent
			node := ts.pool.Nodes()[0]
			testhttp.WaitFor(t, "reuse of the node's connections suspended", func() bool { return node.ReuseSuspended(time.Now()) })
			// Suspended: every request now has a connection of its own.
			before := be.Accepted.Load()
			for i := 0; i < 3; i++ {
				victim.Do("GET /victim HTTP/1.1\r\nHost: t\r\n\r\n")
			}
			if n := be.Accepted.Load() - before; n != 3 {
				t.Fatalf("%d new backend connections for 3 requests while reuse is suspended", n)
			}
		})
	}
}

// TestEarlyAnswerNotReused: a backend that answers a POST before reading
// its body (Node's http does) while the client stops sending: the client
// gets that answer and its connection closes, and the backend connection
// is closed too, so the next request is not swallowed as the rest of the
// body (it used to wait for backend_timeout and get 504).
func TestEarlyAnswerNotReused(t *testing.T) {
	be := testhttp.NewRequestBackend(t, func(b *testhttp.Backend, c net.Conn, br *bufio.Reader, req *nethttp.Request, id int64, n int) bool {
		testhttp.Respond(c, 200, "", fmt.Sprintf("conn %d %s", id, req.URL.Path))
		_, err := io.Copy(io.Discard, req.Body)
		return err == nil
	})
	ts := startProxy(t, []string{be.Addr}, "", testhttp.ServiceKeys("buffer_backend_connect = 0", `backend_timeout = "2s"`))
	addr := ts.addr()
	c := testhttp.Dial(t, addr)
	c.Send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("x", 1000))
	resp, body := c.Read("POST")
	if resp.StatusCode != 200 || body != "conn 1 /upload" {
		t.Fatalf("early answer: %d %q", resp.StatusCode, body)
	}
	c.ExpectClosed()
	start := time.Now()
	if body := testhttp.MustGet(t, addr, "/next"); body != "conn 2 /next" {
		t.Fatalf("next request: %q (want it on a new backend connection)", body)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("next request took %v", d)
	}
}

// verifyBackend answers OPTIONS * with optionsReply (then closes when it
// says so) and every other request 200.
func verifyBackend(t *testing.T, optionsReply string) *testhttp.Backend {
	return testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		if req.Method == "OPTIONS" {
			io.WriteString(c, optionsReply)
			return !strings.Contains(optionsReply, "close") && !strings.HasPrefix(optionsReply, "HTTP/1.0")
		}
		testhttp.Respond(c, 200, "", "ok")
		return true
	})
}

// TestVerifyBackendAnyAnswer: verify_backend takes any complete HTTP answer
// as proof of a web server. nginx answers OPTIONS * with 400 and closes,
// python's http.server with 501 over HTTP/1.0; an answer with a chunked
// body is not kept either. The client gets its page on a fresh connection
// each time (never a 503), the node stays up, and the node is not probed
// again on every new connection.
func TestVerifyBackendAnyAnswer(t *testing.T) {
	for name, reply := range map[string]string{
		"nginx 400 close":         "HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Length: 11\r\nConnection: close\r\n\r\nbad request",
		"python 501 1.0":          "HTTP/1.0 501 Unsupported method ('OPTIONS')\r\nServer: SimpleHTTP/0.6\r\nContent-Length: 3\r\n\r\nno!",
		"chunked body":            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"keep-alive 200":          "HTTP/1.1 200 OK\r\nAllow: GET\r\nContent-Length: 0\r\n\r\n",
		"100 then 204 keep-alive": "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			be := verifyBackend(t, reply)
			var offset atomic.Int64
			ts := startProxyTOML(t, testhttp.ProxyTOML([]string{be.Addr}, "", testhttp.ServiceKeys("verify_backend = true", "persist_backend = false")),
				harnessOptions{Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
			addr := ts.addr()
			for i := 0; i < 10; i++ {
				if body := testhttp.MustGet(t, addr, fmt.Sprintf("/%d", i)); body != "ok" {
					t.Fatalf("request %d: %q", i, body)
				}
			}
			// A minute on, the node is verified again, with the same result.
			offset.Store(int64(61 * time.Second))
			time.Sleep(50 * time.Millisecond)
			if body := testhttp.MustGet(t, addr, "/later"); body != "ok" {
				t.Fatalf("a minute later: %q", body)
			}
			options := 0
			for _, r := range be.Requests() {
				if r.Method == "OPTIONS" {
					options++
				}
			}
			keeps := strings.Contains(name, "keep-alive")
			if !keeps && options != 2 {
				t.Fatalf("%d OPTIONS probes for 11 requests a minute apart: a node whose answer closes is verified once a minute", options)
			}
			if keeps && options != 11 {
				t.Fatalf("%d OPTIONS probes for 11 new connections, want one each", options)
			}
			if n := ts.pool.Nodes()[0]; n.Down() || n.Verifies.Load() == 0 || n.ReuseSuspended(time.Now()) {
				t.Fatalf("down %v, verifies %d, reuse suspended %v (an answer's own body is not bytes unasked)",
					n.Down(), n.Verifies.Load(), n.ReuseSuspended(time.Now()))
			}
		})
	}
}

// TestNodeBeforeConnection: round_robin picks the node for every request,
// then reuses an idle connection to it: one keep-alive client's requests
// alternate between the nodes, over one backend connection each. The
// default idle_first keeps Perlbal's way: the free connection serves.
func TestNodeBeforeConnection(t *testing.T) {
	a, b := testhttp.OKBackend(t, "a"), testhttp.OKBackend(t, "b")
	one := func(method string) *harness {
		return startProxyTOML(t, testhttp.OneLoop(testhttp.ProxyTOML([]string{a.Addr, b.Addr}, method, testhttp.StdProxy)), harnessOptions{})
	}
	ts := one(`balance_method = "round_robin"`)
	c := testhttp.Dial(t, ts.addr())
	count := map[string]int{}
	for i := 0; i < 10; i++ {
		_, body := c.Do("GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
		count[body[:1]]++
	}
	if count["a"] != 5 || count["b"] != 5 {
		t.Fatalf("round_robin over one keep-alive client: %v", count)
	}
	if a.Accepted.Load() != 1 || b.Accepted.Load() != 1 {
		t.Fatalf("backend connections: a %d, b %d; want one each, reused", a.Accepted.Load(), b.Accepted.Load())
	}

	ts = one("")
	c = testhttp.Dial(t, ts.addr())
	_, first := c.Do("GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
	for i := 0; i < 5; i++ {
		if _, body := c.Do("GET /x HTTP/1.1\r\nHost: t\r\n\r\n"); body != first {
			t.Fatalf("idle_first: request %d went to %q after %q", i, body, first)
		}
	}
}

// TestIdleFirstFeedsANewNode: with idle_first (the default) idle
// connections are reused first, yet a node added under load gets its
// share: an idle connection is taken only to a node not much busier than
// the least busy one, which gets a new connection otherwise.
func TestIdleFirstFeedsANewNode(t *testing.T) {
	a, b := testhttp.OKBackend(t, "a"), testhttp.OKBackend(t, "b")
	ts := startProxy(t, []string{a.Addr}, "", testhttp.StdProxy)
	addr := ts.addr()
	var done atomic.Int64
	failed := make(chan int64, 1)
	const clients, each = 8, 400
	go func() { failed <- keepAliveLoad(addr, clients, each, &done) }()
	testhttp.WaitFor(t, "load on a", func() bool { return done.Load() > clients*each/4 })
	if err := ts.pool.Add(b.Addr); err != nil {
		t.Fatal(err)
	}
	if n := <-failed; n > 0 {
		t.Fatalf("%d requests failed", n)
	}
	na, nb := len(a.Requests()), len(b.Requests())
	// b joined after a quarter of the requests: a fair share of the rest
	// is about 3/8 of them all; a third of that will do on a noisy machine.
	if nb < clients*each/8 {
		t.Fatalf("the node added under load served %d of %d requests (a %d)", nb, clients*each, na)
	}
}

// TestIdleSizedByLoad: with Perlbal's backend_persist_cache = 2, steady
// load from 16 keep-alive clients opens about one backend connection per
// concurrent request, not one per request; once the service has been quiet
// for two sizing windows, the idle connections shrink back to 2.
func TestIdleSizedByLoad(t *testing.T) {
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	be := testhttp.OKBackend(t, "b")
	ts := startProxyTOML(t, testhttp.OneLoop(testhttp.ProxyTOML([]string{be.Addr}, "", testhttp.StdProxy)),
		harnessOptions{Now: now})
	addr := ts.addr()
	const clients, each = 16, 60
	var done atomic.Int64
	failed := keepAliveLoad(addr, clients, each, &done)
	if failed > 0 {
		t.Fatalf("%d requests failed", failed)
	}
	if n := be.Accepted.Load(); n > 2*clients {
		t.Fatalf("%d backend connections for %d requests from %d clients", n, clients*each, clients)
	}
	svc := ts.svc
	if idle := svc.Bored.Load(); idle <= 2 {
		t.Fatalf("%d idle connections right after the load; the recent peak should be kept", idle)
	}
	for i := 0; i < 3; i++ {
		offset.Add(int64(IdleWindow + time.Second))
		time.Sleep(100 * time.Millisecond) // a few ticks
	}
	testhttp.WaitFor(t, "idle connections back to backend_persist_cache", func() bool { return svc.Bored.Load() == 2 })
	be.WaitOpen(t, 2)
}

// TestConnectionNamesHopByHop: the fields a Connection field names are
// hop-by-hop (RFC 9110 7.6.1), in both directions.
func TestConnectionNamesHopByHop(t *testing.T) {
	be := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		testhttp.Respond(c, 200, "Connection: keep-alive, X-Internal\r\nX-Internal: backend-secret\r\nX-Public: yes\r\n", "ok")
		return true
	})
	ts := startProxy(t, []string{be.Addr}, "", testhttp.StdProxy)
	c := testhttp.Dial(t, ts.addr())
	resp, _ := c.Do("GET / HTTP/1.1\r\nHost: t\r\nConnection: keep-alive, X-Foo , x-bar\r\nX-Foo: secret\r\nX-Bar: 1\r\nX-Kept: 2\r\n\r\n")
	got := be.Requests()[0].Header
	if got.Get("X-Foo") != "" || got.Get("X-Bar") != "" || got.Get("X-Kept") != "2" {
		t.Fatalf("backend got %v", got)
	}
	if resp.Header.Get("X-Internal") != "" || resp.Header.Get("X-Public") != "yes" {
		t.Fatalf("client got %v", resp.Header)
	}
}

// TestResendReusedClosedUnderIt: a kept-alive connection that the backend
// closes as the next request arrives (its idle timeout crossing ours)
// costs an idempotent request nothing: a PUT, body and all, or a POST with
// an Idempotency-Key, goes out again on a new connection. A plain POST is
// not sent twice (the backend may have acted on it before it closed): its
// client gets 502. The node is blamed for none of it.
func TestResendReusedClosedUnderIt(t *testing.T) {
	be := testhttp.NewRequestBackend(t, func(b *testhttp.Backend, c net.Conn, br *bufio.Reader, req *nethttp.Request, id int64, n int) bool {
		body, _ := io.ReadAll(req.Body)
		b.Record(testhttp.Request{Method: req.Method, URI: req.RequestURI, Body: body, Conn: id})
		if n == 1 {
			return false // the second request on a connection: closed under it
		}
		testhttp.Respond(c, 200, "", fmt.Sprintf("conn %d %s %s", id, req.URL.Path, body))
		return true
	})
	ts := startProxyTOML(t, testhttp.OneLoop(testhttp.ProxyTOML([]string{be.Addr}, "server_retry = 1", testhttp.StdProxy)), harnessOptions{})
	c := testhttp.Dial(t, ts.addr())
	if _, body := c.Do("GET /one HTTP/1.1\r\nHost: t\r\n\r\n"); body != "conn 1 /one " {
		t.Fatalf("first: %q", body)
	}
	resp, body := c.Do("PUT /two HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
	if resp.StatusCode != 200 || body != "conn 2 /two hello" {
		t.Fatalf("PUT on a reused connection closed under it: %d %q", resp.StatusCode, body)
	}
	resp, body = c.Do("POST /three HTTP/1.1\r\nHost: t\r\nIdempotency-Key: k1\r\nContent-Length: 5\r\n\r\nhello")
	if resp.StatusCode != 200 || body != "conn 3 /three hello" {
		t.Fatalf("POST with an Idempotency-Key: %d %q", resp.StatusCode, body)
	}
	c = testhttp.Dial(t, ts.addr())
	if resp, _ := c.Do("POST /four HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"); resp.StatusCode != 502 {
		t.Fatalf("plain POST on a connection closed under it: %d, want 502 (never sent twice)", resp.StatusCode)
	}
	posts := 0
	for _, r := range be.Requests() {
		if r.URI == "/four" {
			posts++
		}
	}
	if posts != 1 {
		t.Fatalf("the POST reached the backend %d times", posts)
	}
	n := ts.pool.Nodes()[0]
	if n.Down() || n.Failures.Load() != 0 {
		t.Fatalf("node blamed: down %v, failures %d", n.Down(), n.Failures.Load())
	}
	if got := ts.svc.Stats.Resends.Load(); got != 2 {
		t.Fatalf("%d resends counted, want 2", got)
	}
}

// TestResendIdempotent: a GET, PUT or DELETE whose connection is reset or
// times out before any response byte goes to the other node (a PUT with
// the body plb held whole), and the client gets that node's answer; a
// POST does not (502), nor anything with retries = 0. Each resend is
// logged and counted.
func TestResendIdempotent(t *testing.T) {
	a, b := testhttp.FlakyNode(t, "a", true), testhttp.FlakyNode(t, "b", false)
	var logs testutil.SyncBuffer
	start := func(keys string) string {
		ts := startProxyTOML(t, testhttp.ProxyTOML([]string{a.Addr, b.Addr}, "balance_method = \"round_robin\"\nserver_retry = 100",
			testhttp.ServiceKeys("persist_backend = false", `backend_timeout = "300ms"`, keys)),
			harnessOptions{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
		return ts.addr()
	}
	addr := start("")
	for i := 0; i < 4; i++ {
		for _, tc := range []struct{ req, want string }{
			{"GET /reset HTTP/1.1\r\nHost: t\r\n\r\n", "b GET /reset "},
			{"PUT /reset HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\ndata", "b PUT /reset data"},
			{"DELETE /hang HTTP/1.1\r\nHost: t\r\n\r\n", "b DELETE /hang "},
		} {
			c := testhttp.Dial(t, addr)
			if resp, body := c.Do(tc.req); resp.StatusCode != 200 || body != tc.want {
				t.Fatalf("%q: %d %q, want %q", strings.SplitN(tc.req, "\r", 2)[0], resp.StatusCode, body, tc.want)
			}
			c.NC.Close()
		}
	}
	if !strings.Contains(logs.String(), `msg="request sent again"`) {
		t.Fatalf("resends not logged:\n%s", logs.String())
	}
	// A POST that a reset meets on a fresh connection is not sent again.
	codes := map[int]int{}
	for i := 0; i < 4; i++ {
		resp, _ := testhttp.Status(t, addr, "POST /reset HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx")
		codes[resp]++
	}
	if codes[502] == 0 || codes[200] == 0 || codes[502]+codes[200] != 4 {
		t.Fatalf("POSTs alternating between a resetting node and a good one: %v", codes)
	}
	// retries = 0: none is sent again.
	addr0 := start("retries = 0")
	codes = map[int]int{}
	for i := 0; i < 4; i++ {
		resp, _ := testhttp.Status(t, addr0, "GET /reset HTTP/1.1\r\nHost: t\r\n\r\n")
		codes[resp]++
	}
	if codes[502] == 0 {
		t.Fatalf("retries = 0 still resent: %v", codes)
	}
}

// TestNodeKilledUnderLoad: one of two nodes dies (its connections reset,
// its port refused) while keep-alive clients load them: no client sees a
// failure, since every request the dead node had not begun to answer is
// sent again to the other.
func TestNodeKilledUnderLoad(t *testing.T) {
	a, b := testhttp.FlakyNode(t, "a", false), testhttp.FlakyNode(t, "b", false)
	ts := startProxy(t, []string{a.Addr, b.Addr}, `balance_method = "round_robin"`, testhttp.StdProxy)
	addr := ts.addr()
	const clients, each = 8, 300
	var done atomic.Int64
	failed := make(chan int64, 1)
	go func() { failed <- keepAliveLoad(addr, clients, each, &done) }()
	testhttp.WaitFor(t, "load under way", func() bool { return done.Load() > clients*each/4 })
	a.Kill()
	if n := <-failed; n > 0 {
		t.Fatalf("%d of %d requests failed when a node died", n, clients*each)
	}
}

// keepAliveLoad runs clients keep-alive connections to addr, each sending
// each GETs one after the other, and returns how many failed (an error or
// a status but 200); done counts the good ones as they come.
func keepAliveLoad(addr string, clients, each int, done *atomic.Int64) int64 {
	var failed atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := testhttp.DialQuiet(addr)
			if c == nil {
				failed.Add(int64(each))
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			for j := 0; j < each; j++ {
				io.WriteString(c, "GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
				resp, err := nethttp.ReadResponse(br, nil)
				if err != nil {
					failed.Add(int64(each - j))
					return
				}
				io.Copy(io.Discard, resp.Body)
				if resp.StatusCode != 200 {
					failed.Add(1)
					continue
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	return failed.Load()
}
