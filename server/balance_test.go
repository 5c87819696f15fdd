package server

// Balancing over nodes, passive failure detection with revival by the
// prober, and graceful drain.

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"net"
	nethttp "net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/internal/testhttp"
)

func TestRoundRobinSpreads(t *testing.T) {
	var nodes []string
	var bes []*testhttp.Backend
	for i := 0; i < 3; i++ {
		be := testhttp.OKBackend(t, fmt.Sprint("n", i))
		bes = append(bes, be)
		nodes = append(nodes, be.Addr)
	}
	ts := startProxy(t, nodes, `balance_method = "round_robin"`, testhttp.ServiceKeys("persist_backend = false"))
	addr := ts.addrOf("proxy")
	for i := 0; i < 30; i++ {
		testhttp.MustGet(t, addr, "/x")
	}
	for i, be := range bes {
		if n := len(be.Requests()); n != 10 {
			t.Errorf("node %d got %d of 30 requests, want 10", i, n)
		}
	}
}

func TestRandomUsesEveryNode(t *testing.T) {
	var nodes []string
	var bes []*testhttp.Backend
	for i := 0; i < 3; i++ {
		be := testhttp.OKBackend(t, fmt.Sprint("n", i))
		bes = append(bes, be)
		nodes = append(nodes, be.Addr)
	}
	ts := startProxy(t, nodes, "", testhttp.ServiceKeys("persist_backend = false"))
	addr := ts.addrOf("proxy")
	for i := 0; i < 60; i++ {
		testhttp.MustGet(t, addr, "/x")
	}
	for i, be := range bes {
		if len(be.Requests()) == 0 { // (2/3)^60: never by chance
			t.Errorf("node %d got no request of 60", i)
		}
	}
}

func TestLeastConn(t *testing.T) {
	gate := make(chan struct{})
	handler := func(name string) testhttp.HTTPHandler {
		return func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
			if req.URL.Path == "/slow" {
				select {
				case <-gate:
				case <-time.After(testTimeout):
				}
			}
			testhttp.Respond(c, 200, "", name)
			return true
		}
	}
	a := testhttp.NewHTTPBackend(t, handler("a"))
	b := testhttp.NewHTTPBackend(t, handler("b"))
	// One loop: a response's bookkeeping (the node's Active count) is done
	// before the next request is read.
	ts := startServer(t, strings.Replace(testhttp.ProxyTOML([]string{a.Addr, b.Addr}, `balance_method = "least_conn"`,
		testhttp.ServiceKeys("persist_backend = false")), "workers = 2", "workers = 1", 1))
	addr := ts.addrOf("proxy")
	slow := testhttp.Dial(t, addr)
	slow.Send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
	testhttp.WaitFor(t, "the slow request at a backend", func() bool { return len(a.Requests())+len(b.Requests()) == 1 })
	busy, idle := "a", "b"
	if len(b.Requests()) == 1 {
		busy, idle = "b", "a"
	}
	for i := 0; i < 10; i++ {
		if got := testhttp.MustGet(t, addr, "/fast"); got != idle {
			t.Fatalf("request %d went to %s while %s was busy", i, got, busy)
		}
	}
	close(gate)
	if _, body := slow.Read("GET"); body != busy {
		t.Fatalf("slow request answered by %q", body)
	}
}

// TestNodeDownAndRevived: a refusing node is marked down after
// server_retry failures, gets no traffic while down, and the prober brings
// it back (every timeout_cleanup) once it listens again.
func TestNodeDownAndRevived(t *testing.T) {
	live := testhttp.OKBackend(t, "live")
	dead := testhttp.DeadAddr(t)
	ts := startProxy(t, []string{dead, live.Addr}, "balance_method = \"round_robin\"\nserver_retry = 2\ntimeout_cleanup = \"1s\"",
		testhttp.ServiceKeys("persist_backend = false"))
	addr := ts.addrOf("proxy")
	node := ts.Pool("web").Nodes()[0]
	for i := 0; !node.Down(); i++ {
		if i == 10 {
			t.Fatalf("node not marked down after %d requests (%d failures)", i, node.Failures.Load())
		}
		if body := testhttp.MustGet(t, addr, "/x"); !strings.HasPrefix(body, "live ") {
			t.Fatalf("body %q", body)
		}
	}
	attempts := node.Attempts.Load()
	for i := 0; i < 10; i++ {
		testhttp.MustGet(t, addr, "/x")
	}
	if n := node.Attempts.Load(); n != attempts {
		t.Fatalf("down node got %d connection attempts", n-attempts)
	}
	revived := testhttp.OKBackendAt(t, dead, "revived")
	start := time.Now()
	testhttp.WaitFor(t, "the prober to revive the node", func() bool { return !node.Down() })
	t.Logf("revived after %v", time.Since(start))
	seen := false
	for i := 0; i < 4; i++ {
		seen = seen || strings.HasPrefix(testhttp.MustGet(t, addr, "/x"), "revived ")
	}
	if !seen || len(revived.Requests()) == 0 {
		t.Fatal("revived node gets no traffic")
	}
}

