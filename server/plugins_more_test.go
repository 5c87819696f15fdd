package server

import (
	"bytes"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/internal/testhttp"
	"github.com/plb/plb/internal/testutil"
)

// The plugins of issue 4's last batch end to end: Throttle on a reverse
// proxy (delays on the loop's timers, concurrency, bans, lists), LazyCDN
// on a web server (hand-off to a fallback service, UDP ping) and
// FlvStreaming (Range to the backend, FLV header to the client).

// TestThrottleProxy: a second request within the threshold waits
// initial_delay on the loop (the backend sees nothing meanwhile), a third
// one in progress at the same time is over max_concurrent (403
// "Forbidden."), and a client that leaves during its delay frees its
// place.
func TestThrottleProxy(t *testing.T) {
	be := testhttp.OKBackend(t, "b")
	ts := startProxy(t, []string{be.Addr}, "", testhttp.ServiceKeys(`plugins = ["Throttle"]`,
		"initial_delay = 1", "max_delay = 4", "max_concurrent = 1"))
	addr := ts.addrOf("proxy")
	if got := testhttp.MustGet(t, addr, "/one"); got != "b GET /one" {
		t.Fatal(got)
	}
	// Its end (end_proxy_request, at the connection's close) frees the
	// address's one place.
	testhttp.WaitFor(t, "the first client closed", func() bool { return ts.proxySvc("proxy").Stats.ClientsOpen.Load() == 0 })
	// The second: delayed. It holds its address's one place meanwhile.
	c2 := testhttp.Dial(t, addr)
	start := time.Now()
	c2.Send("GET /two HTTP/1.1\r\nHost: h\r\n\r\n")
	testhttp.WaitFor(t, "the second request throttled", func() bool { return throttled(ts) == 1 })
	resp, body := testhttp.Get(t, addr, "/three")
	if resp.StatusCode != 403 || !strings.Contains(body, "Forbidden.") {
		t.Fatalf("over max_concurrent: %d %q", resp.StatusCode, body)
	}
	if n := served(be); n != 1 {
		t.Fatalf("the backend saw %d requests during the delay", n)
	}
	resp, body = c2.Read("GET")
	if d := time.Since(start); resp.StatusCode != 200 || body != "b GET /two" || d < 900*time.Millisecond {
		t.Fatalf("delayed request: %d %q after %v", resp.StatusCode, body, d)
	}
	// Kept alive: the next request on the same connection is throttled
	// again (2 s: initial_delay doubled), and its client leaves.
	c2.Send("GET /four HTTP/1.1\r\nHost: h\r\n\r\n")
	testhttp.WaitFor(t, "the fourth request throttled", func() bool { return throttled(ts) == 1 })
	c2.NC.Close()
	testhttp.WaitFor(t, "the throttled client gone", func() bool { return throttled(ts) == 0 })
	// Its place is free: this one is throttled (4 s), not refused.
	c5 := testhttp.Dial(t, addr)
	c5.Send("GET /five HTTP/1.1\r\nHost: h\r\n\r\n")
	testhttp.WaitFor(t, "the fifth request throttled", func() bool { return throttled(ts) == 1 })
	if n := served(be); n != 2 {
		t.Errorf("the backend saw %d requests", n)
	}
}

// throttled counts the proxy's client connections in the throttled state.
func throttled(ts *testServer) int {
	n := 0
	for _, s := range ts.Socks() {
		if s.Info.State == "throttled" {
			n++
		}
	}
	return n
}

