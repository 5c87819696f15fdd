package proxy

import (
	"fmt"
	"net"
	nethttp "net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/plb/plb/config"
	"github.com/plb/plb/internal/testhttp"
	"github.com/plb/plb/pool"
)

// stickyDo sends GET path on c with cookie as its Cookie field ("" none)
// and returns the answering node's name (the body's first word) and the
// response's Set-Cookie fields.
func stickyDo(t *testing.T, c *testhttp.Client, path, cookie string) (string, []string) {
	t.Helper()
	req := "GET " + path + " HTTP/1.1\r\nHost: t\r\n"
	if cookie != "" {
		req += "Cookie: " + cookie + "\r\n"
	}
	resp, body := c.Do(req + "\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s with %q: %d %q", path, cookie, resp.StatusCode, body)
	}
	node, _, _ := strings.Cut(body, " ")
	return node, resp.Header.Values("Set-Cookie")
}

// stickyValue is the value NAME=value of the one Set-Cookie field in sc,
// checked to carry the default attributes.
func stickyValue(t *testing.T, sc []string) string {
	t.Helper()
	if len(sc) != 1 {
		t.Fatalf("want one Set-Cookie, got %q", sc)
	}
	v, attrs, _ := strings.Cut(sc[0], "; ")
	if attrs != "Path=/; HttpOnly; SameSite=Lax" {
		t.Fatalf("attributes %q", sc[0])
	}
	return v
}

// tokenOfNode is the cookie value naming the node of h's pool at addr.
func tokenOfNode(t *testing.T, h *harness, addr string) string {
	t.Helper()
	for _, n := range h.pool.Nodes() {
		if n.Name == addr {
			return string(n.Token().Append(nil))
		}
	}
	t.Fatalf("no node %s", addr)
	return ""
}

// TestStickyCookieEndToEnd: with sticky_cookie, under every balance
// method, a client without the cookie gets one naming the node that
// answered; with it, all its requests go to that node and set no cookie
// again; a second proxy of the same configuration (nothing shared but
// the configuration) sends it to the same node; and the cookies of new
// clients spread over the nodes as the method does (idle_first's
// sequential clients all take its one idle connection).
func TestStickyCookieEndToEnd(t *testing.T) {
	for _, method := range []string{"idle_first", "round_robin", "random", "least_conn", "hash"} {
		t.Run(method, func(t *testing.T) {
			nodes := []*testhttp.Backend{testhttp.OKBackend(t, "a"), testhttp.OKBackend(t, "b"), testhttp.OKBackend(t, "c")}
			addrs := []string{nodes[0].Addr, nodes[1].Addr, nodes[2].Addr}
			poolKeys := fmt.Sprintf("balance_method = %q", method)
			if method == "hash" {
				poolKeys += "\nhash_key = \"uri\"" // the cookie wins over the URI's node
			}
			svcKeys := testhttp.ServiceKeys(`sticky_cookie = "SRV"`)
			one, two := startProxy(t, addrs, poolKeys, svcKeys), startProxy(t, addrs, poolKeys, svcKeys)
			byName := map[string]string{"a": addrs[0], "b": addrs[1], "c": addrs[2]}
			spread := map[string]int{}
			for i := range 30 {
				c1 := testhttp.Dial(t, one.addr())
				home, sc := stickyDo(t, c1, fmt.Sprintf("/first/%d", i), "")
				cookie := stickyValue(t, sc)
				if want := "SRV=" + tokenOfNode(t, one, byName[home]); cookie != want {
					t.Fatalf("node %s set %q, want %q", home, cookie, want)
				}
				spread[home]++
				// Many paths (the hash method's URIs), other cookies
				// around it, on this connection and on new ones to
				// either proxy.
				for j := range 6 {
					c := c1
					if j%2 == 1 {
						c = testhttp.Dial(t, []string{one.addr(), two.addr()}[j/2%2])
					}
					node, sc := stickyDo(t, c, fmt.Sprintf("/p/%d/%d", i, j), "theme=dark; "+cookie+"; lang=en")
					if node != home || len(sc) != 0 {
						t.Fatalf("client %d, request %d: node %s (home %s), Set-Cookie %q", i, j, node, home, sc)
					}
				}
			}
			// idle_first reuses the one idle connection for requests
			// that never overlap: its new clients all stick to one node.
			if len(spread) != 3 && method != "idle_first" {
				t.Errorf("30 new clients stuck to %v", spread)
			}
		})
	}
}

