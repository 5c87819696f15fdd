//go:build !race

package server

import (
	"net"
	"strings"
	"testing"

	"github.com/plb/plb/pool"
)

// TestProxyHotPathAllocatesNothing: a proxied request over kept-alive
// client and backend connections allocates nothing once warm, whatever
// the balance method (idle_first reuses first; the others pick the node
// first; hash by a key of the request), checks before reuse included. A func value made per request
// (a method value) would show here (issue 11).
func TestProxyHotPathAllocatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	for _, method := range []string{"idle_first", "round_robin", "least_conn", "random", "hash uri", "hash source_ip"} {
		r := testing.Benchmark(func(b *testing.B) {
			s := benchServer(b, benchProxyTOML(fixedBackend(b), "")+"")
			name, key, _ := strings.Cut(method, " ")
			if err := s.Pool("web").SetMethod(name); err != nil {
				b.Fatal(err)
			}
			if key != "" {
				k, err := pool.ParseHashKey(key)
				if err != nil {
					b.Fatal(err)
				}
				s.Pool("web").SetHashKey(k)
			}
			c, err := net.Dial("tcp", s.Addr("proxy").String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			benchRoundTrips(b, c, "/x", 100)
		})
		if r.N == 0 {
			t.Fatalf("%s: the benchmark did not run", method)
		}
		if a := r.AllocsPerOp(); a != 0 {
			t.Errorf("%s: %d allocations per proxied request", method, a)
		}
	}
}
