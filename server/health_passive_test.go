package server

import (
	"log/slog"
	"net"
	nethttp "net/http"
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/internal/testhttp"
)

// startProxyLogged is startProxy with warnings logged to logs.
func startProxyLogged(t *testing.T, logs *logBuffer, nodes []string, poolKeys, svcKeys string) *testServer {
	t.Helper()
	return startServerOpts(t, testhttp.ProxyTOML(nodes, poolKeys, svcKeys),
		Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
}

// TestHealthAllNodesDown503AtOnce: when every node refuses, the client gets
// a 503 with Retry-After at once (not a hang), the nodes go down after
// server_retry failures (the first at once; the last only once a probe
// confirmed it, since passive evidence alone never takes out most of a
// pool), and from then on a 503 comes without a connection attempt.
func TestHealthAllNodesDown503AtOnce(t *testing.T) {
	var logs logBuffer
	nodes := []string{testhttp.DeadAddr(t), testhttp.DeadAddr(t)}
	ts := startProxyLogged(t, &logs, nodes, "server_retry = 2\ntimeout_cleanup = \"1h\"", testhttp.StdProxy)
	addr := ts.addrOf("proxy")
	pool := ts.Pool("web")
	for i := 0; i < 2; i++ {
		start := time.Now()
		resp, _ := testhttp.Get(t, addr, "/x")
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("request %d: %s, Retry-After %q", i, resp.Status, resp.Header.Get("Retry-After"))
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("503 took %v", d)
		}
	}
	testhttp.WaitFor(t, "both nodes down", func() bool { return pool.Nodes()[0].Down() && pool.Nodes()[1].Down() })
	var attempts int64
	direct, confirmed := 0, 0
	for _, n := range pool.Nodes() {
		tr := n.LastTransition()
		switch tr.Reason {
		case "2 consecutive failures on traffic, last: connection refused":
			direct++
		case "2 consecutive failures on traffic, last: connection refused; confirmed by http OPTIONS * probe: connection refused":
			confirmed++
		default:
			t.Fatalf("%s transition %+v", n.Name, tr)
		}
		attempts += n.Attempts.Load()
	}
	if direct != 1 || confirmed != 1 {
		t.Fatalf("%d nodes down on traffic alone, %d confirmed by a probe; want 1 and 1", direct, confirmed)
	}
	start := time.Now()
	for i := 0; i < 5; i++ {
		if resp, _ := testhttp.Get(t, addr, "/x"); resp.StatusCode != 503 {
			t.Fatalf("all down: %s", resp.Status)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("5 requests with every node down took %v", d)
	}
	var after int64
	for _, n := range pool.Nodes() {
		after += n.Attempts.Load()
	}
	if after != attempts {
		t.Fatalf("%d connection attempts to down nodes", after-attempts)
	}
	if n := strings.Count(logs.String(), "node down"); n != 2 {
		t.Fatalf("%d 'node down' lines, want one per node:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "node suspect"); n != 1 {
		t.Fatalf("%d 'node suspect' lines, want 1:\n%s", n, logs.String())
	}
}

// TestHealthPassiveTimeoutMarksDown: a node that accepts connections but
// never answers fails by timeout; each GET is sent again to the other node
// (the client never sees the timeout), a connect alone does not reset the
// node's run of failures, and after server_retry of them a probe confirms
// that the node answers nobody: it goes down and the traffic stays on the
// other node.
func TestHealthPassiveTimeoutMarksDown(t *testing.T) {
	hang := testhttp.NewBackend(t, func(b *testhttp.Backend, c net.Conn, id int64) {
		io := make([]byte, 4096)
		for {
			if _, err := c.Read(io); err != nil {
				return
			}
		}
	})
	live := testhttp.OKBackend(t, "live")
	var logs logBuffer
	ts := startProxyLogged(t, &logs, []string{hang.Addr, live.Addr},
		"balance_method = \"round_robin\"\nserver_retry = 2\ntimeout_cleanup = \"1h\"",
		testhttp.ServiceKeys(`backend_timeout = "300ms"`, "persist_backend = false"))
	addr := ts.addrOf("proxy")
	node := ts.Pool("web").Nodes()[0]
	for i := 0; i < 4; i++ {
		if body := testhttp.MustGet(t, addr, "/x"); !strings.HasPrefix(body, "live ") {
			t.Fatalf("body %q", body)
		}
	}
	if s, _ := node.Suspect(); !s && !node.Down() {
		t.Fatalf("not suspect after %d timeouts (server_retry 2)", node.Failures.Load())
	}
	for deadline := time.Now().Add(testTimeout); !node.Down(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the hanging node is not down:\n%s", logs.String())
		}
	}
	want := "2 consecutive request failures, last: timeout; confirmed by http OPTIONS * probe: timeout"
	if r := node.LastTransition().Reason; r != want {
		t.Fatalf("reason %q, want %q", r, want)
	}
	accepted := hang.Accepted.Load()
	for i := 0; i < 6; i++ {
		if body := testhttp.MustGet(t, addr, "/x"); !strings.HasPrefix(body, "live ") {
			t.Fatalf("body %q", body)
		}
	}
	if n := hang.Accepted.Load(); n != accepted {
		t.Fatalf("down node got %d connections", n-accepted)
	}
	if !strings.Contains(logs.String(), `reason="`+want+`"`) {
		t.Fatalf("transition not logged with its reason:\n%s", logs.String())
	}
}

// TestHealthPassiveBrokenReplyMarksDown: broken replies count as failures
// too, a good response in between starts the count over, and after
// server_retry in a row the node goes down once a probe finds it broken
// for everyone.
func TestHealthPassiveBrokenReplyMarksDown(t *testing.T) {
	broken := true
	flaky := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		if broken && req.URL.Path != "/good" {
			c.Write([]byte("SSH-2.0-not-http\r\n\r\n"))
			return false
		}
		testhttp.Respond(c, 200, "", "flaky")
		return true
	})
	ts := startProxy(t, []string{flaky.Addr}, "server_retry = 3\ntimeout_cleanup = \"1h\"", testhttp.ServiceKeys("persist_backend = false"))
	addr := ts.addrOf("proxy")
	node := ts.Pool("web").Nodes()[0]
	for _, path := range []string{"/x", "/x", "/good", "/x", "/x"} {
		resp, _ := testhttp.Get(t, addr, path)
		if want := map[bool]int{true: 200, false: 502}[path == "/good"]; resp.StatusCode != want {
			t.Fatalf("%s: %s, want %d", path, resp.Status, want)
		}
	}
	if s, _ := node.Suspect(); s || node.Down() {
		t.Fatal("suspect after 2+2 broken replies with a good one between (server_retry 3)")
	}
	testhttp.Get(t, addr, "/x")
	testhttp.WaitFor(t, "the broken node down", node.Down)
	if r := node.LastTransition().Reason; !strings.HasPrefix(r, "3 consecutive request failures, last: ") ||
		!strings.Contains(r, "; confirmed by http OPTIONS * probe: ") {
		t.Fatalf("reason %q", r)
	}
	if resp, _ := testhttp.Get(t, addr, "/good"); resp.StatusCode != 503 {
		t.Fatalf("only node down: %s", resp.Status)
	}
}
