package server

import (
	"fmt"
	"net"
	nethttp "net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/internal/testhttp"
)

// selectorTOML is a selector "ss" in front of a reverse proxy, a web
// server, a management service, another selector and an echo service.
func selectorTOML(be, docroot, ssKeys string) string {
	return fmt.Sprintf(`[global]
workers = 2
load = ["EchoService"]

[pool.web]
nodes = [%q]

[service.pr]
role = "reverse_proxy"
pool = "web"
persist_client = false
persist_backend = true

[service.ws]
role = "web_server"
docroot = %q
persist_client = true

[service.mgmt]
role = "management"
listen = "127.0.0.1:0"

[service.inner]
role = "selector"
plugins = ["vpaths"]
vpaths = ["^/static/ = ws", "^/ = pr"]
headers = ["insert X-Inner: yes"]

[service.echo]
role = "echo"

[service.ss]
role = "selector"
listen = "127.0.0.1:0"
plugins = ["vhosts"]
persist_client = true
headers = ["insert X-Via: ss", "remove X-Secret"]
vhosts = ["proxy = pr", "web = ws", "*.web = ws", "manage = mgmt", "inner = inner", "echo = echo", "loop = ss", "ghost = nosuch"]
%s`, be, docroot, ssKeys)
}

func webRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestSelectorTargets: one kept-alive client connection goes through the
// selector to each kind of target in turn, and comes back to the selector
// after every response.
func TestSelectorTargets(t *testing.T) {
	be := testhttp.OKBackend(t, "b")
	dir := webRoot(t, map[string]string{"hello.txt": "hello", "static/s.txt": "static"})
	ts := startServer(t, selectorTOML(be.Addr, dir, ""))
	c := testhttp.Dial(t, ts.addrOf("ss"))
	check := func(host, path string, code int, body string) *nethttp.Response {
		t.Helper()
		resp, got := c.Do("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nX-Secret: s\r\n\r\n")
		if resp.StatusCode != code || !strings.Contains(got, body) {
			t.Fatalf("%s%s: %d %q, want %d %q", host, path, resp.StatusCode, got, code, body)
		}
		if resp.Close {
			t.Fatalf("%s%s: connection closed", host, path)
		}
		return resp
	}
	for i := 0; i < 3; i++ {
		check("proxy", "/p", 200, "b GET /p")
		check("web", "/hello.txt", 200, "hello")
		check("a.b.web", "/hello.txt", 200, "hello")
		check("inner", "/static/s.txt", 200, "static")
		check("inner", "/app", 200, "b GET /app")
	}
	check("nobody", "/", 404, "Not Found (no configured vhost)")
	check("ghost", "/", 404, "Not Found (no configured vhost)") // its service does not exist
	check("proxy", "/after-404", 200, "b GET /after-404")

	// The proxy saw the selector's HEADER rules (and the inner selector's
	// after them), and kept the client alive though its own
	// persist_client is off: the selector's wins.
	for _, r := range be.Requests() {
		if r.Header.Get("X-Via") != "ss" || r.Header.Get("X-Secret") != "" {
			t.Fatalf("%s: X-Via %q X-Secret %q", r.URI, r.Header.Get("X-Via"), r.Header.Get("X-Secret"))
		}
		if inner := r.URI == "/app"; (r.Header.Get("X-Inner") == "yes") != inner {
			t.Fatalf("%s: X-Inner %q", r.URI, r.Header.Get("X-Inner"))
		}
	}
	if n := be.Accepted.Load(); n != 1 {
		t.Errorf("%d backend connections, want 1 (persist_backend)", n)
	}

	// Roles a selector cannot hand HTTP to, and loops.
	check("echo", "/", 500, "Can't map to service type echo")
	resp, body := c.Do("GET / HTTP/1.1\r\nHost: loop\r\n\r\n")
	if resp.StatusCode != 500 || !strings.Contains(body, "Too many selector hops") {
		t.Fatalf("loop: %d %q", resp.StatusCode, body)
	}

	// The management service answers its HTTP pages through the
	// selector, then closes, as on its own port.
	c = testhttp.Dial(t, ts.addrOf("ss"))
	resp, body = c.Do("GET /metrics HTTP/1.1\r\nHost: manage\r\n\r\n")
	if resp.StatusCode != 200 || !strings.Contains(body, "plb_requests_total") {
		t.Fatalf("manage: %d %q", resp.StatusCode, body)
	}
	c.ExpectClosed()
}

