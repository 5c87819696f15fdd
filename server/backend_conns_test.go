package server

// The life of a backend connection (issue 11, DESIGN.md "Backend
// connections: the rules"): reuse only after a clean exchange, the node
// before the connection, idle connections sized by the load, verification
// as Perlbal meant it, safe retries, blame for the node's own faults,
// hop-by-hop fields, and a graceful stop that answers what it received.

import (
	"log/slog"
	"net"
	nethttp "net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plb/plb/internal/testhttp"
)

// TestOneURLDoesNotTakeNodesOut: a client whose URL makes every node reset
// or time out does not take the nodes out: after server_retry such
// failures a node is only suspect, a probe finds it answering, and it
// stays up; everyone else is served throughout.
func TestOneURLDoesNotTakeNodesOut(t *testing.T) {
	a, b := testhttp.FlakyNode(t, "a", true), testhttp.FlakyNode(t, "b", true)
	var logs logBuffer
	ts := startServerOpts(t, testhttp.ProxyTOML([]string{a.Addr, b.Addr}, "server_retry = 3",
		testhttp.ServiceKeys(`backend_timeout = "200ms"`)),
		Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	addr := ts.addrOf("proxy")
	for i := 0; i < 12; i++ {
		path := "/reset"
		if i%3 == 2 {
			path = "/hang"
		}
		code, _ := testhttp.Status(t, addr, "GET "+path+" HTTP/1.1\r\nHost: t\r\n\r\n")
		if code != 502 && code != 504 {
			t.Fatalf("attack %d: %d", i, code)
		}
		if body := testhttp.MustGet(t, addr, "/page"); !strings.HasSuffix(body, " GET /page ") {
			t.Fatalf("others: %q", body)
		}
	}
	testhttp.WaitFor(t, "the suspicions cleared by a probe", func() bool {
		for _, n := range ts.Pool("web").Nodes() {
			if s, _ := n.Suspect(); s {
				return false
			}
		}
		return true
	})
	for _, n := range ts.Pool("web").Nodes() {
		if n.Down() {
			t.Fatalf("%s down: %s", n.Name, n.LastTransition().Reason)
		}
	}
	if !strings.Contains(logs.String(), `msg="node kept up"`) {
		t.Fatalf("no probe cleared a node:\n%s", logs.String())
	}
}

// TestGracefulStopAnswersReceived: during a graceful stop, responses say
// Connection: close, and a request already received (pipelined behind one
// in flight) is answered before its connection closes.
func TestGracefulStopAnswersReceived(t *testing.T) {
	release := make(chan struct{})
	var arrived atomic.Int64
	be := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		if req.URL.Path == "/slow" {
			arrived.Add(1)
			<-release
		}
		testhttp.Respond(c, 200, "", req.URL.Path)
		return true
	})
	ts := startProxy(t, []string{be.Addr}, "", testhttp.StdProxy)
	addr := ts.addrOf("proxy")
	const n = 8
	conns := make([]*testhttp.Client, n)
	for i := range conns {
		conns[i] = testhttp.Dial(t, addr)
		if i%2 == 0 {
			conns[i].Send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\nGET /after HTTP/1.1\r\nHost: t\r\n\r\n")
		} else {
			conns[i].Send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
		}
	}
	testhttp.WaitFor(t, "every request at the backend", func() bool { return arrived.Load() == n })
	time.Sleep(20 * time.Millisecond) // the pipelined ones read by plb
	ts.Shutdown(true)
	time.Sleep(50 * time.Millisecond)
	close(release)
	for i, c := range conns {
		resp, body := c.Read("GET")
		if resp.StatusCode != 200 || body != "/slow" {
			t.Fatalf("conn %d: %d %q", i, resp.StatusCode, body)
		}
		if i%2 == 1 {
			if !resp.Close {
				t.Fatalf("conn %d: a response during the drain without Connection: close", i)
			}
			c.ExpectClosed()
			continue
		}
		if resp.Close {
			t.Fatalf("conn %d: closed with a pipelined request received", i)
		}
		resp, body = c.Read("GET")
		if resp.StatusCode != 200 || body != "/after" || !resp.Close {
			t.Fatalf("conn %d, pipelined: %d %q close=%v", i, resp.StatusCode, body, resp.Close)
		}
		c.ExpectClosed()
	}
}
