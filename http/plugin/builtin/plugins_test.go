package builtin

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/http/plugin"
)

func TestAccessControl(t *testing.T) {
	conf := `LOAD AccessControl
CREATE SERVICE ws
  SET role = web_server
  SET docroot = .
  SET plugins = AccessControl
  ACCESS deny ip 10.0.0.1
  ACCESS queue_low netmask 10.1.0.0/16
  ACCESS allow netmask 10.0.0.0/8
`
	svc := service(t, "ws", conf)
	check := instance(t, "AccessControl", svc).(plugin.HTTPRequestStarter)
	for peer, want := range map[string]int{"10.0.0.1": 403, "10.0.0.2": 0, "10.1.2.3": 0, "192.0.2.1": 0, "::ffff:10.0.0.1": 403} {
		r := request(t, svc, peer, "GET / HTTP/1.0")
		handled := check.StartHTTPRequest(r)
		if code, msg := answer(r); code != want || handled != (want != 0) || want == 403 && msg != "Access denied." {
			t.Errorf("%s: %d %q handled=%v, want %d", peer, code, msg, handled, want)
		}
		if low := peer == "10.1.2.3"; r.LowPriority() != low {
			t.Errorf("%s: low priority %v", peer, r.LowPriority())
		}
	}
	// POLICY deny: only the allowed get through.
	svc = service(t, "ws", conf+"  ACCESS POLICY deny\n")
	check = instance(t, "AccessControl", svc).(plugin.HTTPRequestStarter)
	if r := request(t, svc, "192.0.2.1", "GET / HTTP/1.0"); !check.StartHTTPRequest(r) {
		t.Error("policy deny let an unlisted peer in")
	}
	if r := request(t, svc, "10.9.9.9", "GET / HTTP/1.0"); check.StartHTTPRequest(r) {
		t.Error("policy deny refused an allowed peer")
	}
}

// TestAccessControlObservedIP is Perlbal's 90-accesscontrol.t without the
// network: X-Forwarded-For counts only from trusted peers, and only with
// use_observed_ip.
func TestAccessControlObservedIP(t *testing.T) {
	base := `LOAD AccessControl
CREATE SERVICE ws
  SET role = web_server
  SET docroot = .
  SET plugins = AccessControl
  SET ws.AccessControl.use_observed_ip = %s
  ACCESS deny ip 127.0.0.1
`
	const xff = "GET / HTTP/1.0\nX-Forwarded-For: 1.1.1.1, 127.0.0.1"
	for _, tc := range []struct {
		observed, trust, head string
		denied                bool
	}{
		{"1", "", "GET / HTTP/1.0", true},
		{"1", "", xff, true}, // untrusted peer: its XFF is ignored
		{"1", "SET always_trusted = 1", xff, false},
		{"1", "SET always_trusted = 1", "GET / HTTP/1.0", true},
		{"1", "SET trusted_upstream_proxies = 10.0.0.0/24, 127.0.0.1", xff, false},
		{"0", "SET always_trusted = 1", xff, true},
	} {
		svc := service(t, "ws", strings.Replace(base, "%s", tc.observed, 1)+"  "+tc.trust+"\n")
		check := instance(t, "AccessControl", svc).(plugin.HTTPRequestStarter)
		r := request(t, svc, "127.0.0.1", tc.head)
		if got := check.StartHTTPRequest(r); got != tc.denied {
			t.Errorf("observed=%s %q %q: denied %v", tc.observed, tc.trust, tc.head, got)
		}
	}
}