// TestStickyCookieMoves: a client whose node goes down, or is drained
// (weight 0), is served by another node and gets that node's cookie, on
// which it stays when its old node is back; a cookie that names no node
// (made up, mangled, of a node since removed) is answered by the balance
// method and replaced.
func TestStickyCookieMoves(t *testing.T) {
	a, b, c := testhttp.OKBackend(t, "a"), testhttp.OKBackend(t, "b"), testhttp.OKBackend(t, "c")
	ts := startProxy(t, []string{a.Addr, b.Addr, c.Addr}, `balance_method = "round_robin"`, testhttp.ServiceKeys(`sticky_cookie = "SRV"`))
	cl := testhttp.Dial(t, ts.addr())
	nodeA := ts.pool.Nodes()[0]
	cookieA := "SRV=" + tokenOfNode(t, ts, a.Addr)
	if node, sc := stickyDo(t, cl, "/", cookieA); node != "a" || len(sc) != 0 {
		t.Fatalf("a's cookie: node %s, Set-Cookie %q", node, sc)
	}

	for _, leave := range []struct {
		name       string
		away, back func()
	}{
		{"down", func() { nodeA.SetDown(true) }, func() { nodeA.SetDown(false) }},
		{"drained", func() { ts.pool.Add(a.Addr + " weight=0") }, func() { ts.pool.Add(a.Addr) }},
	} {
		leave.away()
		node, sc := stickyDo(t, cl, "/", cookieA)
		if node == "a" {
			t.Fatalf("%s: a still served its cookie", leave.name)
		}
		moved := stickyValue(t, sc)
		if want := "SRV=" + tokenOfNode(t, ts, map[string]string{"b": b.Addr, "c": c.Addr}[node]); moved != want {
			t.Fatalf("%s: node %s set %q, want %q", leave.name, node, moved, want)
		}
		leave.back()
		for range 5 {
			if again, sc := stickyDo(t, cl, "/", moved); again != node || len(sc) != 0 {
				t.Fatalf("%s: with the new cookie, node %s (want %s), Set-Cookie %q", leave.name, again, node, sc)
			}
		}
	}

	tok := tokenOfNode(t, ts, a.Addr)
	for _, bad := range []string{
		"SRV=",
		"SRV=zz" + tok[2:],
		"SRV=" + strings.ToUpper(tok),
		"SRV=" + tok + "0",
		"SRV=" + tok[1:],
		"SRV=0123456789abcdef",
		"SRV=" + string(poolTokenOf(t, "10.9.9.9:80")), // a node not in the pool
		"srv=" + tok, // cookie names are case-sensitive
	} {
		node, sc := stickyDo(t, cl, "/", bad)
		if v := stickyValue(t, sc); v != "SRV="+tokenOfNode(t, ts, map[string]string{"a": a.Addr, "b": b.Addr, "c": c.Addr}[node]) {
			t.Fatalf("cookie %q: node %s set %q", bad, node, v)
		}
	}
}

// poolTokenOf is the token a node at addr would have.
func poolTokenOf(t *testing.T, addr string) []byte {
	t.Helper()
	n, err := pool.ParseNode(addr)
	if err != nil {
		t.Fatal(err)
	}
	return n.Token().Append(nil)
}

