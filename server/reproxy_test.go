package server

import (
	"fmt"
	"net"
	nethttp "net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plb/plb/internal/testhttp"
)

// reproxyTOML is a reverse proxy "proxy" with enable_reproxy over pool
// "web" of be, plus a web server "ws" on docroot (what the URLs fetch)
// and extra lines for the proxy and [global].
func reproxyTOML(be, docroot, proxyKeys, globalKeys string) string {
	return fmt.Sprintf(`[global]
workers = 2
%s

[pool.web]
nodes = [%q]

[service.proxy]
role = "reverse_proxy"
listen = "127.0.0.1:0"
pool = "web"
%s
enable_reproxy = true
%s

[service.ws]
role = "web_server"
listen = "127.0.0.1:0"
docroot = %q
persist_client = true
`, globalKeys, be, testhttp.StdProxy, proxyKeys, docroot)
}

// reproxyBackend answers GET /<cmd> by the command in the path, with
// Perlbal's test commands: file:<path>, url:<urls>, svc:<name>, plus
// extra header lines after a "|" ("file:/x|X-Reproxy-Expected-Size: 3").
// It counts the requests and keeps their X-Proxy-Capabilities.
type reproxyBackend struct {
	*testhttp.Backend
	hits atomic.Int64
	caps atomic.Value // string
}

func newReproxyBackend(t *testing.T) *reproxyBackend {
	rb := &reproxyBackend{}
	rb.Backend = testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		rb.hits.Add(1)
		rb.caps.Store(req.Header.Get("X-Proxy-Capabilities"))
		cmd := strings.TrimPrefix(req.URL.Path, "/")
		cmd, extra, _ := strings.Cut(cmd, "|")
		if extra != "" {
			extra = strings.ReplaceAll(extra, "|", "\r\n") + "\r\n"
		}
		kind, arg, _ := strings.Cut(cmd, ":")
		code := 200
		switch kind {
		case "file":
			extra += "X-Reproxy-File: " + arg + "\r\n"
		case "url":
			code = 204 // Perlbal's test backend: a 204 becomes 200
			extra += "X-Reproxy-URL: " + arg + "\r\n"
		case "svc":
			extra += "X-Reproxy-Service: " + arg + "\r\n"
		case "cached":
			extra += "X-Reproxy-URL: " + arg + "\r\nX-Reproxy-Cache-For: 60; Last-Modified Content-Type\r\n" +
				"Last-Modified: 199\r\nContent-Type: application/badger\r\n"
		default:
			testhttp.Respond(c, 200, "", "plain "+cmd)
			return true
		}
		if code == 204 {
			fmt.Fprintf(c, "HTTP/1.1 204 No Content\r\nX-Backend: yes\r\n%s\r\n", extra)
		} else {
			testhttp.Respond(c, code, "X-Backend: yes\r\n"+extra, "")
		}
		return true
	})
	return rb
}

// enc escapes what a reproxyBackend command may hold but a request
// target may not.
var enc = strings.NewReplacer(" ", "%20", "|", "%7C", "?", "%3F").Replace

func reproxyFixture(t *testing.T, proxyKeys, globalKeys string) (*testServer, *reproxyBackend, string, string) {
	t.Helper()
	content := strings.Repeat("foo bar yo this is my content.\n", 1000)
	dir := webRoot(t, map[string]string{"foo.txt": content, "empty.txt": ""})
	rb := newReproxyBackend(t)
	ts := startServer(t, reproxyTOML(rb.Addr, dir, proxyKeys, globalKeys))
	return ts, rb, dir, content
}

