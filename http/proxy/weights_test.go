package proxy

import (
	"fmt"
	"net"
	nethttp "net/http"
	"testing"

	"github.com/plb/plb/internal/testhttp"
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
	release := make(chan struct{})
	slow := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		if req.URL.Path == "/slow" {
			<-release
		}
		testhttp.Respond(c, 200, "", "slow "+req.URL.Path)
		return true
	})
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
	testhttp.WaitFor(t, "the request at the slow node", func() bool { return ts.pool.Nodes()[0].Active.Load() == 1 })
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