func TestRedirect(t *testing.T) {
	svc := service(t, "ws", `LOAD Redirect
CREATE SERVICE ws
  SET role = web_server
  SET plugins = Redirect
  REDIRECT HOST example.com example.net
  REDIRECT HOST *.example.org www.example.org
`)
	d := instance(t, "Redirect", svc).(plugin.HTTPRequestStarter)
	for head, want := range map[string]string{
		"GET /foo/bar.txt HTTP/1.0\nHost: example.com":    "Location: http://example.net/foo/bar.txt|Content-Length: 0",
		"GET /a?b=c HTTP/1.0\nHost: EXAMPLE.com:8080":     "Location: http://example.net/a?b=c|Content-Length: 0",
		"GET / HTTP/1.0\nHost: a.b.example.org":           "Location: http://www.example.org/|Content-Length: 0",
		"GET http://example.com/abs HTTP/1.0\nHost: else": "Location: http://example.net/abs|Content-Length: 0",
	} {
		r := request(t, svc, "10.0.0.1", head)
		if !d.StartHTTPRequest(r) {
			t.Errorf("%q: not redirected", head)
			continue
		}
		if code, got := answer(r); code != 301 || got != want {
			t.Errorf("%q: %d %q, want 301 %q", head, code, got, want)
		}
	}
	if r := request(t, svc, "10.0.0.1", "GET / HTTP/1.0\nHost: other.com"); d.StartHTTPRequest(r) {
		t.Error("other.com redirected")
	}
}

func TestNotModified(t *testing.T) {
	conf := "LOAD NotModified\nCREATE SERVICE ws\nSET role = web_server\nSET docroot = .\nSET plugins = NotModified\n"
	if inst := instance(t, "NotModified", service(t, "ws", conf)); inst != nil {
		t.Fatalf("no host_pattern, yet an instance %T", inst)
	}
	svc := service(t, "ws", conf+"SET ws.notmodified.host_pattern = ^static\\.\n")
	nm := instance(t, "NotModified", svc).(plugin.HTTPRequestStarter)
	for head, want := range map[string]bool{
		"GET /a.css HTTP/1.0\nHost: static.example.com\nIf-Modified-Since: Sat, 29 Oct 1994 19:43:31 GMT": true,
		"GET /a.css HTTP/1.0\nHost: static.example.com":                                                   false,
		"GET /a.css HTTP/1.0\nHost: www.example.com\nIf-Modified-Since: x":                                false,
		"GET /a.css HTTP/1.0\nIf-Modified-Since: x":                                                       false,
	} {
		r := request(t, svc, "10.0.0.1", head)
		if got := nm.StartHTTPRequest(r); got != want {
			t.Errorf("%q: answered %v", head, got)
		} else if code, _ := answer(r); got && code != 304 {
			t.Errorf("%q: %d", head, code)
		}
	}
}

func TestMaxContentLength(t *testing.T) {
	conf := "LOAD MaxContentLength\nCREATE SERVICE ws\nSET role = web_server\nSET docroot = .\nSET plugins = MaxContentLength\n"
	if inst := instance(t, "MaxContentLength", service(t, "ws", conf)); inst != nil {
		t.Fatalf("limit 0, yet an instance %T", inst)
	}
	svc := service(t, "ws", conf+"SET max_content_length = 100\n")
	m := instance(t, "MaxContentLength", svc).(plugin.HTTPRequestStarter)
	for cl, want := range map[string]bool{"100": false, "101": true, "0": false} {
		r := request(t, svc, "10.0.0.1", "PUT /x HTTP/1.0\nContent-Length: "+cl)
		if got := m.StartHTTPRequest(r); got != want {
			t.Errorf("CL %s: answered %v", cl, got)
		} else if code, msg := answer(r); got && (code != 413 || msg != "Content too long.\n") {
			t.Errorf("CL %s: %d %q", cl, code, msg)
		}
	}
	if r := request(t, svc, "10.0.0.1", "GET / HTTP/1.0"); m.StartHTTPRequest(r) {
		t.Error("no Content-Length refused")
	}
}