func TestReproxyFile(t *testing.T) {
	ts, rb, dir, content := reproxyFixture(t, "", "")
	c := testhttp.Dial(t, ts.addrOf("proxy"))
	path := filepath.Join(dir, "foo.txt")
	get := func(uri, extra string) (*nethttp.Response, string) {
		t.Helper()
		return c.Do("GET /" + enc(uri) + " HTTP/1.1\r\nHost: h\r\n" + extra + "\r\n")
	}
	for i := 0; i < 2; i++ { // twice on one connection
		resp, body := get("file:"+path, "")
		if resp.StatusCode != 200 || body != content || resp.Header.Get("Accept-Ranges") != "bytes" ||
			resp.Header.Get("X-Reproxy-File") != "" || resp.Header.Get("X-Backend") != "yes" || resp.Close {
			t.Fatalf("reproxy file: %d %v %d bytes", resp.StatusCode, resp.Header, len(body))
		}
	}
	if got := rb.caps.Load(); got != "reproxy-file" {
		t.Errorf("X-Proxy-Capabilities %q", got)
	}
	resp, body := get("file:"+path, "Range: bytes=0-6\r\n")
	if resp.StatusCode != 206 || body != "foo bar" || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 0-6/%d", len(content)) {
		t.Fatalf("range: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	resp, _ = get("file:"+path, fmt.Sprintf("Range: bytes=%d-\r\n", len(content)))
	if resp.StatusCode != 416 || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes */%d", len(content)) {
		t.Fatalf("416: %d %v", resp.StatusCode, resp.Header)
	}
	resp, body = c.Do("HEAD /file:" + path + " HTTP/1.1\r\nHost: h\r\n\r\n")
	if resp.StatusCode != 200 || body != "" || resp.ContentLength != int64(len(content)) {
		t.Fatalf("HEAD: %d %d %q", resp.StatusCode, resp.ContentLength, body)
	}
	for _, bad := range []string{"file:" + filepath.Join(dir, "nope"), "file:" + filepath.Join(dir, "empty.txt"),
		"file:" + dir, "file:relative.txt", "file:" + path + "|X-Reproxy-Expected-Size: 3"} {
		if resp, _ := get(bad, ""); resp.StatusCode != 404 || resp.Close {
			t.Fatalf("%s: %d close=%v", bad, resp.StatusCode, resp.Close)
		}
	}
	if resp, body := get("file:"+path+"|X-Reproxy-Expected-Size: "+fmt.Sprint(len(content)), ""); resp.StatusCode != 200 || body != content {
		t.Fatalf("expected size: %d", resp.StatusCode)
	}
}