// TestSelectorPersistClient: the selector's persist_client decides
// keep-alive, whatever the target's.
func TestSelectorPersistClient(t *testing.T) {
	be := testhttp.OKBackend(t, "b")
	dir := webRoot(t, map[string]string{"hello.txt": "hello"})
	ts := startServer(t, selectorTOML(be.Addr, dir, ""))
	ts.exec("SET ss.persist_client = 0", "SET pr.persist_client = 1")
	for _, host := range []string{"proxy", "web"} {
		c := testhttp.Dial(t, ts.addrOf("ss"))
		resp, _ := c.Do("GET /hello.txt HTTP/1.1\r\nHost: " + host + "\r\n\r\n")
		if resp.StatusCode != 200 || !resp.Close {
			t.Fatalf("%s: %d, close %v; want a close", host, resp.StatusCode, resp.Close)
		}
		c.ExpectClosed()
	}
	ts.exec("SET ss.persist_client = 1", "SET pr.persist_client = 0")
	c := testhttp.Dial(t, ts.addrOf("ss"))
	for i := 0; i < 3; i++ {
		for _, host := range []string{"proxy", "web"} {
			c.Send("GET /hello.txt HTTP/1.0\r\nHost: " + host + "\r\nConnection: keep-alive\r\n\r\n")
			resp, _ := c.Read("GET")
			if resp.StatusCode != 200 || resp.Close {
				t.Fatalf("%s: %d, close %v", host, resp.StatusCode, resp.Close)
			}
		}
	}
}

// TestSelectorPipelining: requests for different services sent in one
// write are each selected and answered in order.
func TestSelectorPipelining(t *testing.T) {
	be := testhttp.OKBackend(t, "b")
	dir := webRoot(t, map[string]string{"hello.txt": "hello"})
	ts := startServer(t, selectorTOML(be.Addr, dir, ""))
	c := testhttp.Dial(t, ts.addrOf("ss"))
	var reqs strings.Builder
	want := []string{}
	for i := 0; i < 5; i++ {
		fmt.Fprintf(&reqs, "GET /p%d HTTP/1.1\r\nHost: proxy\r\n\r\n", i)
		want = append(want, fmt.Sprintf("b GET /p%d", i))
		reqs.WriteString("GET /hello.txt HTTP/1.1\r\nHost: web\r\n\r\n")
		want = append(want, "hello")
		fmt.Fprintf(&reqs, "POST /post%d HTTP/1.1\r\nHost: proxy\r\nContent-Length: 3\r\n\r\nabc", i)
		want = append(want, fmt.Sprintf("b POST /post%d", i))
	}
	c.Send(reqs.String())
	for i, w := range want {
		resp, body := c.Read("GET")
		if resp.StatusCode != 200 || body != w {
			t.Fatalf("response %d: %d %q, want %q", i, resp.StatusCode, body, w)
		}
	}
}

// TestSelectorWithoutSelection: a selector with no selector plugin, or
// whose plugin declines, uses default_service; without one it answers 500.
func TestSelectorWithoutSelection(t *testing.T) {
	be := testhttp.OKBackend(t, "b")
	ts := startServer(t, fmt.Sprintf(`[pool.web]
nodes = [%q]
[service.pr]
role = "reverse_proxy"
pool = "web"
[service.bare]
role = "selector"
listen = "127.0.0.1:0"
[service.paths]
role = "selector"
listen = "127.0.0.1:0"
plugins = ["vpaths"]
vpaths = ["^/api/ = pr"]
default_service = "pr"
latency = 50
`, be.Addr))
	resp, body := testhttp.Get(t, ts.addrOf("bare"), "/")
	if resp.StatusCode != 500 || !strings.Contains(body, "No service selector configured.") {
		t.Fatalf("bare: %d %q", resp.StatusCode, body)
	}
	start := time.Now()
	for _, p := range []string{"/api/x", "/other"} {
		if resp, body := testhttp.Get(t, ts.addrOf("paths"), p); resp.StatusCode != 200 || body != "b GET "+p {
			t.Fatalf("%s: %d %q", p, resp.StatusCode, body)
		}
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("two requests with latency 50ms took %v", d)
	}
}