func TestXFFExtras(t *testing.T) {
	conf := `LOAD XFFExtras
CREATE POOL p
CREATE SERVICE rp
  SET role = reverse_proxy
  SET pool = p
  SET plugins = XFFExtras
`
	if inst := instance(t, "XFFExtras", service(t, "rp", conf)); inst != nil {
		t.Fatalf("nothing to send, yet an instance %T", inst)
	}
	svc := service(t, "rp", conf+"SET send_backend_port = yes\nSET send_backend_proto = yes\n")
	x := instance(t, "XFFExtras", svc).(plugin.BackendClientAssigner)
	var e plugin.HeaderEdits
	x.BackendClientAssigned(request(t, svc, "10.0.0.1", "GET / HTTP/1.0"), &e)
	if got := edits(&e); got != "X-Forwarded-Port: 8080|X-Forwarded-Proto: http" {
		t.Errorf("edits %q", got)
	}
	// A trusted peer of a blind proxy: its fields pass untouched.
	svc = service(t, "rp", conf+"SET send_backend_port = yes\nSET always_trusted = 1\nSET blind_proxy = 1\n")
	x = instance(t, "XFFExtras", svc).(plugin.BackendClientAssigner)
	e.Reset()
	x.BackendClientAssigned(request(t, svc, "10.0.0.1", "GET / HTTP/1.0"), &e)
	if !e.Empty() {
		t.Errorf("blind proxy edits %q", edits(&e))
	}
}

func edits(e *plugin.HeaderEdits) string {
	var out []string
	for _, h := range e.Inserts {
		out = append(out, string(h.Name)+": "+string(h.Value))
	}
	return strings.Join(out, "|")
}

func TestHighpri(t *testing.T) {
	conf := "LOAD Highpri\nCREATE POOL p\nCREATE SERVICE rp\nSET role = reverse_proxy\nSET pool = p\nSET plugins = Highpri\n"
	svc := service(t, "rp", conf)
	h := instance(t, "Highpri", svc).(plugin.HighPrioritizer)
	for uri, want := range map[string]bool{"/login.bml": true, "/interface/xmlrpc": true, "/other": false} {
		if got := h.MakeHighPriority(request(t, svc, "10.0.0.1", "GET "+uri+" HTTP/1.0")); got != want {
			t.Errorf("%s: %v", uri, got)
		}
	}
	svc = service(t, "rp", conf+"SET rp.highpri.uri_pattern = none\nSET rp.highpri.host_pattern = ^vip\\.\n")
	h = instance(t, "Highpri", svc).(plugin.HighPrioritizer)
	if h.MakeHighPriority(request(t, svc, "10.0.0.1", "GET /login.bml HTTP/1.0")) {
		t.Error("uri_pattern none still matches")
	}
	if !h.MakeHighPriority(request(t, svc, "10.0.0.1", "GET / HTTP/1.0\nHost: vip.example.com")) {
		t.Error("host_pattern does not match")
	}
	c, _ := config.Parse("t.conf", []byte(conf+"SET rp.highpri.host_pattern = ^vip$\n"), nil)
	out, ok, err := New().Command(c, "patterns")
	want := []string{"High priority pattern buffer:", `SET rp.highpri.uri_pattern = ^(?:/interface/(?:xmlrpc|flat)|/login\.bml)$`,
		"SET rp.highpri.host_pattern = ^vip$", "."}
	if !ok || err != nil || !slices.Equal(out, want) {
		t.Errorf("patterns: %v %v\n%q", ok, err, out)
	}
}

func TestAutoRemoveLeadingDir(t *testing.T) {
	svc := &config.Service{Name: "ws", Role: config.RoleWebServer, Docroot: "/srv/static/", Plugins: []string{"AutoRemoveLeadingDir"}}
	a := instance(t, "AutoRemoveLeadingDir", svc).(plugin.ServeRequestStarter)
	for uri, want := range map[string]string{"/static/a.css": "/a.css", "/static": "/", "/static?v=1": "/?v=1", "/staticx/a": "", "/other/static/a": ""} {
		got := a.StartServeRequest(nil, []byte(uri))
		if string(got) != want {
			t.Errorf("%s: %q, want %q", uri, got, want)
		}
	}
}