// TestThrottleBanAndLists: the connection that reaches ban_threshold is
// closed without an answer, the banned address gets 403; a whitelisted
// address is never throttled; THROTTLE RELOAD reads the lists again.
func TestThrottleBanAndLists(t *testing.T) {
	be := testhttp.OKBackend(t, "b")
	list := filepath.Join(t.TempDir(), "white.txt")
	if err := os.WriteFile(list, []byte("# nobody yet\n192.0.2.1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := startProxy(t, []string{be.Addr}, "", testhttp.ServiceKeys(`plugins = ["Throttle"]`,
		"initial_delay = 100", "ban_threshold = 1", "ban_expiration = 3600", fmt.Sprintf("whitelist_file = %q", list)))
	addr := ts.addrOf("proxy")
	testhttp.MustGet(t, addr, "/one")
	c := testhttp.Dial(t, addr)
	c.Send("GET /two HTTP/1.1\r\nHost: h\r\n\r\n")
	c.ExpectClosed() // banned at once
	resp, body := testhttp.Get(t, addr, "/three")
	if resp.StatusCode != 403 || !strings.Contains(body, "Forbidden.") {
		t.Fatalf("banned: %d %q", resp.StatusCode, body)
	}
	// Whitelisted now (the list is read again): never throttled.
	if err := os.WriteFile(list, []byte("127.0.0.0/8 # loopback\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts.exec("USE proxy", "THROTTLE RELOAD whitelist")
	for i := range 3 {
		if got := testhttp.MustGet(t, addr, fmt.Sprintf("/w%d", i)); got != fmt.Sprintf("b GET /w%d", i) {
			t.Fatal(got)
		}
	}
	// A list that does not load refuses the change.
	if err := os.WriteFile(list, []byte("# empty\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := ts.Config().Clone()
	if err := ts.Apply(cfg); err == nil || !strings.Contains(err.Error(), "contains no recognizable CIDRs") {
		t.Errorf("an empty list: %v", err)
	}
	testhttp.MustGet(t, addr, "/still")
}

// TestFlvStreaming: .flv?start=N reaches the backend as Range: bytes=N-,
// and its 206 the client as a 200 video/x-flv with the FLV header first,
// Content-Length counting it; in a chunked body the header is a chunk of
// its own. Other requests pass untouched.
func TestFlvStreaming(t *testing.T) {
	video := bytes.Repeat([]byte("0123456789"), 100)
	be := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		rng := req.Header.Get("Range")
		if rng == "" {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n%s", len(video), video)
			return true
		}
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rng, "bytes="), "-"))
		part := video[n:]
		if req.Method == "HEAD" {
			fmt.Fprintf(c, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %d-%d/%d\r\nContent-Length: %d\r\n\r\n", n, len(video)-1, len(video), len(part))
			return true
		}
		if strings.Contains(req.RequestURI, "chunked") {
			fmt.Fprintf(c, "HTTP/1.1 206 Partial Content\r\nTransfer-Encoding: chunked\r\nContent-Range: bytes %d-%d/%d\r\n\r\n%x\r\n%s\r\n0\r\n\r\n",
				n, len(video)-1, len(video), len(part), part)
			return true
		}
		fmt.Fprintf(c, "HTTP/1.1 206 Partial Content\r\nContent-Type: application/octet-stream\r\nAccept-Ranges: bytes\r\nContent-Range: bytes %d-%d/%d\r\nContent-Length: %d\r\n\r\n%s",
			n, len(video)-1, len(video), len(part), part)
		return true
	})
	ts := startProxy(t, []string{be.Addr}, "", testhttp.ServiceKeys(`plugins = ["FlvStreaming"]`))
	const flvHeader = "FLV\x01\x01\x00\x00\x00\x09\x00\x00\x00\x00"
	c := testhttp.Dial(t, ts.addrOf("proxy"))
	for _, tc := range []struct {
		uri, head string
		code      int
		want      string
	}{
		{"/v/clip.flv?start=990", "HTTP/1.1", 200, flvHeader + string(video[990:])},
		{"/v/clip.flv?start=10", "HTTP/1.0\r\nConnection: keep-alive", 200, flvHeader + string(video[10:])},
		{"/v/chunked.flv?start=995", "HTTP/1.1", 200, flvHeader + string(video[995:])},
		{"/v/clip.flv", "HTTP/1.1", 200, string(video)},
		{"/v/clip.mp4?start=10", "HTTP/1.1", 200, string(video)},
	} {
		resp, body := c.Do("GET " + tc.uri + " " + tc.head + "\r\nHost: h\r\n\r\n")
		if resp.StatusCode != tc.code || body != tc.want || resp.Close {
			t.Fatalf("%s: %d %q (close %v), want %d %q", tc.uri, resp.StatusCode, body, resp.Close, tc.code, tc.want)
		}
		if !strings.Contains(tc.uri, "start") || strings.Contains(tc.uri, "mp4") {
			continue
		}
		h := resp.Header
		if h.Get("Content-Type") != "video/x-flv" || h.Get("Content-Range") != "" || h.Get("Accept-Ranges") != "" {
			t.Errorf("%s: headers %v", tc.uri, h)
		}
		if cl := h.Get("Content-Length"); !strings.Contains(tc.uri, "chunked") && cl != strconv.Itoa(len(tc.want)) {
			t.Errorf("%s: Content-Length %q, want %d", tc.uri, cl, len(tc.want))
		}
	}
	// HEAD: the headers of the GET, no body (nor FLV header).
	c.Send("HEAD /v/clip.flv?start=990 HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, _ := c.Read("HEAD")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Length") != strconv.Itoa(len(flvHeader)+10) {
		t.Fatalf("HEAD: %d %v", resp.StatusCode, resp.Header)
	}
	if _, body := c.Do("GET /after HTTP/1.1\r\nHost: h\r\n\r\n"); body != string(video) {
		t.Fatalf("after HEAD: %q", body)
	}
	for _, r := range be.Requests() {
		want := ""
		if n, ok := strings.CutPrefix(r.URI[strings.Index(r.URI, "?")+1:], "start="); ok && strings.Contains(r.URI, ".flv") {
			want = "bytes=" + n + "-"
		}
		if got := r.Header.Get("Range"); got != want {
			t.Errorf("%s: backend Range %q, want %q", r.URI, got, want)
		}
	}
}

