package proxy

import (
	"fmt"
	"testing"

	"github.com/plb/plb/internal/testhttp"
)

// TestHashEndToEnd: with balance_method hash, every request carrying the
// same key (a header, a cookie, the URI) reaches the same node, the keys
// spread over the nodes, two proxies of the same configuration agree
// (nothing shared but the configuration), and a request without the key
// still gets an answer.
func TestHashEndToEnd(t *testing.T) {
	nodes := []*testhttp.Backend{testhttp.OKBackend(t, "a"), testhttp.OKBackend(t, "b"), testhttp.OKBackend(t, "c")}
	addrs := []string{nodes[0].Addr, nodes[1].Addr, nodes[2].Addr}
	for _, tc := range []struct {
		key string
		req func(i int) string
	}{
		{"header:X-User", func(i int) string { return fmt.Sprintf("GET /x HTTP/1.1\r\nHost: t\r\nX-User: user-%d\r\n\r\n", i) }},
		{"cookie:sid", func(i int) string {
			return fmt.Sprintf("GET /x HTTP/1.1\r\nHost: t\r\nCookie: theme=dark; sid=s%d; lang=en\r\n\r\n", i)
		}},
		{"uri", func(i int) string { return fmt.Sprintf("GET /item/%d?v=1 HTTP/1.1\r\nHost: t\r\n\r\n", i) }},
	} {
		t.Run(tc.key, func(t *testing.T) {
			keys := fmt.Sprintf("balance_method = \"hash\"\nhash_key = %q", tc.key)
			one, two := startProxy(t, addrs, keys, testhttp.StdProxy), startProxy(t, addrs, keys, testhttp.StdProxy)
			c1, c2 := testhttp.Dial(t, one.addr()), testhttp.Dial(t, two.addr())
			spread := map[string]int{}
			for i := range 60 {
				_, first := c1.Do(tc.req(i))
				for range 3 {
					if _, again := c1.Do(tc.req(i)); again[:1] != first[:1] {
						t.Fatalf("key %d: %q then %q", i, first, again)
					}
				}
				if _, other := c2.Do(tc.req(i)); other[:1] != first[:1] {
					t.Fatalf("key %d: one proxy sent it to %q, the other to %q", i, first[:1], other[:1])
				}
				spread[first[:1]]++
			}
			if len(spread) != 3 {
				t.Errorf("60 keys reached only %v", spread)
			}
			if resp, _ := c1.Do("GET /x HTTP/1.1\r\nHost: t\r\n\r\n"); resp.StatusCode != 200 {
				t.Fatalf("a request without the key: %d", resp.StatusCode)
			}
		})
	}
}

// TestHashKeyFollowsHealth: a key whose node goes down is served by
// another, and comes back to its node when it is up.
func TestHashKeyFollowsHealth(t *testing.T) {
	a, b := testhttp.OKBackend(t, "a"), testhttp.OKBackend(t, "b")
	ts := startProxy(t, []string{a.Addr, b.Addr}, "balance_method = \"hash\"\nhash_key = \"header:X-User\"", testhttp.StdProxy)
	c := testhttp.Dial(t, ts.addr())
	req := "GET /x HTTP/1.1\r\nHost: t\r\nX-User: alice\r\n\r\n"
	_, home := c.Do(req)
	var node = ts.pool.Nodes()[0]
	if home[:1] == "b" {
		node = ts.pool.Nodes()[1]
	}
	node.SetDown(true)
	if _, body := c.Do(req); body[:1] == home[:1] {
		t.Fatalf("down node %s still got the key", node.Name)
	}
	node.SetDown(false)
	if _, body := c.Do(req); body[:1] != home[:1] {
		t.Fatalf("the key did not come back: %q, was %q", body, home)
	}
}
