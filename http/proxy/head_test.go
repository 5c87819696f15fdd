package proxy

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/http"
)

func parseReq(t *testing.T, raw string) *http.RequestHead {
	t.Helper()
	var p http.Parser
	var r http.RequestHead
	n, err := p.ParseRequest([]byte(raw), &r)
	if err != nil || n == 0 {
		t.Fatalf("parse %q: n=%d %v", raw, n, err)
	}
	return &r
}

func parseResp(t *testing.T, raw string) *http.ResponseHead {
	t.Helper()
	var p http.Parser
	var r http.ResponseHead
	n, err := p.ParseResponse([]byte(raw), &r)
	if err != nil || n == 0 {
		t.Fatalf("parse %q: n=%d %v", raw, n, err)
	}
	return &r
}

func settings(mod func(s *config.Service)) *Settings {
	svc := &config.Service{Name: "p", Role: config.RoleReverseProxy, PersistClientIdleTimeout: 30 * time.Second}
	if mod != nil {
		mod(svc)
	}
	return NewSettings(svc, nil, 0)
}

var peer = netip.MustParseAddr("192.0.2.7")

func TestBackendRequestHead(t *testing.T) {
	st := settings(func(s *config.Service) {
		s.Headers = []config.HeaderRule{{Insert: true, Name: "X-Added", Value: "yes"}, {Name: "X-Secret"}}
	})
	r := parseReq(t, "GET /a?b HTTP/1.1\r\nHost: example\r\nX-Secret: s\r\nX-Added: theirs\r\n"+
		"Keep-Alive: 300\r\nTE: trailers\r\nProxy-Connection: x\r\nConnection: keep-alive\r\n"+
		"X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Host: evil\r\nAccept: */*\r\n\r\n")
	got := string(appendBackendRequest(nil, r, st, peer, true))
	want := "GET /a?b HTTP/1.1\r\nHost: example\r\nAccept: */*\r\n" +
		"X-Forwarded-For: 192.0.2.7\r\nConnection: keep-alive\r\nX-Added: yes\r\n\r\n"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	if got := string(appendBackendRequest(nil, r, st, peer, false)); !strings.Contains(got, "\r\nConnection: close\r\n") {
		t.Fatalf("no Connection: close without backend keep-alive:\n%q", got)
	}
}

func TestBackendRequestTrusted(t *testing.T) {
	st := settings(func(s *config.Service) {
		s.TrustedUpstreamProxies = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	})
	r := parseReq(t, "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\nX-Forwarded-Host: fh\r\n\r\n")
	got := string(appendBackendRequest(nil, r, st, peer, true))
	if !strings.Contains(got, "\r\nX-Forwarded-For: 10.0.0.1, 10.0.0.2, 192.0.2.7\r\n") || !strings.Contains(got, "X-Forwarded-Host: fh") {
		t.Fatalf("trusted peer:\n%q", got)
	}
	if strings.Count(got, "X-Forwarded-For") != 1 {
		t.Fatalf("several X-Forwarded-For fields:\n%q", got)
	}
	got = string(appendBackendRequest(nil, r, st, netip.MustParseAddr("::ffff:192.0.2.9"), true))
	if !strings.Contains(got, "X-Forwarded-For: 10.0.0.1, 10.0.0.2, 192.0.2.9\r\n") {
		t.Fatalf("IPv4-mapped trusted peer:\n%q", got)
	}
	blind := settings(func(s *config.Service) { s.AlwaysTrusted, s.BlindProxy = true, true })
	got = string(appendBackendRequest(nil, r, blind, peer, true))
	if !strings.Contains(got, "X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\n") || strings.Contains(got, "192.0.2.7") {
		t.Fatalf("blind proxy:\n%q", got)
	}
}

