package builtin

import (
	"math"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/http/plugin"
)

func lazyConf(sets ...string) string {
	return "LOAD LazyCDN\nCREATE SERVICE ws\nSET role = web_server\nSET docroot = .\n" +
		strings.Join(sets, "\n") + "\nSET plugins = LazyCDN\n"
}

// fileHooks is what a LazyCDN instance implements.
type fileHooks interface {
	plugin.StaticFileMissing
	plugin.StaticPreSender
}

func TestLazyCDN(t *testing.T) {
	if inst := instance(t, "LazyCDN", service(t, "ws", lazyConf())); inst != nil {
		t.Fatalf("no fallback_service, yet an instance %T", inst)
	}
	svc := service(t, "ws", lazyConf("SET fallback_service = origin"))
	h := instance(t, "LazyCDN", svc).(fileHooks)
	exists := func(name string) bool { return name == "origin" }
	req := func(uri string) *plugin.Request {
		r := request(t, svc, "10.0.0.1", "GET "+uri+" HTTP/1.0")
		r.Exists = exists
		return r
	}
	// A missing file goes to the origin.
	if r := req("/a.css"); !h.StaticFileMissing(r) || r.Target() != "origin" || r.Answered() {
		t.Errorf("missing: target %q", r.Target())
	}
	// A file older than ?v= goes too; as old or newer, or no v=, stays.
	mtime := time.Unix(1_300_000_000, 0)
	for uri, want := range map[string]bool{
		"/a.css?v=1300000001":               true,
		"/a.css?x=1&v=99999999999999999999": true, // beyond int64: newer than anything
		"/a.css?v=1300000000":               false,
		"/a.css?v=1200000000":               false,
		"/a.css":                            false,
		"/a.css?v=0":                        false,
		"/a.css?v=1300000001x":              false, // not a word of its own
		"/a.css?xv=1300000001":              false,
		"/a.css?v=":                         false,
		"/v=1300000001/a.css":               true, // anywhere in the URI, as Perlbal's
		"/a.css?v=13000000019_":             false,
	} {
		r := req(uri)
		if got := h.StaticPreSend(r, mtime); got != want || got && r.Target() != "origin" {
			t.Errorf("%s: %v (target %q), want %v", uri, got, r.Target(), want)
		}
	}
	// A fallback_service that does not exist: the web server answers.
	r := req("/a.css")
	r.Exists = func(string) bool { return false }
	if h.StaticFileMissing(r) {
		t.Error("handed to a service that does not exist")
	}
	// Only on a web server.
	if _, err := config.Parse("t.conf", []byte("LOAD LazyCDN\nCREATE POOL p\nCREATE SERVICE rp\nSET role = reverse_proxy\nSET fallback_service = x\n"), nil); err == nil ||
		!strings.Contains(err.Error(), "can only be set on a 'web_server' service") {
		t.Errorf("on a proxy: %v", err)
	}
	if _, err := config.Parse("t.conf", []byte(lazyConf("SET fallback_udp_ping_addr = localhost:9")), nil); err == nil ||
		!strings.Contains(err.Error(), "Expecting IP:port of form a.b.c.d:port.") {
		t.Errorf("bad ping address: %v", err)
	}
}

func TestURIVersion(t *testing.T) {
	for uri, want := range map[string]int64{
		"/x?v=12": 12, "v=7": 7, "/x?a=v=3": 3, "/x?v=1&v=2": 1, "/x?v=a&v=5": 5, "/x?v=9.js": 9,
		"/x?v=99999999999999999999999": math.MaxInt64,
	} {
		if got, ok := uriVersion([]byte(uri)); !ok || got != want {
			t.Errorf("%s: %d %v, want %d", uri, got, ok, want)
		}
	}
	for _, uri := range []string{"", "/x", "/x?v=", "/x?av=1", "/x?v=1a", "/x?v=-1", "v"} {
		if got, ok := uriVersion([]byte(uri)); ok {
			t.Errorf("%s: %d", uri, got)
		}
	}
}

// TestLazyCDNPing: the URI goes to fallback_udp_ping_addr (loopback).
func TestLazyCDNPing(t *testing.T) {
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	svc := service(t, "ws", lazyConf("SET fallback_service = origin", "SET fallback_udp_ping_addr = "+pc.LocalAddr().String()))
	p := newLazyCDN()
	inst, err := p.Register(svc)
	if err != nil {
		t.Fatal(err)
	}
	h := inst.(fileHooks)
	for _, uri := range []string{"/img/a.png?v=5", "/b.css"} {
		r := request(t, svc, "10.0.0.1", "GET "+uri+" HTTP/1.0")
		if !h.StaticFileMissing(r) {
			t.Fatal("not handed on")
		}
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 512)
		n, _, err := pc.ReadFromUDP(buf)
		if err != nil || string(buf[:n]) != uri {
			t.Errorf("ping %q %v, want %q", buf[:n], err, uri)
		}
	}
	if len(p.pings) != 1 {
		t.Errorf("%d sockets for one address", len(p.pings))
	}
}

// FuzzURIVersion: uriVersion finds what Perlbal's /\bv=(\d+)\b/ finds.
func FuzzURIVersion(f *testing.F) {
	for _, s := range []string{"/x?v=12", "/x?av=1&v=2", "/x?v=1a&v=3", "v=", "/x?v=99999999999999999999999", "_v=1"} {
		f.Add(s)
	}
	re := regexp.MustCompile(`\bv=(\d+)\b`)
	f.Fuzz(func(t *testing.T, uri string) {
		got, ok := uriVersion([]byte(uri))
		m := re.FindStringSubmatch(uri)
		if ok != (m != nil) {
			t.Fatalf("%q: found %v, regexp %q", uri, ok, m)
		}
		if m == nil {
			return
		}
		want, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			want = math.MaxInt64
		}
		if got != want {
			t.Fatalf("%q: %d, regexp %d", uri, got, want)
		}
	})
}

// TestURIVersionAllocs: the version is found without allocating.
func TestURIVersionAllocs(t *testing.T) {
	uri := []byte("/??a.css,b.css&v=1400000000")
	if n := testing.AllocsPerRun(100, func() { uriVersion(uri) }); n != 0 {
		t.Errorf("%v allocs", n)
	}
}

func BenchmarkURIVersion(b *testing.B) {
	uri := []byte("/static/css/site.css?lang=en&v=1400000000")
	b.ReportAllocs()
	for b.Loop() {
		uriVersion(uri)
	}
}