func TestReproxyURL(t *testing.T) {
	ts, rb, _, content := reproxyFixture(t, "", "")
	ws := "http://" + ts.addrOf("ws")
	seen := make(chan string, 16)
	target := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		seen <- req.Method + " " + req.RequestURI + " host=" + req.Host + " range=" + req.Header.Get("Range") +
			" cookie=" + req.Header.Get("Cookie")
		testhttp.Respond(c, 200, "Content-Type: text/x-target\r\n", "target body")
		return true
	})
	c := testhttp.Dial(t, ts.addrOf("proxy"))
	get := func(uri, extra string) (*nethttp.Response, string) {
		t.Helper()
		return c.Do("GET /" + enc(uri) + " HTTP/1.1\r\nHost: front.example\r\nCookie: secret\r\n" + extra + "\r\n")
	}
	for i := 0; i < 2; i++ {
		resp, body := get("url:"+ws+"/foo.txt", "")
		if resp.StatusCode != 200 || body != content || resp.Header.Get("X-Backend") != "yes" ||
			resp.Header.Get("X-Reproxy-Url") != "" || resp.Close {
			t.Fatalf("reproxy URL: %d %v %d bytes", resp.StatusCode, resp.Header, len(body))
		}
	}
	// The fetch carries the client's Host and Range, nothing else.
	resp, body := get("url:http://"+target.Addr+"/t?x=1", "Range: bytes=1-2\r\n")
	if resp.StatusCode != 200 || body != "target body" {
		t.Fatalf("target: %d %q", resp.StatusCode, body)
	}
	if got := <-seen; got != "GET /t?x=1 host=front.example range=bytes=1-2 cookie=" {
		t.Errorf("fetch request: %s", got)
	}
	// A dead URL and a 404 are skipped.
	dead := "http://" + testhttp.DeadAddr(t)
	resp, body = get("url:"+dead+"/foo.txt "+ws+"/nope.txt "+ws+"/foo.txt", "")
	if resp.StatusCode != 200 || body != content {
		t.Fatalf("failover: %d", resp.StatusCode)
	}
	// A name is looked up (off the loop), each of its addresses tried.
	_, port, _ := net.SplitHostPort(ts.addrOf("ws"))
	resp, body = get("url:http://localhost:"+port+"/foo.txt", "")
	if resp.StatusCode != 200 || body != content {
		t.Fatalf("by name: %d", resp.StatusCode)
	}
	// Ranges pass through.
	resp, body = get("url:"+ws+"/foo.txt", "Range: bytes=0-6\r\n")
	if resp.StatusCode != 206 || body != "foo bar" || resp.Header.Get("Content-Range") == "" || resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("range: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	resp, _ = get("url:"+ws+"/foo.txt", "Range: bytes=5-1\r\n")
	if resp.StatusCode != 416 {
		t.Fatalf("416: %d", resp.StatusCode)
	}
	// Expected size: the wrong one fails over, a range checks the total.
	resp, body = get("url:"+ws+"/foo.txt|X-Reproxy-Expected-Size: 5", "")
	if resp.StatusCode != 503 {
		t.Fatalf("size mismatch: %d %q", resp.StatusCode, body)
	}
	resp, body = get(fmt.Sprintf("url:%s/foo.txt|X-Reproxy-Expected-Size: %d", ws, len(content)), "Range: bytes=0-2\r\n")
	if resp.StatusCode != 206 || body != "foo" {
		t.Fatalf("size with range: %d %q", resp.StatusCode, body)
	}
	// HEAD: the length, no body.
	resp, body = c.Do("HEAD /url:" + ws + "/foo.txt HTTP/1.1\r\nHost: h\r\n\r\n")
	if resp.StatusCode != 200 || body != "" || resp.ContentLength != int64(len(content)) {
		t.Fatalf("HEAD: %d %d", resp.StatusCode, resp.ContentLength)
	}
	// All URLs failing gives 503; the connection stays usable.
	resp, _ = get("url:"+dead+"/a "+ws+"/nope ftp://x/", "")
	if resp.StatusCode != 503 || resp.Close {
		t.Fatalf("all failed: %d close=%v", resp.StatusCode, resp.Close)
	}
	if resp, body := get("plain", ""); resp.StatusCode != 200 || body != "plain plain" {
		t.Fatalf("after: %d %q", resp.StatusCode, body)
	}
	if rb.hits.Load() == 0 {
		t.Fatal("backend never asked")
	}
}