// TestStickyCookieAttributes: the cookie's attributes follow the keys,
// and Secure is set on a TLS listener, on a plain one with
// sticky_cookie_secure, and for a TLS client of a plain service (a TLS
// selector's).
func TestStickyCookieAttributes(t *testing.T) {
	node, _ := pool.ParseNode("10.0.0.1:80")
	tok := string(node.Token().Append(nil))
	for _, tc := range []struct {
		keys string
		tls  bool
		want string
	}{
		{``, false, "; Path=/; HttpOnly; SameSite=Lax"},
		{``, true, "; Path=/; HttpOnly; SameSite=Lax; Secure"},
		{"sticky_cookie_secure = true", false, "; Path=/; HttpOnly; SameSite=Lax; Secure"},
		{"sticky_cookie_path = \"/shop\"\nsticky_cookie_max_age = \"1h\"\nsticky_cookie_httponly = false\nsticky_cookie_samesite = \"strict\"", false,
			"; Path=/shop; Max-Age=3600; SameSite=Strict"},
		{"sticky_cookie_samesite = \"off\"\nsticky_cookie_max_age = \"500ms\"", false, "; Path=/; Max-Age=1; HttpOnly"},
		{"sticky_cookie_samesite = \"None\"\nsticky_cookie_secure = true", false, "; Path=/; HttpOnly; SameSite=None; Secure"},
	} {
		cfg, err := config.Parse("t.toml", []byte(testhttp.ProxyTOML([]string{"10.0.0.1:80"}, "", "sticky_cookie = \"SRV\"\n"+tc.keys)), nil)
		if err != nil {
			t.Fatal(err)
		}
		sc := newStickyCookie(cfg.Service("proxy"))
		if got, want := string(sc.appendSetCookie(nil, node, tc.tls)), "Set-Cookie: SRV="+tok+tc.want+"\r\n"; got != want {
			t.Errorf("%q (tls %v):\n got %q\nwant %q", tc.keys, tc.tls, got, want)
		}
	}
	cfg, err := config.Parse("t.toml", []byte(testhttp.ProxyTOML([]string{"10.0.0.1:80"}, "", "")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if newStickyCookie(cfg.Service("proxy")) != nil {
		t.Error("a sticky cookie without sticky_cookie")
	}
}

// TestStickyWhileQueued: a client with a cookie waiting for a backend
// connection (max_backend_conns) is not handed another node's connection
// when it frees, under idle_first, whose queued clients otherwise take
// whichever connection frees first: it goes to its own node.
func TestStickyWhileQueued(t *testing.T) {
	a, release := testhttp.HoldBackend(t, "a", "/hold")
	b := testhttp.OKBackend(t, "b")
	ts := startProxyTOML(t, testhttp.OneLoop(testhttp.ProxyTOML([]string{a.Addr, b.Addr}, `balance_method = "idle_first"`,
		testhttp.ServiceKeys("max_backend_conns = 1\nsticky_cookie = \"SRV\""))), harnessOptions{})
	c1 := testhttp.Dial(t, ts.addr())
	c1.Send("GET /hold HTTP/1.1\r\nHost: t\r\nCookie: SRV=" + tokenOfNode(t, ts, a.Addr) + "\r\n\r\n")
	testhttp.WaitFor(t, "/hold at a", func() bool { return len(a.Requests()) == 1 })
	c2 := testhttp.Dial(t, ts.addr())
	c2.Send("GET /next HTTP/1.1\r\nHost: t\r\nCookie: SRV=" + tokenOfNode(t, ts, b.Addr) + "\r\n\r\n")
	testhttp.WaitFor(t, "/next queued", func() bool { return ts.svc.Stats.Waiting.Load() == 1 })
	close(release)
	if _, body := c1.Read("GET"); body != "a /hold" {
		t.Fatalf("/hold: %q", body)
	}
	resp, body := c2.Read("GET")
	if body != "b GET /next" || len(resp.Header.Values("Set-Cookie")) != 0 {
		t.Fatalf("the queued request with b's cookie got %q, Set-Cookie %q", body, resp.Header.Values("Set-Cookie"))
	}
}

// TestStickyResendStaysHome: a request whose kept-alive connection to
// its sticky node closed under it goes out again to the same node, not
// to the balance method's (round robin's next pick is the other node).
func TestStickyResendStaysHome(t *testing.T) {
	var dropped atomic.Bool
	a := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		if req.URL.Path == "/drop" && !dropped.Swap(true) {
			return false // closed without an answer, under the request
		}
		testhttp.Respond(c, 200, "", "a "+req.URL.Path)
		return true
	})
	b := testhttp.OKBackend(t, "b")
	ts := startProxyTOML(t, testhttp.OneLoop(testhttp.ProxyTOML([]string{a.Addr, b.Addr}, `balance_method = "round_robin"`,
		testhttp.ServiceKeys(`sticky_cookie = "SRV"`))), harnessOptions{})
	cookie := "SRV=" + tokenOfNode(t, ts, a.Addr)
	c := testhttp.Dial(t, ts.addr())
	if node, _ := stickyDo(t, c, "/warm", cookie); node != "a" {
		t.Fatalf("warm-up at %s", node)
	}
	if node, _ := stickyDo(t, c, "/rr", ""); node != "a" {
		t.Fatalf("round robin's first pick: %s", node) // its next is b
	}
	if node, sc := stickyDo(t, c, "/drop", cookie); node != "a" || len(sc) != 0 {
		t.Fatalf("the resent request went to %s, Set-Cookie %q", node, sc)
	}
	if !dropped.Load() {
		t.Fatal("a never dropped /drop")
	}
}

