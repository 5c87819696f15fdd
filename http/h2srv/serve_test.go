package h2srv

import (
	"testing"

	"golang.org/x/net/http2/hpack"

	"github.com/plb/plb/http"
	"github.com/plb/plb/http/h2"
)

// TestAppendRequest: a stream's request as the HTTP/1.1 head a role
// reads: :authority as Host (a host field beside it dropped), the cookie
// fields joined into one (RFC 9113 8.2.3), a body without a length
// chunked, the other fields as sent.
func TestAppendRequest(t *testing.T) {
	r := &h2.Request{Method: "POST", Scheme: "https", Authority: "shop.example", Path: "/cart?x=1", ContentLength: -1,
		Fields: []hpack.HeaderField{{Name: "cookie", Value: "a=1"}, {Name: "host", Value: "other.example"},
			{Name: "x-trace", Value: "t"}, {Name: "cookie", Value: "b=2"}}}
	got := string(appendRequest(nil, r, true))
	want := "POST /cart?x=1 HTTP/1.1\r\nHost: shop.example\r\nx-trace: t\r\ncookie: a=1; b=2\r\ntransfer-encoding: chunked\r\n\r\n"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	r = &h2.Request{Method: "GET", Scheme: "http", Path: "/", ContentLength: -1,
		Fields: []hpack.HeaderField{{Name: "host", Value: "h.example"}}}
	if got, want := string(appendRequest(nil, r, false)), "GET / HTTP/1.1\r\nhost: h.example\r\n\r\n"; got != want {
		t.Fatalf("without :authority: %q, want %q", got, want)
	}
	// What the role parses is what the codec checked.
	var p http.Parser
	var head http.RequestHead
	if n, err := p.ParseRequest(appendRequest(nil, &h2.Request{Method: "GET", Scheme: "http", Authority: "a.example", Path: "/p", ContentLength: -1}, false), &head); err != nil || n == 0 ||
		string(head.Host) != "a.example" || string(head.Path) != "/p" || head.BodyMode() != http.BodyNone {
		t.Fatalf("parsed: %d %v host %q path %q", n, err, head.Host, head.Path)
	}
}

// TestResponseFields: a role's response head's fields for HTTP/2, names
// lower case, without the connection-specific ones, cookies never
// indexed in HPACK's dynamic table.
func TestResponseFields(t *testing.T) {
	var p http.Parser
	var r http.ResponseHead
	raw := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n"
	if _, err := p.ParseResponse([]byte(raw), &r); err != nil {
		t.Fatal(err)
	}
	got := fields(nil, &r)
	want := []hpack.HeaderField{{Name: "content-type", Value: "text/plain"}, {Name: "set-cookie", Value: "a=1", Sensitive: true},
		{Name: "set-cookie", Value: "b=2", Sensitive: true}}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

// BenchmarkResponseFields: a typical response head's fields for HTTP/2.
func BenchmarkResponseFields(b *testing.B) {
	var p http.Parser
	var r http.ResponseHead
	raw := "HTTP/1.1 200 OK\r\nDate: Sun, 06 Dec 2026 10:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 100\r\nServer: nginx\r\n\r\n"
	if _, err := p.ParseResponse([]byte(raw), &r); err != nil {
		b.Fatal(err)
	}
	var dst []hpack.HeaderField
	b.ReportAllocs()
	for b.Loop() {
		dst = fields(dst[:0], &r)
	}
}