// TestWebServerPlugins: a web server with plugins, on its own listener and
// through a selector.
func TestWebServerPlugins(t *testing.T) {
	dir := webRoot(t, map[string]string{"site/a.txt": "file a"})
	ts := startServer(t, fmt.Sprintf(`[global]
load = ["AccessControl", "Redirect", "NotModified", "AutoRemoveLeadingDir", "vhosts"]
[service.ws]
role = "web_server"
listen = "127.0.0.1:0"
docroot = %q
persist_client = true
plugins = ["AccessControl", "Redirect", "NotModified", "AutoRemoveLeadingDir"]
access = ["deny ip 192.0.2.1"]
redirects = ["old.example.com new.example.com"]
"notmodified.host_pattern" = "^cached"
[service.ss]
role = "selector"
listen = "127.0.0.1:0"
plugins = ["vhosts"]
persist_client = true
vhosts = ["* = ws"]
`, filepath.Join(dir, "site")))
	for _, svc := range []string{"ws", "ss"} {
		c := testhttp.Dial(t, ts.addrOf(svc))
		for _, tc := range []struct {
			head string
			code int
			want string
		}{
			{"GET /site/a.txt HTTP/1.1\r\nHost: x", 200, "file a"}, // AutoRemoveLeadingDir
			{"GET /a.txt HTTP/1.1\r\nHost: x", 200, "file a"},
			{"GET /x?y HTTP/1.1\r\nHost: old.example.com", 301, "Location: http://new.example.com/x?y"},
			{"GET /a.txt HTTP/1.1\r\nHost: cached.example.com\r\nIf-Modified-Since: whatever", 304, ""},
			{"GET /a.txt HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 192.0.2.1", 200, "file a"}, // not trusted
		} {
			resp, body := c.Do(tc.head + "\r\n\r\n")
			loc := resp.Header.Get("Location")
			if resp.StatusCode != tc.code || resp.Close || !strings.Contains(body+"Location: "+loc, tc.want) {
				t.Fatalf("%s: %q: %d %q (Location %q, close %v)", svc, tc.head, resp.StatusCode, body, loc, resp.Close)
			}
		}
	}
	// Denied: 403 "Access denied." from the observed address, once trusted.
	ts.exec("SET ws.always_trusted = 1", "SET ws.AccessControl.use_observed_ip = 1")
	c := testhttp.Dial(t, ts.addrOf("ws"))
	resp, body := c.Do("GET /a.txt HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 192.0.2.1\r\n\r\n")
	if resp.StatusCode != 403 || !strings.Contains(body, "Access denied.") {
		t.Fatalf("deny: %d %q", resp.StatusCode, body)
	}
}

// TestProxyPlugins: plugins on a reverse proxy.
func TestProxyPlugins(t *testing.T) {
	be := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		testhttp.Respond(c, 200, "", req.Header.Get("X-Forwarded-Port")+" "+req.Header.Get("X-Forwarded-Proto"))
		return true
	})
	ts := startProxy(t, []string{be.Addr}, "", testhttp.ServiceKeys(`plugins = ["MaxContentLength", "XFFExtras", "Stats", "Highpri"]`,
		"max_content_length = 10", "send_backend_port = true", "send_backend_proto = true"))
	addr := ts.addrOf("proxy")
	_, port, _ := net.SplitHostPort(addr)
	c := testhttp.Dial(t, addr)
	for _, p := range []string{"/a", "/login.bml"} {
		resp, body := c.Do("GET " + p + " HTTP/1.1\r\nHost: h\r\nX-Forwarded-Port: 1\r\n\r\n")
		if resp.StatusCode != 200 || body != port+" http" {
			t.Fatalf("XFFExtras: %d %q, want %q", resp.StatusCode, body, port+" http")
		}
	}
	resp, body := c.Do("POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n01234567890")
	if resp.StatusCode != 413 || !strings.Contains(body, "Content too long.") || !resp.Close {
		t.Fatalf("MaxContentLength: %d %q close %v", resp.StatusCode, body, resp.Close)
	}
	out, ok, err := ts.PluginCommand("stats")
	text := strings.Join(out, "\n")
	if !ok || err != nil || !strings.Contains(text, "proxy           proxy_requests                       1") ||
		!strings.Contains(text, "proxy           proxy_requests_highpri               1") {
		t.Fatalf("stats: %v %v\n%s", ok, err, text)
	}
	out, _, _ = ts.PluginCommand("recent")
	if len(out) != 3 || !strings.Contains(out[1], "http://h/login.bml") {
		t.Errorf("recent: %q", out)
	}
}

// TestEchoRole: EchoService's echo role.
func TestEchoRole(t *testing.T) {
	ts := startServer(t, `[global]
load = ["EchoService"]
[service.echo]
role = "echo"
listen = "127.0.0.1:0"
`)
	c := testhttp.Dial(t, ts.addrOf("echo"))
	c.Send("hello\r\nworld\n")
	for _, want := range []string{"hello\r\n", "world\r\n"} {
		line, err := c.BR.ReadString('\n')
		if err != nil || line != want {
			t.Fatalf("echo: %q %v, want %q", line, err, want)
		}
	}
}