// TestStickyNodeFailsMoves: a request whose sticky node fails it goes to
// another node and gets that node's cookie: a node that closes every
// connection without an answer (the request is resent elsewhere, never
// to the node it tried), and one that answers 500 with
// enable_error_retries (the retries go where the balance method says).
func TestStickyNodeFailsMoves(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys string
		fail func(c net.Conn)
	}{
		{"closes", "", func(c net.Conn) {}},
		{"500", "enable_error_retries = true\nerror_retry_schedule = \"0,0,0\"", func(c net.Conn) {
			testhttp.Respond(c, 500, "", "a fails")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
				tc.fail(c)
				return false
			})
			b := testhttp.OKBackend(t, "b")
			ts := startProxy(t, []string{a.Addr, b.Addr}, `balance_method = "round_robin"`,
				testhttp.ServiceKeys("sticky_cookie = \"SRV\"\n"+tc.keys))
			c := testhttp.Dial(t, ts.addr())
			node, sc := stickyDo(t, c, "/x", "SRV="+tokenOfNode(t, ts, a.Addr))
			if node != "b" || stickyValue(t, sc) != "SRV="+tokenOfNode(t, ts, b.Addr) {
				t.Fatalf("with a's cookie: node %s, Set-Cookie %q", node, sc)
			}
		})
	}
}

// TestStickyQueuedNodeRemoved: a client queued (max_backend_conns) with
// the cookie of a node that is removed from the pool while it waits goes
// to another node, and gets that node's cookie.
func TestStickyQueuedNodeRemoved(t *testing.T) {
	a, release := testhttp.HoldBackend(t, "a", "/hold")
	b := testhttp.OKBackend(t, "b")
	ts := startProxyTOML(t, testhttp.OneLoop(testhttp.ProxyTOML([]string{a.Addr, b.Addr}, `balance_method = "round_robin"`,
		testhttp.ServiceKeys("max_backend_conns = 1\nsticky_cookie = \"SRV\""))), harnessOptions{})
	cookieA := "SRV=" + tokenOfNode(t, ts, a.Addr)
	c1 := testhttp.Dial(t, ts.addr())
	c1.Send("GET /hold HTTP/1.1\r\nHost: t\r\nCookie: " + cookieA + "\r\n\r\n")
	testhttp.WaitFor(t, "/hold at a", func() bool { return len(a.Requests()) == 1 })
	c2 := testhttp.Dial(t, ts.addr())
	c2.Send("GET /next HTTP/1.1\r\nHost: t\r\nCookie: " + cookieA + "\r\n\r\n")
	testhttp.WaitFor(t, "/next queued", func() bool { return ts.svc.Stats.Waiting.Load() == 1 })
	tokB := tokenOfNode(t, ts, b.Addr)
	if err := ts.pool.Remove(a.Addr); err != nil {
		t.Fatal(err)
	}
	close(release)
	if _, body := c1.Read("GET"); body != "a /hold" {
		t.Fatalf("/hold: %q", body)
	}
	resp, body := c2.Read("GET")
	if body != "b GET /next" || stickyValue(t, resp.Header.Values("Set-Cookie")) != "SRV="+tokB {
		t.Fatalf("the queued request with the removed node's cookie got %q, Set-Cookie %q", body, resp.Header.Values("Set-Cookie"))
	}
}
