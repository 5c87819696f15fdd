package plugin

import (
	"slices"
	"strings"
	"testing"

	"github.com/plb/plb/config"
	"github.com/plb/plb/http/status"
)

// recorder is an instance that logs the hooks called and answers at one.
type recorder struct {
	name   string
	answer string // the hook that answers
	log    *[]string
}

func (r recorder) hit(hook string, req *Request) bool {
	*r.log = append(*r.log, r.name+"."+hook)
	if hook == r.answer {
		req.Respond(403, r.name)
		return true
	}
	return false
}

func (r recorder) StartHTTPRequest(q *Request) bool  { return r.hit("http", q) }
func (r recorder) StartProxyRequest(q *Request) bool { return r.hit("proxy", q) }
func (r recorder) StartWebRequest(q *Request) bool   { return r.hit("web", q) }
func (r recorder) MakeHighPriority(q *Request) bool  { return r.hit("high", q) }

func TestHooksOrder(t *testing.T) {
	var log []string
	h := NewHooks(recorder{"a", "", &log}, recorder{"b", "", &log})
	var r Request
	if h.StartProxy(&r) {
		t.Fatal("answered")
	}
	want := []string{"a.proxy", "b.proxy", "a.http", "b.http", "a.high", "b.high"}
	if !slices.Equal(log, want) {
		t.Errorf("proxy: %q, want %q", log, want)
	}
	log = nil
	h = NewHooks(recorder{"a", "", &log}, recorder{"b", "web", &log}, recorder{"c", "", &log})
	r = Request{}
	if !h.StartWeb(&r) || r.Response().Msg != "b" {
		t.Fatal("b did not answer")
	}
	if want := []string{"a.web", "b.web"}; !slices.Equal(log, want) {
		t.Errorf("web: %q, want %q", log, want)
	}
	var none *Hooks
	if none.StartProxy(&r) || none.StartWeb(&r) || none.Select(&r) || none.HasSelector() || none.WantsBackendEdits() {
		t.Error("nil hooks did something")
	}
}

func TestAppendResponse(t *testing.T) {
	full := &Response{Status: 301, Full: true, Header: []string{"Location: http://x/", "Content-Length: 0"}}
	got := string(AppendResponse(nil, full, status.Options{ServerTokens: true, KeepAlive: true, KeepAliveTimeout: 30}))
	want := "HTTP/1.0 301 Permanent Redirect\r\nLocation: http://x/\r\nContent-Length: 0\r\nServer: Perlbal\r\n" +
		"Connection: keep-alive\r\nKeep-Alive: timeout=30, max=100\r\n\r\n"
	if got != want {
		t.Errorf("full:\n%q\nwant\n%q", got, want)
	}
	got = string(AppendResponse(nil, &Response{Status: 200, Full: true, Body: []byte("hi")}, status.Options{Proto: "HTTP/1.1"}))
	if want := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"; got != want {
		t.Errorf("body:\n%q", got)
	}
	got = string(AppendResponse(nil, &Response{Status: 403, Msg: "Access denied."}, status.Options{}))
	if !strings.HasPrefix(got, "HTTP/1.0 403 Forbidden\r\n") || !strings.HasSuffix(got, "<h1>403 - Forbidden</h1>\nAccess denied.") {
		t.Errorf("simple:\n%q", got)
	}
}

func TestHeaderEdits(t *testing.T) {
	var e HeaderEdits
	e.Set("X-A", []byte("1"))
	e.Set("x-a", []byte("2"))
	e.Set("X-B", []byte("3"))
	e.Remove("x-b")
	if len(e.Inserts) != 1 || string(e.Inserts[0].Value) != "2" || !e.Removed([]byte("X-B")) || !e.Removed([]byte("x-A")) {
		t.Errorf("edits %+v", e.Rules)
	}
	e.Reset()
	if !e.Empty() {
		t.Error("not empty after Reset")
	}
}

// tinyPlugin is a plugin written outside the builtin set, the way
// docs/plugins.md shows.
type tinyPlugin struct{}

func (tinyPlugin) Describe() config.Plugin { return config.Plugin{Name: "Tiny"} }
func (tinyPlugin) Register(svc *config.Service) (any, error) {
	return recorder{name: svc.Name, log: new([]string)}, nil
}
func (tinyPlugin) Commands() []string { return []string{"tiny"} }
func (tinyPlugin) Command(*config.Config, string) ([]string, error) {
	return []string{"tiny!", "."}, nil
}

func TestRegistryWithOwnPlugin(t *testing.T) {
	reg, err := NewRegistry(tinyPlugin{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.ParseWith("t.conf", []byte("LOAD tiny\nCREATE SERVICE s\nSET role = web_server\nSET plugins = tiny\n"), config.Options{Plugins: reg.Lookup})
	if err != nil {
		t.Fatal(err)
	}
	h, err := reg.Hooks(c.Service("s"))
	if err != nil || !slices.Equal(h.Names(), []string{"Tiny"}) {
		t.Fatalf("hooks %v %v", h.Names(), err)
	}
	if out, ok, _ := reg.Command(c, "tiny"); !ok || out[0] != "tiny!" {
		t.Errorf("command: %v %q", ok, out)
	}
	if _, ok, _ := reg.Command(c, "other"); ok {
		t.Error("unknown command found")
	}
}
