package builtin

import (
	"testing"

	"github.com/plb/plb/http/plugin"
)

const vhostConf = `LOAD vhosts
CREATE SERVICE ss
  SET role = selector
  SET plugins = vhosts
  VHOST www.example.com = exact
  VHOST *.example.com = wild
  VHOST *.com = com
  VHOST *.org = missing
  VHOST example.net;using:cdn.example.net = cdn
`

func TestVhostsSelect(t *testing.T) {
	svc := service(t, "ss", vhostConf)
	sel := instance(t, "Vhosts", svc).(plugin.Selector)
	exists := func(name string) bool { return name != "missing" }
	for _, tc := range []struct{ head, target, host string }{
		{"GET / HTTP/1.0\nHost: www.example.com", "exact", ""},
		{"GET / HTTP/1.0\nHost: WWW.Example.COM.", "exact", ""}, // case and trailing dot
		{"GET / HTTP/1.0\nHost: www.example.com:8080", "exact", ""},
		{"GET / HTTP/1.0\nHost: a.b.example.com", "wild", ""},
		{"GET / HTTP/1.0\nHost: example.com", "wild", ""},
		{"GET / HTTP/1.0\nHost: other.com", "com", ""},
		{"GET http://www.example.com/x HTTP/1.0", "exact", ""}, // absolute URI
		{"GET /__using/cdn.example.net/img HTTP/1.0\nHost: example.net", "cdn", "cdn.example.net"},
	} {
		r := request(t, svc, "10.0.0.1", tc.head)
		r.Exists = exists
		if !sel.Select(r) || r.Answered() || r.Target() != tc.target || string(r.HostEdit()) != tc.host {
			code, msg := answer(r)
			t.Errorf("%q: target %q host %q (answer %d %s), want %q %q", tc.head, r.Target(), r.HostEdit(), code, msg, tc.target, tc.host)
		}
	}
	for _, tc := range []struct{ head, msg string }{
		{"GET / HTTP/1.0\nHost: x.org", "Not Found (no configured vhost)"}, // *.org's service does not exist, no *
		{"GET / HTTP/1.0", "Not Found (no configured vhost)"},
		{"GET /__using/other.net/img HTTP/1.0\nHost: example.net", "Vhost twiddling not configured for requested pair."},
	} {
		r := request(t, svc, "10.0.0.1", tc.head)
		r.Exists = exists
		if code, msg := answer(r); !sel.Select(r) || code != 0 {
			t.Fatalf("answered early %d %s", code, msg)
		}
		if code, msg := answer(r); code != 404 || msg != tc.msg {
			t.Errorf("%q: %d %q, want 404 %q", tc.head, code, msg, tc.msg)
		}
	}
	// With a default, an unknown host goes there.
	svc = service(t, "ss", vhostConf+"  VHOST * = fallback\n")
	sel = instance(t, "Vhosts", svc).(plugin.Selector)
	r := request(t, svc, "10.0.0.1", "GET / HTTP/1.0\nHost: bob")
	if !sel.Select(r) || r.Target() != "fallback" {
		t.Errorf("bob: target %q", r.Target())
	}
}

func TestVhostsOnlyOnSelectors(t *testing.T) {
	p, _ := New().Plugin("vhosts")
	svc := service(t, "ws", "CREATE SERVICE ws\nSET role = web_server\nSET docroot = .\n")
	if _, err := p.Register(svc); err == nil {
		t.Error("Vhosts registered on a web_server")
	}
}

func TestVpathsSelect(t *testing.T) {
	svc := service(t, "ss", `LOAD vpaths
CREATE SERVICE ss
  SET role = selector
  SET plugins = vpaths
  VPATH ^/static/ = files
  VPATH ^/gone/ = nosuch
  VPATH \.php$ = app
`)
	sel := instance(t, "Vpaths", svc).(plugin.Selector)
	exists := func(name string) bool { return name != "nosuch" }
	for uri, target := range map[string]string{"/static/a.css": "files", "/x/index.php": "app", "/static/x.php": "files"} {
		r := request(t, svc, "10.0.0.1", "GET "+uri+" HTTP/1.0")
		r.Exists = exists
		if !sel.Select(r) || r.Target() != target {
			t.Errorf("%s: target %q, want %q", uri, r.Target(), target)
		}
	}
	r := request(t, svc, "10.0.0.1", "GET /gone/x HTTP/1.0")
	r.Exists = exists
	if code, msg := answer(r); !sel.Select(r) || code != 0 {
		t.Fatalf("answered early %d %s", code, msg)
	}
	if code, msg := answer(r); code != 404 || msg != "Not Found (nosuch not a defined service)" {
		t.Errorf("unknown target: %d %q", code, msg)
	}
	r = request(t, svc, "10.0.0.1", "GET /other HTTP/1.0")
	if sel.Select(r) || r.Answered() {
		t.Error("no match did not decline")
	}
}