func TestBackendRequestForms(t *testing.T) {
	st := settings(nil)
	// Absolute form: origin-form path, Host from the URI.
	r := parseReq(t, "GET http://Example.com:8080/p HTTP/1.1\r\nHost: other\r\n\r\n")
	got := string(appendBackendRequest(nil, r, st, peer, true))
	if !strings.HasPrefix(got, "GET /p HTTP/1.1\r\nHost: Example.com:8080\r\n") || strings.Contains(got, "other") {
		t.Fatalf("absolute form:\n%q", got)
	}
	// HTTP/1.0 without Host stays 1.0.
	r = parseReq(t, "GET / HTTP/1.0\r\n\r\n")
	if got := string(appendBackendRequest(nil, r, st, peer, true)); !strings.HasPrefix(got, "GET / HTTP/1.0\r\n") {
		t.Fatalf("1.0 without Host:\n%q", got)
	}
	// Upgrade keeps its Connection and Upgrade fields.
	r = parseReq(t, "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	got = string(appendBackendRequest(nil, r, st, peer, true))
	if !strings.Contains(got, "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n") || strings.Contains(got, "keep-alive") {
		t.Fatalf("upgrade:\n%q", got)
	}
}

func TestClientResponseHead(t *testing.T) {
	st := settings(nil)
	r := parseResp(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nKeep-Alive: timeout=5\r\nConnection: keep-alive\r\nX-A: b\r\n\r\n")
	be := &backend{clientKA: true}
	got := string(appendClientResponse(nil, r, 1, be, st))
	want := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\nConnection: keep-alive\r\nKeep-Alive: timeout=30, max=100\r\n\r\n"
	if got != want {
		t.Fatalf("1.1 chunked:\n%q\nwant\n%q", got, want)
	}
	be = &backend{bodyRelay: bodyRelay{dechunk: true}}
	got = string(appendClientResponse(nil, r, 0, be, st))
	want = "HTTP/1.0 200 OK\r\nX-A: b\r\nConnection: close\r\n\r\n"
	if got != want {
		t.Fatalf("de-chunked for 1.0:\n%q\nwant\n%q", got, want)
	}
	r = parseResp(t, "HTTP/1.0 200 \r\nConnection: close\r\n\r\n")
	be = &backend{bodyRelay: bodyRelay{rechunk: true}, clientKA: true}
	got = string(appendClientResponse(nil, r, 1, be, st))
	want = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\nKeep-Alive: timeout=30, max=100\r\n\r\n"
	if got != want {
		t.Fatalf("re-chunked:\n%q\nwant\n%q", got, want)
	}
	r = parseResp(t, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	got = string(appendClientResponse(nil, r, 1, &backend{}, st))
	want = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
	if got != want {
		t.Fatalf("101:\n%q\nwant\n%q", got, want)
	}
}

func TestHopByHop(t *testing.T) {
	for _, n := range []string{"Connection", "keep-alive", "TE", "Trailer", "UPGRADE", "Proxy-Connection"} {
		if !hopByHop([]byte(n)) {
			t.Errorf("%s not hop-by-hop", n)
		}
	}
	for _, n := range []string{"Host", "Transfer", "Content-Length", "X-Te", "Keep-Alive2"} {
		if hopByHop([]byte(n)) {
			t.Errorf("%s taken for hop-by-hop", n)
		}
	}
}

// TestConnectionNamedFields: the fields the Connection fields name are
// removed from the backend request and the client response (RFC 9110
// 7.6.1), whatever their case and the list's spacing, and the scan costs
// no allocation.
func TestConnectionNamedFields(t *testing.T) {
	st := settings(nil)
	r := parseReq(t, "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive,X-Foo\r\nconnection: ,  x-BAR ,\r\n"+
		"X-Foo: 1\r\nX-Bar: 2\r\nX-Kept: 3\r\n\r\n")
	got := string(appendBackendRequest(nil, r, st, peer, true))
	want := "GET / HTTP/1.1\r\nHost: h\r\nX-Kept: 3\r\nX-Forwarded-For: 192.0.2.7\r\nConnection: keep-alive\r\n\r\n"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	resp := parseResp(t, "HTTP/1.1 200 OK\r\nConnection: X-Internal\r\nX-Internal: secret\r\nContent-Length: 0\r\n\r\n")
	if got := string(appendClientResponse(nil, resp, 1, &backend{clientKA: true}, st)); strings.Contains(got, "secret") {
		t.Fatalf("response kept a field its Connection named:\n%q", got)
	}
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf = appendBackendRequest(buf[:0], r, st, peer, true) }); n != 0 {
		t.Fatalf("%v allocations per request head", n)
	}
}

// TestConnectionCannotNameFraming: a Connection field that names
// Content-Length, Transfer-Encoding or Host does not make plb drop them:
// the body would go on unframed, and a backend would read it as a
// request of its own (request smuggling).
func TestConnectionCannotNameFraming(t *testing.T) {
	st := settings(nil)
	r := parseReq(t, "POST / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Content-Length, Host, Transfer-Encoding\r\nContent-Length: 5\r\n\r\n")
	got := string(appendBackendRequest(nil, r, st, peer, true))
	if !strings.Contains(got, "\r\nContent-Length: 5\r\n") || !strings.Contains(got, "\r\nHost: h\r\n") {
		t.Fatalf("framing dropped:\n%q", got)
	}
	resp := parseResp(t, "HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\n")
	if got := string(appendClientResponse(nil, resp, 1, &backend{clientKA: true}, st)); !strings.Contains(got, "\r\nContent-Length: 5\r\n") {
		t.Fatalf("response framing dropped:\n%q", got)
	}
}