// TestReproxyURLFetchPool: fetch connections are kept alive and reused,
// capped by max_reproxy_connections, and reproxy_state shows them.
func TestReproxyURLFetchPool(t *testing.T) {
	var mu sync.Mutex
	// Requests in progress at once: the connection plb closes to make
	// room may still look open from here for a moment, a request cannot.
	inflight, maxInflight := 0, 0
	target := testhttp.NewBackend(t, func(b *testhttp.Backend, c net.Conn, id int64) {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil || n == 0 {
				return
			}
			mu.Lock()
			inflight++
			maxInflight = max(maxInflight, inflight)
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
			mu.Lock()
			inflight--
			mu.Unlock()
			fmt.Fprintf(c, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	ts, _, _, _ := reproxyFixture(t, "", "max_reproxy_connections = 1")
	c := testhttp.Dial(t, ts.addrOf("proxy"))
	for i := 0; i < 3; i++ {
		if resp, body := c.Do("GET /url:http://" + target.Addr + "/x HTTP/1.1\r\nHost: h\r\n\r\n"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	}
	if n := target.Accepted.Load(); n != 1 {
		t.Fatalf("%d fetch connections for 3 requests, want 1 kept alive", n)
	}
	testhttp.WaitFor(t, "an idle fetch connection in reproxy_state", func() bool {
		st := strings.Join(ts.ReproxyState(), "\n")
		return strings.Contains(st, "bored "+target.Addr+" 1") && strings.Contains(st, "backends "+target.Addr+" 1")
	})
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for i := 0; i < 6; i++ {
		wg.Add(1)
		addr := ts.addrOf("proxy")
		go func() {
			defer wg.Done()
			resp, body := testhttp.Get(t, addr, "/url:http://"+target.Addr+"/x")
			if resp.StatusCode != 200 || body != "ok" {
				errs <- fmt.Sprintf("%d %q", resp.StatusCode, body)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	mu.Lock()
	defer mu.Unlock()
	if maxInflight != 1 {
		t.Errorf("%d fetches at once, want the cap 1", maxInflight)
	}
}

func TestReproxyService(t *testing.T) {
	ts, rb, _, content := reproxyFixture(t, "", "")
	c := testhttp.Dial(t, ts.addrOf("proxy"))
	resp, body := c.Do("GET /svc:ws HTTP/1.1\r\nHost: h\r\n\r\n")
	// The web server gets the request as the client sent it: /svc:ws is
	// not a file there.
	if resp.StatusCode != 404 || resp.Close {
		t.Fatalf("hand-off: %d close=%v %q", resp.StatusCode, resp.Close, body)
	}
	// The connection came back: the next request is the proxy's.
	n := rb.hits.Load()
	if resp, body := c.Do("GET /plain HTTP/1.1\r\nHost: h\r\n\r\n"); resp.StatusCode != 200 || body != "plain plain" || rb.hits.Load() != n+1 {
		t.Fatalf("after hand-off: %d %q", resp.StatusCode, body)
	}
	resp, body = c.Do("GET /svc:nosuch HTTP/1.1\r\nHost: h\r\n\r\n")
	if resp.StatusCode != 404 || !strings.Contains(body, "Vhost twiddling not configured for requested pair.") {
		t.Fatalf("unknown service: %d %q", resp.StatusCode, body)
	}
	_ = content
}

// TestReproxyServiceFile: a hand-off to a web server serves its file.
func TestReproxyServiceFile(t *testing.T) {
	content := "served by ws\n"
	dir := webRoot(t, map[string]string{"svc:ws": content})
	rb := newReproxyBackend(t)
	ts := startServer(t, reproxyTOML(rb.Addr, dir, "", ""))
	c := testhttp.Dial(t, ts.addrOf("proxy"))
	for i := 0; i < 3; i++ {
		resp, body := c.Do("GET /svc:ws HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
		if resp.StatusCode != 200 || body != content || resp.Close {
			t.Fatalf("%d: %d close=%v %q", i, resp.StatusCode, resp.Close, body)
		}
	}
	if rb.hits.Load() != 3 {
		t.Fatalf("backend hits %d", rb.hits.Load())
	}
}

func TestReproxyCache(t *testing.T) {
	ts, rb, _, content := reproxyFixture(t, "reproxy_cache_maxsize = 5", "")
	ws := "http://" + ts.addrOf("ws")
	c := testhttp.Dial(t, ts.addrOf("proxy"))
	uri := "/cached:" + ws + "/foo.txt"
	resp, body := c.Do("GET " + uri + " HTTP/1.0\r\nConnection: keep-alive\r\nHost: a\r\n\r\n")
	if resp.StatusCode != 200 || body != content || resp.Header.Get("Content-Type") != "application/badger" {
		t.Fatalf("first: %d %v", resp.StatusCode, resp.Header)
	}
	if rb.hits.Load() != 1 {
		t.Fatalf("hits %d", rb.hits.Load())
	}
	resp, body = c.Do("GET " + uri + " HTTP/1.0\r\nConnection: keep-alive\r\nHost: a\r\n\r\n")
	if resp.StatusCode != 200 || body != content || resp.Header.Get("Last-Modified") != "199" ||
		resp.Header.Get("Content-Type") != "application/badger" || resp.Header.Get("Date") == "" || resp.Close {
		t.Fatalf("hit: %d %v", resp.StatusCode, resp.Header)
	}
	resp, body = c.Do("GET " + uri + " HTTP/1.0\r\nConnection: keep-alive\r\nHost: a\r\nIf-Modified-Since: 199; length=31000\r\n\r\n")
	if resp.StatusCode != 304 || body != "" || resp.Close || resp.Header.Get("Content-Length") != "0" {
		t.Fatalf("IMS: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = c.Do("HEAD " + uri + " HTTP/1.0\r\nConnection: keep-alive\r\nHost: a\r\n\r\n")
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(content)) {
		t.Fatalf("HEAD hit: %d %d", resp.StatusCode, resp.ContentLength)
	}
	if rb.hits.Load() != 1 {
		t.Fatalf("cache not used: %d backend hits", rb.hits.Load())
	}
	// Another Host is another key.
	c.Do("GET " + uri + " HTTP/1.0\r\nConnection: keep-alive\r\nHost: b\r\n\r\n")
	if rb.hits.Load() != 2 {
		t.Fatalf("hits %d", rb.hits.Load())
	}
	cs, ok := ts.proxySvc("proxy").ReproxyCacheStats()
	if !ok || cs.Size != 2 || cs.Max != 5 || cs.Hits != 3 || cs.Requests != 5 {
		t.Fatalf("cache stats %+v %v", cs, ok)
	}
	st := ts.ServiceStatus("proxy").ReproxyCache
	if st == nil || st.Hits != 3 {
		t.Fatalf("service status %+v", st)
	}
}

// TestReproxyClientGone: a client that leaves (reset) during a slow fetch
// frees the fetch connection and its pool.
func TestReproxyClientGone(t *testing.T) {
	target := testhttp.NewBackend(t, func(b *testhttp.Backend, c net.Conn, id int64) {
		buf := make([]byte, 4096)
		c.Read(buf)
		fmt.Fprintf(c, "HTTP/1.0 200 OK\r\nContent-Length: 1000000\r\n\r\npartial")
		for {
			if _, err := c.Read(buf); err != nil {
				return // the proxy let go
			}
		}
	})
	ts, _, _, _ := reproxyFixture(t, "", "")
	c := testhttp.Dial(t, ts.addrOf("proxy"))
	c.Send("GET /url:http://" + target.Addr + "/x HTTP/1.1\r\nHost: h\r\n\r\n")
	c.BR.ReadString('\n') // the head is on its way
	c.NC.(*net.TCPConn).SetLinger(0)
	c.NC.Close() // a reset: the proxy sees the client gone at once
	testhttp.WaitFor(t, "fetch connection closed", func() bool { return target.Open.Load() == 0 })
	testhttp.WaitFor(t, "fetch pool forgotten", func() bool { return len(ts.ReproxyState()) == 0 })
}

// TestReproxyBig: large bodies through a file and a URL reach a slow
// client whole (flow control, no truncation).
func TestReproxyBig(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 3<<16) // 3 MiB
	dir := webRoot(t, map[string]string{"big.bin": big})
	rb := newReproxyBackend(t)
	ts := startServer(t, reproxyTOML(rb.Addr, dir, `buffer_size = "64k"`, ""))
	ws := "http://" + ts.addrOf("ws")
	for _, uri := range []string{"/file:" + filepath.Join(dir, "big.bin"), "/url:" + ws + "/big.bin"} {
		c := testhttp.Dial(t, ts.addrOf("proxy"))
		c.Send("GET " + uri + " HTTP/1.1\r\nHost: h\r\n\r\n")
		time.Sleep(100 * time.Millisecond) // let the proxy run ahead of the client
		resp, body := c.Read("GET")
		if resp.StatusCode != 200 || body != big {
			t.Fatalf("%s: %d, %d bytes of %d", uri, resp.StatusCode, len(body), len(big))
		}
		if resp, body := c.Do("GET /plain HTTP/1.1\r\nHost: h\r\n\r\n"); resp.StatusCode != 200 || body != "plain plain" {
			t.Fatalf("after %s: %d", uri, resp.StatusCode)
		}
	}
}

// TestReproxyServiceLoop: services reproxying to each other are cut
// after a bound, and the connection still comes back.
func TestReproxyServiceLoop(t *testing.T) {
	ts, rb, _, _ := reproxyFixture(t, "", "")
	c := testhttp.Dial(t, ts.addrOf("proxy"))
	resp, body := c.Do("GET /svc:proxy HTTP/1.1\r\nHost: h\r\n\r\n")
	if resp.StatusCode != 500 || !strings.Contains(body, "Too many service hand-offs.") {
		t.Fatalf("loop: %d %q", resp.StatusCode, body)
	}
	if n := rb.hits.Load(); n != 9 {
		t.Errorf("backend asked %d times, want 9 (the request and 8 hand-offs)", n)
	}
	if resp, body := c.Do("GET /plain HTTP/1.1\r\nHost: h\r\n\r\n"); resp.StatusCode != 200 || body != "plain plain" {
		t.Fatalf("after: %d %q", resp.StatusCode, body)
	}
	if n := ts.proxySvc("proxy").Stats.ClientsOpen.Load(); n != 1 {
		t.Errorf("%d clients open, want 1", n)
	}
}

// TestReproxyServiceThroughSelector: a request a selector handed to the
// proxy goes on to the named service, and the connection returns to the
// selector.
func TestReproxyServiceThroughSelector(t *testing.T) {
	dir := webRoot(t, map[string]string{"svc:ws": "from ws"})
	rb := newReproxyBackend(t)
	ts := startServer(t, reproxyTOML(rb.Addr, dir, "", "")+`
[service.ss]
role = "selector"
listen = "127.0.0.1:0"
plugins = ["vhosts"]
persist_client = true
vhosts = ["* = proxy"]
`)
	c := testhttp.Dial(t, ts.addrOf("ss"))
	for i := 0; i < 2; i++ {
		resp, body := c.Do("GET /svc:ws HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp.StatusCode != 200 || body != "from ws" || resp.Close {
			t.Fatalf("%d: %d %q", i, resp.StatusCode, body)
		}
		if resp, body := c.Do("GET /plain HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 200 || body != "plain plain" {
			t.Fatalf("after: %d %q", resp.StatusCode, body)
		}
	}
	testhttp.WaitFor(t, "proxy clients back to 0", func() bool { return ts.proxySvc("proxy").Stats.ClientsOpen.Load() == 0 })
}

// TestReproxySetsStickyCookie: a response the node answered with
// X-REPROXY-FILE or -URL sets the sticky cookie as any other does (plb
// builds its head itself), and not when the client's cookie named the
// node already.
func TestReproxySetsStickyCookie(t *testing.T) {
	ts, _, dir, content := reproxyFixture(t, "sticky_cookie = \"SRV\"\n", "")
	c := testhttp.Dial(t, ts.addrOf("proxy"))
	file, url := "file:"+filepath.Join(dir, "foo.txt"), "url:http://"+ts.addrOf("ws")+"/foo.txt"
	for _, cmd := range []string{file, url} {
		resp, body := c.Do("GET /" + enc(cmd) + " HTTP/1.1\r\nHost: h\r\n\r\n")
		sc := resp.Header.Get("Set-Cookie")
		if resp.StatusCode != 200 || body != content || !strings.HasPrefix(sc, "SRV=") || !strings.HasSuffix(sc, "; Path=/; HttpOnly; SameSite=Lax") {
			t.Fatalf("%s: %d, %d bytes, Set-Cookie %q", cmd, resp.StatusCode, len(body), sc)
		}
		cookie, _, _ := strings.Cut(sc, ";")
		resp, body = c.Do("GET /" + enc(cmd) + " HTTP/1.1\r\nHost: h\r\nCookie: " + cookie + "\r\n\r\n")
		if resp.StatusCode != 200 || body != content || resp.Header.Get("Set-Cookie") != "" {
			t.Fatalf("%s with the cookie: %d, %d bytes, Set-Cookie %q", cmd, resp.StatusCode, len(body), resp.Header.Get("Set-Cookie"))
		}
	}
}