func TestStats(t *testing.T) {
	reg := New()
	c, err := config.Parse("t.conf", []byte(`LOAD Stats
CREATE POOL p
CREATE SERVICE rp
  SET role = reverse_proxy
  SET pool = p
  SET plugins = Stats
CREATE SERVICE ws
  SET role = web_server
  SET docroot = .
  SET plugins = Stats
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	rp, err := reg.Hooks(c.Service("rp"))
	if err != nil {
		t.Fatal(err)
	}
	ws, _ := reg.Hooks(c.Service("ws"))
	r := request(t, c.Service("rp"), "10.0.0.1", "GET /x?y HTTP/1.0\nHost: h")
	rp.StartProxy(r)
	r.Assigned = r.Now
	var e plugin.HeaderEdits
	rp.BackendClientAssigned(r, &e)
	r.Head = nil // as the proxy does once the head is sent
	r.Now = r.Now.Add(1500 * time.Millisecond)
	rp.BackendResponseReceived(r, 200)
	for range 3 {
		ws.StartWeb(request(t, c.Service("ws"), "10.0.0.1", "GET / HTTP/1.0"))
	}
	// The counters survive a new snapshot of the configuration.
	if _, err := reg.Hooks(c.Service("rp")); err != nil {
		t.Fatal(err)
	}
	out, ok, err := reg.Command(c, "stats")
	if !ok || err != nil {
		t.Fatalf("stats: %v %v", ok, err)
	}
	text := strings.Join(out, "\n")
	for _, want := range []string{
		"rp              proxy_requests                       1",
		"ws              web_requests                         3",
		"total           web_requests                         3",
		"total           files_sent                           0",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in\n%s", want, text)
		}
	}
	if len(out) != 3*5+1 || out[len(out)-1] != "." {
		t.Errorf("%d lines:\n%s", len(out), text)
	}
	out, _, _ = reg.Command(c, "recent")
	if !slices.Equal(out, []string{"rp 1.5000 http://h/x?y", "."}) {
		t.Errorf("recent: %q", out)
	}
	// Not LOADed: the command is not there.
	if _, ok, _ := reg.Command(config.New(), "stats"); ok {
		t.Error("stats without LOAD Stats")
	}
}

func TestQueues(t *testing.T) {
	svc := service(t, "rp", "LOAD Queues\nCREATE POOL p\nCREATE SERVICE rp\nSET role = reverse_proxy\nSET pool = p\nSET plugins = Queues\n")
	q := instance(t, "Queues", svc).(plugin.BackendClientAssigner)
	r := request(t, svc, "10.0.0.1", "GET / HTTP/1.0")
	r.Queue = plugin.QueueInfo{Count: 3, Age: 2 * time.Second}
	var e plugin.HeaderEdits
	q.BackendClientAssigned(r, &e)
	if got := edits(&e); got != "X-Queue-Count: 3|X-Queue-Age: 2|X-HP-Queue-Count: 0|X-HP-Queue-Age: 0" {
		t.Errorf("edits %q", got)
	}
}

// TestRegistry: every plugin the configuration knows is compiled in, under
// the configuration's canonical name.
func TestRegistry(t *testing.T) {
	reg := New()
	for _, name := range []string{"vhosts", "vpaths", "accesscontrol", "highpri", "notmodified", "queues", "stats",
		"include", "redirect", "xffextras", "maxcontentlength", "autoremoveleadingdir", "echoservice",
		"throttle", "lazycdn", "flvstreaming"} {
		want, ok := config.DefaultPlugins(name)
		if !ok {
			t.Fatalf("config does not know %s", name)
		}
		got, ok := reg.Lookup(strings.ToUpper(name))
		if !ok || got.Name != want.Name {
			t.Errorf("%s: registry has %q (%v)", name, got.Name, ok)
		}
	}
	if len(reg.Names()) != 16 {
		t.Errorf("names %q", reg.Names())
	}
	if _, err := plugin.NewRegistry(&stats{}, newStats()); err == nil {
		t.Error("a name registered twice")
	}
	svc := &config.Service{Name: "x", Plugins: []string{"Nope"}}
	if _, err := reg.Hooks(svc); err == nil {
		t.Error("hooks of an unknown plugin")
	}
}