// TestPluginRoleNeedsLoadFirst: a service cannot take a plugin's role
// before the LOAD that brings it, in a file or at the console. The server
// relies on it: a plugin role's handler is made when the service is made
// (pluginRole.prepare), so a service that had the role before its plugin
// would have no handler once the plugin came.
func TestPluginRoleNeedsLoadFirst(t *testing.T) {
	const want = "Role not valid for service echo (role 'echo' comes with a plugin: LOAD EchoService first)"
	_, err := config.Parse("test.toml", []byte("[service.echo]\nrole = \"echo\"\nenabled = false\n"), nil)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("file: %v", err)
	}
	ts := startServer(t, "[service.mgmt]\nrole = \"management\"\nlisten = \"127.0.0.1:0\"\n")
	in := config.NewInterp(ts.Config().Clone(), ts.ConfigOptions())
	if _, err := in.Exec("CREATE SERVICE echo"); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Exec("SET echo.role = echo"); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("console: %v", err)
	}
}

// TestSeedListing1: the Perlbal article's Listing 1 (seeds/000_*), with
// its ENABLE lines naming the services it creates, serves each domain from
// its own docroot through one selector.
func TestSeedListing1(t *testing.T) {
	foo := webRoot(t, map[string]string{"index.html": "foo site"})
	bar := webRoot(t, map[string]string{"index.html": "bar site"})
	ts := startServer(t, fmt.Sprintf(`# Include the perlbal virtualhost plugin
LOAD vhosts

CREATE SERVICE foo_service
   SET role     = web_server
   SET docroot  = %s
   SET dirindexing    = 1
ENABLE foo_service

CREATE SERVICE bar_service
   SET role     = web_server
   SET docroot  = %s
   SET dirindexing    = 1
ENABLE bar_service

CREATE SERVICE virtualhosts
   SET listen     = 127.0.0.1:0
   SET role     = selector
   SET plugins  = vhosts
   SET persist_client = 1

   VHOST *.foo.com    = foo_service
   VHOST *.bar.com    = bar_service
ENABLE virtualhosts
`, foo, bar))
	c := testhttp.Dial(t, ts.addrOf("virtualhosts"))
	for host, want := range map[string]string{"www.foo.com": "foo site", "foo.com": "foo site", "a.b.bar.com": "bar site"} {
		c.Send("GET / HTTP/1.0\r\nHost: " + host + "\r\nConnection: keep-alive\r\n\r\n")
		resp, body := c.Read("GET")
		if resp.StatusCode != 200 || body != want || resp.Close {
			t.Fatalf("%s: %d %q close %v", host, resp.StatusCode, body, resp.Close)
		}
	}
	resp, _ := c.Do("GET / HTTP/1.0\r\nHost: www.baz.com\r\n\r\n")
	if resp.StatusCode != 404 {
		t.Fatalf("www.baz.com: %d", resp.StatusCode)
	}
}

// TestSelectorPut: request bodies pass through the selector to the web
// server, Content-Length and chunked, and the request after each is
// selected again.
func TestSelectorPut(t *testing.T) {
	be := testhttp.OKBackend(t, "b")
	dir := webRoot(t, nil)
	ts := startServer(t, selectorTOML(be.Addr, dir, ""))
	ts.exec("SET ws.enable_put = 1")
	c := testhttp.Dial(t, ts.addrOf("ss"))
	c.Send("PUT /a.txt HTTP/1.1\r\nHost: web\r\nContent-Length: 5\r\n\r\nhello" +
		"GET /after-put HTTP/1.1\r\nHost: proxy\r\n\r\n")
	if resp, _ := c.Read("PUT"); resp.StatusCode/100 != 2 || resp.Close {
		t.Fatalf("PUT: %d close %v", resp.StatusCode, resp.Close)
	}
	if resp, body := c.Read("GET"); resp.StatusCode != 200 || body != "b GET /after-put" {
		t.Fatalf("after PUT: %d %q", resp.StatusCode, body)
	}
	c.Send("PUT /b.txt HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n" +
		"GET /after-chunked HTTP/1.1\r\nHost: proxy\r\n\r\n")
	resp, _ := c.Read("PUT")
	if resp.StatusCode/100 != 2 {
		t.Fatalf("chunked PUT: %d", resp.StatusCode)
	}
	t.Logf("chunked PUT: close %v", resp.Close)
	if !resp.Close {
		if resp, body := c.Read("GET"); resp.StatusCode != 200 || body != "b GET /after-chunked" {
			t.Fatalf("after chunked PUT: %d %q", resp.StatusCode, body)
		}
	}
	for name, want := range map[string]string{"a.txt": "hello", "b.txt": "abcde"} {
		if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(got) != want {
			t.Errorf("%s: %q %v", name, got, err)
		}
	}
}
