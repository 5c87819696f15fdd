package server

import (
	"log/slog"
	"net"
	nethttp "net/http"
	"strings"
	"testing"
	"time"
)

// startProxyLogged is startProxy with warnings logged to logs.
func startProxyLogged(t *testing.T, logs *logBuffer, nodes []string, poolKeys, svcKeys string) *testServer {
	t.Helper()
	return startServerOpts(t, proxyTOML(nodes, poolKeys, svcKeys),
		Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
}

// TestHealthAllNodesDown503AtOnce: when every node refuses, the client gets
// a 503 with Retry-After at once (not a hang), the nodes go down after
// server_retry failures, and from then on a 503 comes without a connection
// attempt.
func TestHealthAllNodesDown503AtOnce(t *testing.T) {
	var logs logBuffer
	nodes := []string{deadAddr(t), deadAddr(t)}
	ts := startProxyLogged(t, &logs, nodes, "server_retry = 2\ntimeout_cleanup = \"1h\"", stdProxy)
	addr := ts.addrOf("proxy")
	pool := ts.Pool("web")
	for i := 0; i < 2; i++ {
		start := time.Now()
		resp, _ := get(t, addr, "/x")
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("request %d: %s, Retry-After %q", i, resp.Status, resp.Header.Get("Retry-After"))
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("503 took %v", d)
		}
	}
	var attempts int64
	for _, n := range pool.Nodes() {
		if !n.Down() {
			t.Fatalf("%s not down after 2 refused connects", n.Name)
		}
		tr := n.LastTransition()
		if !tr.Down || tr.Reason != "2 consecutive failures on traffic, last: connection refused" {
			t.Fatalf("%s transition %+v", n.Name, tr)
		}
		attempts += n.Attempts.Load()
	}
	start := time.Now()
	for i := 0; i < 5; i++ {
		if resp, _ := get(t, addr, "/x"); resp.StatusCode != 503 {
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
}

// TestHealthPassiveTimeoutMarksDown: a node that accepts connections but
// never answers fails by timeout; a connect alone does not reset its run of
// failures, so server_retry timeouts take it down and the traffic moves to
// the other node.
func TestHealthPassiveTimeoutMarksDown(t *testing.T) {
	hang := newBackend(t, func(b *backend, c net.Conn, id int64) {
		io := make([]byte, 4096)
		for {
			if _, err := c.Read(io); err != nil {
				return
			}
		}
	})
	live := okBackend(t, "live")
	var logs logBuffer
	ts := startProxyLogged(t, &logs, []string{hang.addr, live.addr},
		"balance_method = \"round_robin\"\nserver_retry = 2\ntimeout_cleanup = \"1h\"",
		svcKeys(`backend_timeout = "300ms"`, "persist_backend = false"))
	addr := ts.addrOf("proxy")
	node := ts.Pool("web").Nodes()[0]
	timeouts := 0
	for i := 0; i < 8 && !node.Down(); i++ {
		resp, body := get(t, addr, "/x")
		switch {
		case resp.StatusCode == 504:
			timeouts++
		case resp.StatusCode != 200 || !strings.HasPrefix(body, "live "):
			t.Fatalf("%s %q", resp.Status, body)
		}
	}
	if !node.Down() || timeouts != 2 {
		t.Fatalf("down %v after %d timeouts (server_retry 2)", node.Down(), timeouts)
	}
	if r := node.LastTransition().Reason; r != "2 consecutive failures on traffic, last: timeout" {
		t.Fatalf("reason %q", r)
	}
	accepted := hang.accepted.Load()
	for i := 0; i < 6; i++ {
		if body := mustGet(t, addr, "/x"); !strings.HasPrefix(body, "live ") {
			t.Fatalf("body %q", body)
		}
	}
	if n := hang.accepted.Load(); n != accepted {
		t.Fatalf("down node got %d connections", n-accepted)
	}
	if !strings.Contains(logs.String(), `reason="2 consecutive failures on traffic, last: timeout"`) {
		t.Fatalf("transition not logged with its reason:\n%s", logs.String())
	}
}

// TestHealthPassiveBrokenReplyMarksDown: broken replies count as failures
// too, and a good response in between starts the count over.
func TestHealthPassiveBrokenReplyMarksDown(t *testing.T) {
	broken := true
	flaky := newHTTPBackend(t, func(b *backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		if broken && req.URL.Path != "/good" {
			c.Write([]byte("SSH-2.0-not-http\r\n\r\n"))
			return false
		}
		respond(c, 200, "", "flaky")
		return true
	})
	ts := startProxy(t, []string{flaky.addr}, "server_retry = 3\ntimeout_cleanup = \"1h\"", svcKeys("persist_backend = false"))
	addr := ts.addrOf("proxy")
	node := ts.Pool("web").Nodes()[0]
	for _, path := range []string{"/x", "/x", "/good", "/x", "/x"} {
		resp, _ := get(t, addr, path)
		if want := map[bool]int{true: 200, false: 502}[path == "/good"]; resp.StatusCode != want {
			t.Fatalf("%s: %s, want %d", path, resp.Status, want)
		}
	}
	if node.Down() {
		t.Fatal("down after 2+2 broken replies with a good one between (server_retry 3)")
	}
	get(t, addr, "/x")
	if !node.Down() {
		t.Fatal("not down after 3 broken replies in a row")
	}
	if r := node.LastTransition().Reason; !strings.HasPrefix(r, "3 consecutive failures on traffic, last: ") {
		t.Fatalf("reason %q", r)
	}
	if resp, _ := get(t, addr, "/good"); resp.StatusCode != 503 {
		t.Fatalf("only node down: %s", resp.Status)
	}
}
