package server

import (
	"net"
	nethttp "net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/internal/testhttp"
)

// TestHealthHTTPCheckOutAndBack: with active HTTP checks, a node whose
// /health answers 503 goes down after fall failed checks (no traffic
// reaches it meanwhile... once down), and comes back after rise good ones;
// each transition is logged once with its reason and shows on the node.
func TestHealthHTTPCheckOutAndBack(t *testing.T) {
	var sick atomic.Bool
	var checks atomic.Int64
	a := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		if req.URL.Path == "/health" {
			checks.Add(1)
			if sick.Load() {
				testhttp.Respond(c, 503, "", "sick")
			} else {
				testhttp.Respond(c, 200, "", "fine")
			}
			return false
		}
		testhttp.Respond(c, 200, "", "a "+req.RequestURI)
		return true
	})
	b := testhttp.OKBackend(t, "b")
	var logs logBuffer
	ts := startProxyLogged(t, &logs, []string{a.Addr, b.Addr}, `balance_method = "round_robin"
check = "http"
check_path = "/health"
check_interval = "100ms"
timeout_cleanup = "100ms"
fall = 2
rise = 2
`, testhttp.ServiceKeys("persist_backend = false")) // idle connections to b would take every request
	addr := ts.addrOf("proxy")
	node := ts.Pool("web").Nodes()[0]
	testhttp.WaitFor(t, "active checks", func() bool { return checks.Load() >= 2 })
	if node.Down() {
		t.Fatal("healthy node down")
	}
	sick.Store(true)
	testhttp.WaitFor(t, "the failing checks to take the node down", node.Down)
	tr := node.LastTransition()
	if want := "2 http GET /health checks failed, last: health: bad status 503"; tr.Reason != want {
		t.Fatalf("reason %q, want %q", tr.Reason, want)
	}
	n := served(a)
	for i := 0; i < 6; i++ {
		if body := testhttp.MustGet(t, addr, "/x"); !strings.HasPrefix(body, "b ") {
			t.Fatalf("down node answered: %q", body)
		}
	}
	if served(a) != n {
		t.Fatal("down node got traffic")
	}
	sick.Store(false)
	testhttp.WaitFor(t, "the good probes to bring the node back", func() bool { return !node.Down() })
	if r := node.LastTransition().Reason; r != "2 http GET /health probes succeeded" {
		t.Fatalf("reason %q", r)
	}
	seen := false
	for i := 0; i < 4 && !seen; i++ {
		seen = strings.HasPrefix(testhttp.MustGet(t, addr, "/x"), "a ")
	}
	if !seen {
		t.Fatal("revived node gets no traffic")
	}
	time.Sleep(300 * time.Millisecond) // a few more healthy checks: no transition
	log := logs.String()
	if d, u := strings.Count(log, "node down"), strings.Count(log, "node up"); d != 1 || u != 1 || node.Transitions() != 2 {
		t.Fatalf("%d down and %d up lines, %d transitions; want one each:\n%s", d, u, node.Transitions(), log)
	}
	if !strings.Contains(log, `node=`+a.Addr) || !strings.Contains(log, `reason="2 http GET /health checks failed`) {
		t.Fatalf("log lacks the node or reason:\n%s", log)
	}
}

// TestHealthSetLive: health keys set at run time (as SET web.check = http
// on the console) take effect without a restart.
func TestHealthSetLive(t *testing.T) {
	var checks atomic.Int64
	a := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		if req.Method == "OPTIONS" {
			checks.Add(1)
			testhttp.Respond(c, 503, "", "")
			return false
		}
		testhttp.Respond(c, 200, "", "a")
		return true
	})
	b := testhttp.OKBackend(t, "b")
	ts := startProxy(t, []string{a.Addr, b.Addr}, "", testhttp.StdProxy)
	node := ts.Pool("web").Nodes()[0]
	time.Sleep(200 * time.Millisecond)
	if checks.Load() != 0 {
		t.Fatal("active checks without check_interval")
	}
	ts.exec("SET web.check = http", "SET web.check_interval = 100ms", "SET web.fall = 1")
	testhttp.WaitFor(t, "the OPTIONS check to take the node down", node.Down)
	if r := node.LastTransition().Reason; r != "http OPTIONS * check failed: health: bad status 503" {
		t.Fatalf("reason %q", r)
	}
}

// TestProbeTableIsCheckNames: the check names the configuration accepts
// are exactly the probes the server can make, so a probe added to one
// table and not the other fails here, not at a user's start.
func TestProbeTableIsCheckNames(t *testing.T) {
	var names []string
	for name := range probeTable() {
		names = append(names, name)
	}
	slices.Sort(names)
	want := slices.Sorted(slices.Values(config.CheckNames()))
	if !slices.Equal(names, want) {
		t.Fatalf("probe table %v, configuration's check names %v", names, want)
	}
}