// lazyTOML is a web server "ws" with LazyCDN falling back to the proxy
// "origin", and a selector "ss" in front of ws.
func lazyTOML(be, docroot, extra string) string {
	return fmt.Sprintf(`[global]
load = ["LazyCDN", "vhosts"]
[pool.origin_pool]
nodes = [%q]
[service.origin]
role = "reverse_proxy"
pool = "origin_pool"
persist_backend = true
[service.ws]
role = "web_server"
listen = "127.0.0.1:0"
docroot = %q
persist_client = true
enable_concatenate_get = true
plugins = ["LazyCDN"]
fallback_service = "origin"
%s
[service.ss]
role = "selector"
listen = "127.0.0.1:0"
plugins = ["vhosts"]
persist_client = true
vhosts = ["* = ws"]
`, be, docroot, extra)
}

// TestLazyCDN: a missing file, or one older than ?v=, is fetched through
// fallback_service; the others come from the docroot; the connection comes
// back to the web server (or the selector in front of it) after each.
func TestLazyCDN(t *testing.T) {
	be := testhttp.OKBackend(t, "origin")
	dir := webRoot(t, map[string]string{"a.css": "file a", "b.css": "file b"})
	old := time.Unix(1_300_000_000, 0)
	for _, f := range []string{"a.css", "b.css"} {
		if err := os.Chtimes(filepath.Join(dir, f), old, old); err != nil {
			t.Fatal(err)
		}
	}
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ts := startServer(t, lazyTOML(be.Addr, dir, fmt.Sprintf("fallback_udp_ping_addr = %q", pc.LocalAddr())))
	pings := 0
	for _, svc := range []string{"ws", "ss"} {
		c := testhttp.Dial(t, ts.addrOf(svc))
		for _, tc := range []struct {
			uri, want string
			origin    bool
		}{
			{"/a.css", "file a", false},
			{"/missing.css", "origin GET /missing.css", true},
			{"/a.css?v=1300000001", "origin GET /a.css?v=1300000001", true},
			{"/a.css?v=1300000000", "file a", false},
			{"/??a.css,b.css", "file afile b", false},
			{"/??a.css,gone.css", "origin GET /??a.css,gone.css", true},
			{"/??a.css,b.css&v=1400000000", "origin GET /??a.css,b.css&v=1400000000", true},
			{"/b.css", "file b", false},
		} {
			resp, body := c.Do("GET " + tc.uri + " HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp.StatusCode != 200 || body != tc.want || resp.Close {
				t.Fatalf("%s %s: %d %q (close %v), want %q", svc, tc.uri, resp.StatusCode, body, resp.Close, tc.want)
			}
			if !tc.origin {
				continue
			}
			pings++
			pc.SetReadDeadline(time.Now().Add(testTimeout))
			buf := make([]byte, 1024)
			n, _, err := pc.ReadFromUDP(buf)
			if err != nil || string(buf[:n]) != tc.uri {
				t.Fatalf("ping %q %v, want %q", buf[:n], err, tc.uri)
			}
		}
	}
	if n := served(be); n != pings {
		t.Errorf("origin served %d, want %d", n, pings)
	}
	// HEAD too; a fallback_service that does not exist leaves the 404.
	c := testhttp.Dial(t, ts.addrOf("ws"))
	c.Send("HEAD /missing.css HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := c.Read("HEAD"); resp.StatusCode != 200 {
		t.Fatalf("HEAD: %d", resp.StatusCode)
	}
	ts.exec("SET ws.fallback_service = nosuch")
	resp, _ := testhttp.Get(t, ts.addrOf("ws"), "/missing.css")
	if resp.StatusCode != 404 {
		t.Fatalf("no fallback service: %d", resp.StatusCode)
	}
}

