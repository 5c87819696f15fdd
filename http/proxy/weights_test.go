package proxy

import (
	"fmt"
	"net"
	nethttp "net/http"
	"testing"
	"time"

	"github.com/plb/plb/internal/testhttp"
	"github.com/plb/plb/internal/testutil"
)

// TestWeightsEndToEnd: with weights 3:1, 75% ± 5 points of 2,000 requests
// from 4 keep-alive clients reach the heavy node, with round_robin, random
// and least_conn (whose requests here never overlap: every pick is a tie,
// broken by weight). Not idle_first: it reuses whichever connection is
// idle, so requests that never overlap all take the same one; weights
// steer its new connections (TestWeightsShareRequests, in pool).
func TestWeightsEndToEnd(t *testing.T) {
	for _, method := range []string{"round_robin", "random", "least_conn"} {
		t.Run(method, func(t *testing.T) {
			a, b := testhttp.OKBackend(t, "a"), testhttp.OKBackend(t, "b")
			ts := startProxy(t, []string{a.Addr + " weight=3", b.Addr}, fmt.Sprintf("balance_method = %q", method), testhttp.StdProxy)
			clients := make([]*testhttp.Client, 4)
			for i := range clients {
				clients[i] = testhttp.Dial(t, ts.addr())
			}
			count := map[string]int{}
			for range 500 {
				for _, c := range clients {
					_, body := c.Do("GET /w HTTP/1.1\r\nHost: t\r\n\r\n")
					count[body[:1]]++
				}
			}
			if share := float64(count["a"]) / 2000; share < 0.70 || share > 0.80 {
				t.Errorf("weight 3 of 4 got %.1f%% (%v)", 100*share, count)
			}
		})
	}
}

// TestWeightZeroDrainsEndToEnd: a node set to weight 0 while it serves a
// request answers that request, and gets no new one.
func TestWeightZeroDrainsEndToEnd(t *testing.T) {
	slow, release := testhttp.HoldBackend(t, "slow", "/slow")
	other := testhttp.OKBackend(t, "other")
	ts := startProxy(t, []string{slow.Addr, other.Addr}, `balance_method = "round_robin"`, testhttp.StdProxy)
	c := testhttp.Dial(t, ts.addr())
	for {
		_, body := c.Do("GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
		if body == "other GET /x" {
			break // the next pick is the slow node
		}
	}
	c.Send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
	// At the node, not only picked for it: counted below as the node's
	// last request before the drain (it flaked when counted after).
	testhttp.WaitFor(t, "the request at the slow node", func() bool {
		reqs := slow.Requests()
		return ts.pool.Nodes()[0].Active.Load() == 1 && len(reqs) > 0 && reqs[len(reqs)-1].URI == "/slow"
	})
	if err := ts.pool.Add(slow.Addr + " weight=0"); err != nil {
		t.Fatal(err)
	}
	before := len(slow.Requests())
	for range 20 {
		if _, body := testhttp.Get(t, ts.addr(), "/y"); body != "other GET /y" {
			t.Fatalf("a new request went to %q", body)
		}
	}
	close(release)
	if _, body := c.Read("GET"); body != "slow /slow" {
		t.Fatalf("the request in flight got %q", body)
	}
	if n := len(slow.Requests()); n != before {
		t.Fatalf("the drained node got %d new requests", n-before)
	}
}

// TestDrainedWhileQueued: a client waiting for a backend connection
// (max_backend_conns) with its node already picked does not go to that
// node once it is drained: when a connection frees, the client picks
// again. (It dialed the drained node.)
func TestDrainedWhileQueued(t *testing.T) {
	release := make(chan struct{})
	a := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		if req.URL.Path == "/hold" {
			<-release
		}
		testhttp.Respond(c, 200, "Connection: close\r\n", "a "+req.URL.Path)
		return false
	})
	b := testhttp.OKBackend(t, "b")
	ts := startProxyTOML(t, testhttp.OneLoop(testhttp.ProxyTOML([]string{a.Addr, b.Addr}, `balance_method = "round_robin"`,
		testhttp.ServiceKeys("max_backend_conns = 1"))), harnessOptions{})
	c1 := testhttp.Dial(t, ts.addr())
	c1.Send("GET /hold HTTP/1.1\r\nHost: t\r\n\r\n") // round robin: a, the only connection
	testhttp.WaitFor(t, "/hold at a", func() bool { return len(a.Requests()) == 1 })
	c2 := testhttp.Dial(t, ts.addr())
	c2.Send("GET /next HTTP/1.1\r\nHost: t\r\n\r\n") // waits, b picked for it
	testhttp.WaitFor(t, "/next queued", func() bool { return ts.svc.Stats.Waiting.Load() == 1 })
	if err := ts.pool.Add(b.Addr + " weight=0"); err != nil {
		t.Fatal(err)
	}
	close(release)
	if _, body := c1.Read("GET"); body != "a /hold" {
		t.Fatalf("/hold: %q", body)
	}
	if _, body := c2.Read("GET"); body != "a /next" {
		t.Fatalf("the queued request got %q, want it at a", body)
	}
	if n := len(b.Requests()); n != 0 {
		t.Fatalf("the drained node got %d requests", n)
	}
}

// TestSlowStartEndToEnd: a node come back up in a pool with slow_start
// takes a share of the requests that grows with the clock: a fifth of
// them a quarter into the ramp (its share a quarter of the other's), a
// half once it is over.
func TestSlowStartEndToEnd(t *testing.T) {
	clock := testutil.NewClock(time.Unix(1_800_000_000, 0))
	a, b := testhttp.OKBackend(t, "a"), testhttp.OKBackend(t, "b")
	ts := startProxyTOML(t, testhttp.ProxyTOML([]string{a.Addr, b.Addr}, "balance_method = \"round_robin\"\nslow_start = \"10s\"", testhttp.StdProxy),
		harnessOptions{Now: clock.Now})
	nb := ts.pool.Nodes()[1]
	nb.MarkDown("test", clock.Now())
	nb.MarkUp("test", clock.Now())
	c := testhttp.Dial(t, ts.addr())
	share := func() float64 {
		hits := 0
		for range 400 {
			if _, body := c.Do("GET /s HTTP/1.1\r\nHost: t\r\n\r\n"); body[:1] == "b" {
				hits++
			}
		}
		return float64(hits) / 400
	}
	clock.Advance(2500 * time.Millisecond)
	if s := share(); s < 0.17 || s > 0.23 {
		t.Errorf("a quarter into the ramp: share %.2f, want 0.20", s)
	}
	clock.Advance(10 * time.Second)
	if s := share(); s < 0.47 || s > 0.53 {
		t.Errorf("after the ramp: share %.2f, want 0.50", s)
	}
}
