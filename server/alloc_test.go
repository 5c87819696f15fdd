//go:build !race

package server

import (
	"bufio"
	"net"
	nethttp "net/http"
	"strings"
	"testing"

	"github.com/plb/plb/pool"
)

// TestProxyHotPathAllocatesNothing: a proxied request over kept-alive
// client and backend connections allocates nothing once warm, whatever
// the balance method (idle_first reuses first; the others pick the node
// first; hash by a key of the request), checks before reuse included,
// and with a sticky cookie (sent back, or not, which sets it in every
// response). A func value made per request (a method value) would show
// here (issue 11).
func TestProxyHotPathAllocatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	for _, tc := range []string{"idle_first", "round_robin", "least_conn", "random", "hash uri", "hash source_ip",
		"round_robin sticky", "round_robin sticky-kept"} {
		r := testing.Benchmark(func(b *testing.B) {
			backend := fixedBackend(b)
			method, key, _ := strings.Cut(tc, " ")
			extra, header := "", ""
			if strings.HasPrefix(key, "sticky") {
				extra = "sticky_cookie = \"SRV\"\n"
				if key == "sticky-kept" {
					n, err := pool.ParseNode(backend)
					if err != nil {
						b.Fatal(err)
					}
					header = "Cookie: a=1; SRV=" + string(n.Token().Append(nil)) + "\r\n"
				}
				key = ""
			}
			s := benchServer(b, benchProxyTOML(backend, extra))
			if err := s.Pool("web").SetMethod(method); err != nil {
				b.Fatal(err)
			}
			if key != "" {
				k, err := pool.ParseHashKey(key)
				if err != nil {
					b.Fatal(err)
				}
				s.Pool("web").SetHashKey(k)
			}
			if extra != "" {
				// The path measured: a cookie set in every response, or
				// in none (the token named the node).
				set := setCookieOf(b, s.Addr("proxy").String(), header)
				if strings.HasSuffix(tc, "kept") != (set == "") {
					b.Fatalf("%s: Set-Cookie %q", tc, set)
				}
			}
			c, err := net.Dial("tcp", s.Addr("proxy").String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			benchRoundTripsWith(b, c, "/x", header, 100)
		})
		if r.N == 0 {
			t.Fatalf("%s: the benchmark did not run", tc)
		}
		if a := r.AllocsPerOp(); a != 0 {
			t.Errorf("%s: %d allocations per proxied request", tc, a)
		}
	}
}

// setCookieOf is the Set-Cookie of the answer to GET /x with the extra
// header lines, on a connection of its own.
func setCookieOf(b *testing.B, addr, header string) string {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET /x HTTP/1.1\r\nHost: bench\r\n" + header + "\r\n")); err != nil {
		b.Fatal(err)
	}
	resp, err := nethttp.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("Set-Cookie")
}