// TestLazyCDNFallbackNotHTTP: a fallback_service that takes no HTTP client
// (a TCP relay) is as one that does not exist: the 404 is answered and the
// connection stays, instead of being handed to the relay and closed.
func TestLazyCDNFallbackNotHTTP(t *testing.T) {
	be := testhttp.OKBackend(t, "origin")
	dir := webRoot(t, map[string]string{"a.css": "file a"})
	ts := startServer(t, lazyTOML(be.Addr, dir, "")+`
[service.relay]
role = "tcp_proxy"
pool = "origin_pool"
`)
	ts.exec("SET ws.fallback_service = relay")
	c := testhttp.Dial(t, ts.addrOf("ws"))
	for _, tc := range []struct {
		uri    string
		status int
	}{{"/missing.css", 404}, {"/a.css", 200}} {
		resp, _ := c.Do("GET " + tc.uri + " HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp.StatusCode != tc.status || resp.Close {
			t.Fatalf("%s: %d (close %v), want %d on a kept connection", tc.uri, resp.StatusCode, resp.Close, tc.status)
		}
	}
	if n := served(be); n != 0 {
		t.Errorf("the relay's backend saw %d connections", n)
	}
}

// TestLazyCDNClientsOpen: connections handed to the fallback are not left
// counted open by the web server.
func TestLazyCDNClientsOpen(t *testing.T) {
	be := testhttp.OKBackend(t, "origin")
	dir := webRoot(t, map[string]string{"a.css": "file a"})
	ts := startServer(t, lazyTOML(be.Addr, dir, ""))
	for i := range 3 {
		c := testhttp.Dial(t, ts.addrOf("ws"))
		if _, body := c.Do("GET /missing.css HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); body != "origin GET /missing.css" {
			t.Fatalf("%d: %q", i, body)
		}
		io.Copy(io.Discard, c.BR)
		c.NC.Close()
	}
	ts.mu.Lock()
	ws, origin := ts.services["ws"].run.(*webRun).web, ts.services["origin"].run.(proxyRun)
	ts.mu.Unlock()
	testhttp.WaitFor(t, "clients closed", func() bool {
		return ws.Stats.ClientsOpen.Load() == 0 && origin.Stats.ClientsOpen.Load() == 0
	})
	if n := ws.Requests.Load(); n != 0 {
		t.Errorf("web server counted %d requests", n)
	}
}

// TestThrottleSharedOverMemcached: two plb servers whose Throttle shares
// memcached_servers (Debian's memcached on loopback): an address banned by
// one is refused by the other from its next request on; memcached gone,
// each decides alone, with a warning, and no request fails for it.
func TestThrottleSharedOverMemcached(t *testing.T) {
	mc, stopMC := testutil.StartMemcached(t)
	be := testhttp.OKBackend(t, "b")
	keys := testhttp.ServiceKeys(`plugins = ["Throttle"]`, "initial_delay = 0", "max_delay = 0", "max_concurrent = 100",
		"ban_threshold = 3", "ban_expiration = 3600", fmt.Sprintf("memcached_servers = %q", mc), `instance_name = "site"`)
	var logs logBuffer
	a := startProxyLogged(t, &logs, []string{be.Addr}, "", keys)
	b := startProxy(t, []string{be.Addr}, "", keys)
	addrA, addrB := a.addrOf("proxy"), b.addrOf("proxy")
	if got := testhttp.MustGet(t, addrB, "/b1"); got != "b GET /b1" {
		t.Fatal(got)
	}
	// Banned on a: its violations reach ban_threshold.
	banned := false
	for i := 0; i < 10 && !banned; i++ {
		c := testhttp.Dial(t, addrA)
		c.Send(fmt.Sprintf("GET /a%d HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", i))
		resp, err := nethttp.ReadResponse(c.BR, nil)
		banned = err != nil || resp.StatusCode == 403 // the banning request is dropped, later ones refused
	}
	if !banned {
		t.Fatal("not banned on a after 10 requests")
	}
	// b hears of it: its next request may pass (b's question is on its
	// way), the one after is refused. Alone, b would have counted two
	// violations by then, one short of a ban.
	time.Sleep(1100 * time.Millisecond) // b asks again at most every second
	testhttp.Get(t, addrB, "/b2")
	time.Sleep(300 * time.Millisecond)
	if resp, body := testhttp.Get(t, addrB, "/b3"); resp.StatusCode != 403 {
		t.Fatalf("the address banned on a, on b: %d %q", resp.StatusCode, body)
	}

	// memcached gone: a new address's requests on b are served, and a
	// warning says the state is local.
	stopMC()
	c := startProxyLogged(t, &logs, []string{be.Addr}, "", testhttp.ServiceKeys(`plugins = ["Throttle"]`, "initial_delay = 0",
		"max_delay = 0", "max_concurrent = 100", fmt.Sprintf("memcached_servers = %q", mc)))
	for i := range 3 {
		if got := testhttp.MustGet(t, c.addrOf("proxy"), fmt.Sprintf("/c%d", i)); got != fmt.Sprintf("b GET /c%d", i) {
			t.Fatalf("with memcached gone: %q", got)
		}
	}
	testhttp.WaitFor(t, "the warning", func() bool { return strings.Contains(logs.String(), "memcached unreachable") })
}
