package proxy

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/engine"
	"github.com/plb/plb/internal/testhttp"
	"github.com/plb/plb/pool"
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

// hashNodes runs a one-loop proxy hashing by X-User over five nodes named
// a to e, buffering request bodies before it picks a node (so that the
// pick comes in a later read than the head's).
func hashNodes(t *testing.T) *harness {
	var addrs []string
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		addrs = append(addrs, testhttp.OKBackend(t, n).Addr)
	}
	return runProxy(t, testhttp.OneLoop(testhttp.ProxyTOML(addrs, "balance_method = \"hash\"\nhash_key = \"header:X-User\"",
		testhttp.ServiceKeys("buffer_backend_connect = 100000"))))
}

// TestHashKeyKeptFromTheHead: a request whose node is picked after later
// reads (its body buffered first) goes where its key says: the key was
// read from the head's bytes after the body had overwritten them (the
// loop's read buffer), and the requests went round robin.
func TestHashKeyKeptFromTheHead(t *testing.T) {
	ts := hashNodes(t)
	c := testhttp.Dial(t, ts.addr())
	_, home := c.Do("GET /x HTTP/1.1\r\nHost: t\r\nX-User: alice\r\n\r\n")
	for i := range 10 {
		c2 := testhttp.Dial(t, ts.addr())
		c2.Send("POST /x HTTP/1.1\r\nHost: t\r\nX-User: alice\r\nContent-Length: 200\r\n\r\n")
		time.Sleep(20 * time.Millisecond) // the body in a read of its own
		c2.Send(strings.Repeat(string(rune('A'+i)), 200))
		if _, b := c2.Read("POST"); b[:1] != home[:1] {
			t.Fatalf("POST %d with alice's key went to %q, her GETs to %q", i, b[:1], home[:1])
		}
	}
}

// TestHashKeyNotAnotherClients: another client's bytes read meanwhile on
// the same loop do not choose the node of a request picked later: its
// key came from whatever the loop's read buffer held by then.
func TestHashKeyNotAnotherClients(t *testing.T) {
	ts := hashNodes(t)
	c := testhttp.Dial(t, ts.addr())
	_, home := c.Do("GET /x HTTP/1.1\r\nHost: t\r\nX-User: alice\r\n\r\n")
	for i := range 5 {
		victim := testhttp.Dial(t, ts.addr())
		victim.Send("POST /x HTTP/1.1\r\nHost: t\r\nX-User: alice\r\nContent-Length: 2\r\n\r\n")
		time.Sleep(20 * time.Millisecond)
		attacker := testhttp.Dial(t, ts.addr())
		attacker.Send(fmt.Sprintf("POST /x HTTP/1.1\r\nHost: t\r\nX-User: bob%02d\r\nContent-Le", i)) // never finished
		time.Sleep(20 * time.Millisecond)
		victim.Send("zz")
		if _, b := victim.Read("POST"); b[:1] != home[:1] {
			t.Fatalf("try %d: alice's request went to %q after another client's head, her home is %q", i, b[:1], home[:1])
		}
	}
}

// TestReleasedStateKeepsNoViews: request memory back on the free list
// points into none of the last client's bytes (its head's views, its key),
// so that a state kept there holds nothing of that client.
func TestReleasedStateKeepsNoViews(t *testing.T) {
	e, err := engine.New(engine.Config{Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	e.Start()
	t.Cleanup(e.Stop)
	l := e.Loops()[0]
	svc := New("p", settings(nil), 1, slog.New(slog.DiscardHandler))
	rs := svc.getReqState(l)
	if n, err := rs.parser.ParseRequest([]byte("GET /reset/SECRET HTTP/1.1\r\nHost: victim\r\nCookie: sid=SECRET\r\n\r\n"), &rs.req); err != nil || n == 0 {
		t.Fatalf("parse: %d %v", n, err)
	}
	rs.key = pool.HashBytes([]byte("SECRET"))
	svc.putReqState(l, rs)
	if again := svc.getReqState(l); again != rs {
		t.Fatal("the state did not come back from the free list")
	}
	hs := rs.req.Headers
	for i, h := range hs[:cap(hs)] {
		if h.Name != nil || h.Value != nil {
			t.Fatalf("header %d still points at %q: %q", i, h.Name, h.Value)
		}
	}
	if rs.req.Path != nil || rs.req.URI != nil || rs.req.Host != nil || rs.key != pool.NoKey {
		t.Fatalf("kept path %q, uri %q, host %q, key %x", rs.req.Path, rs.req.URI, rs.req.Host, rs.key)
	}
}