// TestGracefulDrain: Shutdown(true) stops accepting, closes idle clients,
// lets an in-flight slow response finish whole, then Run returns.
func TestGracefulDrain(t *testing.T) {
	const size = 1 << 20
	body := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	started := make(chan struct{}, 1)
	be := testhttp.NewBackend(t, func(b *testhttp.Backend, c net.Conn, id int64) {
		br := bufio.NewReader(c)
		for {
			req, err := nethttp.ReadRequest(br)
			if err != nil {
				return
			}
			if req.URL.Path != "/slow" {
				testhttp.Respond(c, 200, "", "ok")
				continue
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size)
			started <- struct{}{}
			for off := 0; off < size; off += size / 8 {
				time.Sleep(50 * time.Millisecond)
				if _, err := c.Write(body[off : off+size/8]); err != nil {
					return
				}
			}
		}
	})
	ts := startProxy(t, []string{be.Addr}, "", testhttp.StdProxy)
	addr := ts.addrOf("proxy")
	idle := testhttp.Dial(t, addr)
	if resp, _ := idle.Do("GET /x HTTP/1.1\r\nHost: t\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	slow := testhttp.Dial(t, addr)
	slow.Send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
	<-started
	ts.Shutdown(true)

	idle.ExpectClosed()
	idle.NC.Close()
	testhttp.WaitFor(t, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	select {
	case <-ts.done:
		t.Fatal("Run returned with a response in flight")
	default:
	}
	resp, got := slow.Read("GET")
	if resp.StatusCode != 200 || got != string(body) {
		t.Fatalf("in-flight response: %d, %d of %d bytes", resp.StatusCode, len(got), size)
	}
	slow.ExpectClosed()
	slow.NC.Close()
	select {
	case <-ts.done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the drain")
	}
	if ts.runErr != nil {
		t.Fatal(ts.runErr)
	}
}

// TestNodefileReloaded: a pool's nodefile is re-read when it changes, and
// the new node gets the traffic.
func TestNodefileReloaded(t *testing.T) {
	a := testhttp.OKBackend(t, "a")
	b := testhttp.OKBackend(t, "b")
	file := filepath.Join(t.TempDir(), "nodes")
	if err := os.WriteFile(file, []byte("# first\n"+a.Addr+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	ts := startServerOpts(t, fmt.Sprintf(`[pool.web]
nodefile = %q
[service.proxy]
role = "reverse_proxy"
listen = "127.0.0.1:0"
pool = "web"
persist_client = true
persist_backend = true
`, file), Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	addr := ts.addrOf("proxy")
	if body := testhttp.MustGet(t, addr, "/x"); !strings.HasPrefix(body, "a ") {
		t.Fatalf("before: %q", body)
	}
	// A different mtime for certain, whatever the file system's resolution.
	// Its second line is a typo: a warning naming file:line, not silence.
	if err := os.WriteFile(file, []byte(b.Addr+" # the new one\n10.0.0.300\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(2 * time.Second)
	os.Chtimes(file, later, later)
	testhttp.WaitFor(t, "nodefile reload", func() bool {
		return strings.HasPrefix(testhttp.MustGet(t, addr, "/x"), "b ")
	})
	if !strings.Contains(logs.String(), file+":2") {
		t.Errorf("the nodefile's bad line 2 was not reported:\n%s", logs.String())
	}
	// The idle connections to the node the file dropped are closed.
	testhttp.WaitFor(t, "no connection left to the dropped node", func() bool { return a.Open.Load() == 0 })
}

// TestHashThroughServer: the server gives a pool its hash_key (a header
// here, then source_ip after a reload): requests with one key, or from one
// address, all reach one node; the console's SET changes the key live.
func TestHashThroughServer(t *testing.T) {
	a, b, c := testhttp.OKBackend(t, "a"), testhttp.OKBackend(t, "b"), testhttp.OKBackend(t, "c")
	ts := startProxy(t, []string{a.Addr, b.Addr, c.Addr}, "balance_method = \"hash\"\nhash_key = \"header:X-User\"", testhttp.StdProxy)
	seen := map[string]bool{}
	for i := range 30 {
		req := fmt.Sprintf("GET /x HTTP/1.1\r\nHost: t\r\nX-User: u%d\r\nConnection: close\r\n\r\n", i)
		_, first := testhttp.Dial(t, ts.addrOf("proxy")).Do(req)
		// The first request may still count as in flight for a moment
		// after its answer; bounded loads would then send the second
		// to the next node (it flaked so under load).
		testhttp.WaitFor(t, "no request in flight", func() bool {
			for _, n := range ts.Pool("web").Nodes() {
				if n.Active.Load() != 0 {
					return false
				}
			}
			return true
		})
		if _, again := testhttp.Dial(t, ts.addrOf("proxy")).Do(req); again[:1] != first[:1] {
			t.Fatalf("u%d: %q then %q", i, first, again)
		}
		seen[first[:1]] = true
	}
	if len(seen) < 2 {
		t.Fatalf("30 users reached %v", seen)
	}
	ts.exec("SET web.hash_key = source_ip")
	_, first := testhttp.Get(t, ts.addrOf("proxy"), "/y")
	for i := range 10 {
		if _, body := testhttp.Get(t, ts.addrOf("proxy"), fmt.Sprintf("/y%d", i)); body[:1] != first[:1] {
			t.Fatalf("one client address went to %q and %q", first[:1], body[:1])
		}
	}
}

// TestHashSettingsCheckedLive: the console's SET reaches the model without
// Validate, so Apply checks hash's settings itself: hash without a key, or
// a relay's pool hashing by URI, is refused and the running configuration
// stays.
func TestHashSettingsCheckedLive(t *testing.T) {
	a := testhttp.OKBackend(t, "a")
	ts := startProxy(t, []string{a.Addr}, "", testhttp.StdProxy)
	for _, tc := range []struct {
		lines []string
		want  string
	}{
		{[]string{"SET web.balance_method = hash"}, "balance_method hash needs hash_key"},
		{[]string{"SET web.balance_method = hash", "SET web.hash_key = uri", "CREATE SERVICE mx", "SET mx.role = smtp_proxy", "SET mx.pool = web"},
			"hashes by source_ip only"},
		{[]string{"SET proxy.sticky_cookie = SRV", "SET proxy.sticky_cookie_samesite = None"}, "None needs Secure"},
	} {
		cfg := ts.Config().Clone()
		o := ts.ConfigOptions()
		o.Running = true
		in := config.NewInterp(cfg, o)
		for _, l := range tc.lines {
			if _, err := in.Exec(l); err != nil {
				t.Fatalf("%s: %v", l, err)
			}
		}
		if err := ts.Apply(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%q: Apply said %v, want %q", tc.lines, err, tc.want)
		}
		if m := ts.Pool("web").Method(); m == "hash" {
			t.Fatalf("%q: the refused method runs", tc.lines)
		}
		if resp, _ := testhttp.Get(t, ts.addrOf("proxy"), "/"); resp.Header.Get("Set-Cookie") != "" {
			t.Fatalf("%q: the refused cookie is set: %q", tc.lines, resp.Header.Get("Set-Cookie"))
		}
	}
}

// TestStickyCookieSetLive: the console's SET turns a sticky cookie on,
// changes its attributes and turns it off, on the running service.
func TestStickyCookieSetLive(t *testing.T) {
	a, b := testhttp.OKBackend(t, "a"), testhttp.OKBackend(t, "b")
	ts := startProxy(t, []string{a.Addr, b.Addr}, `balance_method = "round_robin"`, testhttp.StdProxy)
	setCookie := func() string {
		resp, _ := testhttp.Get(t, ts.addrOf("proxy"), "/")
		return resp.Header.Get("Set-Cookie")
	}
	if sc := setCookie(); sc != "" {
		t.Fatalf("no sticky_cookie, yet %q", sc)
	}
	ts.exec("SET proxy.sticky_cookie = SRV")
	if sc := setCookie(); !strings.HasPrefix(sc, "SRV=") || !strings.HasSuffix(sc, "; Path=/; HttpOnly; SameSite=Lax") {
		t.Fatalf("after SET: %q", sc)
	}
	ts.exec("SET proxy.sticky_cookie_samesite = strict", "SET proxy.sticky_cookie_secure = on")
	if sc := setCookie(); !strings.HasSuffix(sc, "; SameSite=Strict; Secure") {
		t.Fatalf("after SET of the attributes: %q", sc)
	}
	ts.exec("SET proxy.sticky_cookie = none")
	if sc := setCookie(); sc != "" {
		t.Fatalf("turned off, yet %q", sc)
	}
}
