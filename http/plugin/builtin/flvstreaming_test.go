package builtin

import (
	"bytes"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/plb/plb/config"
	"github.com/plb/plb/http"
	"github.com/plb/plb/http/plugin"
)

const flvConf = "LOAD FlvStreaming\nCREATE POOL p\nCREATE SERVICE rp\nSET role = reverse_proxy\nSET pool = p\nSET plugins = FlvStreaming\n"

type flvInstance interface {
	plugin.BackendClientAssigner
	plugin.ResponseHeaderModifier
}

// response parses a raw response head for r.Resp.
func response(t *testing.T, raw string) *http.ResponseHead {
	t.Helper()
	raw = strings.ReplaceAll(raw, "\n", "\r\n") + "\r\n\r\n"
	var p http.Parser
	h := &http.ResponseHead{}
	if n, err := p.ParseResponse([]byte(raw), h); err != nil || n == 0 {
		t.Fatalf("parse %q: %d %v", raw, n, err)
	}
	return h
}

func TestFlvStreaming(t *testing.T) {
	svc := service(t, "rp", flvConf)
	f := instance(t, "FlvStreaming", svc).(flvInstance)
	// The request: a Range from start.
	r := request(t, svc, "10.0.0.1", "GET /v/clip.flv?start=1000 HTTP/1.0\nRange: bytes=0-1")
	var e plugin.HeaderEdits
	f.BackendClientAssigned(r, &e)
	if got := edits(&e); got != "Range: bytes=1000-" {
		t.Fatalf("backend edits %q", got)
	}
	// The 206 becomes a 200 with the FLV header.
	r.Head = nil
	r.Resp = response(t, "HTTP/1.1 206 Partial Content\nContent-Type: application/octet-stream\nAccept-Ranges: bytes\nContent-Range: bytes 1000-1999/2000\nContent-Length: 1000")
	var re plugin.HeaderEdits
	f.ModifyResponseHeaders(r, 206, &re)
	if r.StatusOverride() != 200 || !bytes.Equal(r.Prepended(), []byte("FLV\x01\x01\x00\x00\x00\x09\x00\x00\x00\x00")) {
		t.Errorf("status %d, prepended %q", r.StatusOverride(), r.Prepended())
	}
	if got := edits(&re); got != "Content-Type: video/x-flv|Content-Length: 1013" {
		t.Errorf("response edits %q", got)
	}
	for _, name := range []string{"Accept-Ranges", "Content-Range", "Content-Type", "Content-Length"} {
		if !re.Removed([]byte(name)) {
			t.Errorf("%s not removed", name)
		}
	}
	// Another status passes as it is.
	r.ClearResponseEdits()
	re.Reset()
	r.Resp = response(t, "HTTP/1.1 416 Range Not Satisfiable\nContent-Length: 0")
	f.ModifyResponseHeaders(r, 416, &re)
	if r.StatusOverride() != 0 || r.Prepended() != nil || !re.Empty() {
		t.Error("a 416 was rewritten")
	}
	// Requests without a start are left alone.
	for _, uri := range []string{"/clip.flv", "/clip.flv?start=0", "/clip.flv?start=", "/clip.flv?start=abc",
		"/clip.mp4?start=10", "/clip.flv?begin=10", "/clip.flv.txt?start=10"} {
		r := request(t, svc, "10.0.0.1", "GET "+uri+" HTTP/1.0")
		var e plugin.HeaderEdits
		f.BackendClientAssigned(r, &e)
		r.Resp = response(t, "HTTP/1.1 206 Partial Content\nContent-Length: 5")
		var re plugin.HeaderEdits
		f.ModifyResponseHeaders(r, 206, &re)
		if !e.Empty() || !re.Empty() || r.StatusOverride() != 0 {
			t.Errorf("%s: edited", uri)
		}
	}
	// Only on a reverse proxy.
	if _, err := config.Parse("t.conf", []byte("LOAD FlvStreaming\nCREATE SERVICE ws\nSET role = web_server\nSET plugins = FlvStreaming\n"), nil); err == nil ||
		!strings.Contains(err.Error(), "You can't load the flvstreaming plugin on a service not of role reverse_proxy.") {
		t.Errorf("on a web server: %v", err)
	}
}

func TestFlvOffset(t *testing.T) {
	for uri, want := range map[string]uint64{
		"/a.flv?start=5": 5, "/a.flv?x=1&start=77": 77, "/a.flv?x=1;start=8": 8, "/a.flv?st%61rt=9": 9,
		"/a.flv?start=%31%32": 12, "/a.flv?start=007": 7, "/a.flv?start=3&start=4": 3,
	} {
		if got, ok := flvOffset([]byte(uri)); !ok || got != want {
			t.Errorf("%s: %d %v, want %d", uri, got, ok, want)
		}
	}
	for _, uri := range []string{"/a.flv", "/a.flv?", "/a.flv?start=-1", "/a.flv?start=1.5", "/a.flv?start=%zz",
		"/a.flv?start=99999999999999999999", "/a.FLV?start=1", "/a.flv?start=+1"} {
		if got, ok := flvOffset([]byte(uri)); ok {
			t.Errorf("%s: %d", uri, got)
		}
	}
}

// flvOffsetRef is flvOffset written plainly (every parameter unescaped),
// the reference for FuzzFlvOffset.
func flvOffsetRef(uri string) (uint64, bool) {
	path, query, ok := strings.Cut(uri, "?")
	if !ok || !strings.HasSuffix(path, ".flv") {
		return 0, false
	}
	for _, kv := range strings.FieldsFunc(query, func(r rune) bool { return r == '&' || r == ';' }) {
		k, v, _ := strings.Cut(kv, "=")
		if key, err := url.QueryUnescape(k); err != nil || key != "start" {
			continue
		}
		val, err := url.QueryUnescape(v)
		if err != nil || val == "" || strings.Trim(val, "0123456789") != "" {
			return 0, false
		}
		n, err := strconv.ParseUint(val, 10, 63)
		return n, err == nil && n > 0
	}
	return 0, false
}

func FuzzFlvOffset(f *testing.F) {
	for _, s := range []string{"/a.flv?start=5", "/a.flv?x=1&&start=77", "/a.flv?st%61rt=9", "/a.flv?start=%31",
		"/a.flv?start=9223372036854775807", "/a.flv?start=9223372036854775808", "/a.flv?start", "/a.flv?=&start=1",
		".flv?start=00000000000000000001", ".flv?start=77000000000000000000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		got, ok := flvOffset([]byte(uri))
		want, wok := flvOffsetRef(uri)
		if ok != wok || ok && got != want {
			t.Fatalf("%q: %d %v, reference %d %v", uri, got, ok, want, wok)
		}
	})
}

// TestFlvOffsetAllocs: the start offset is found without allocating
// (unless the query is percent-encoded).
func TestFlvOffsetAllocs(t *testing.T) {
	for _, uri := range [][]byte{[]byte("/v/clip.flv?a=b&start=12345"), []byte("/v/clip.mp4?start=1"), []byte("/index.html")} {
		if n := testing.AllocsPerRun(100, func() { flvOffset(uri) }); n != 0 {
			t.Errorf("%s: %v allocs", uri, n)
		}
	}
}

func BenchmarkFlvOffset(b *testing.B) {
	uri := []byte("/videos/2026/clip.flv?session=abcdef&start=1048576")
	b.ReportAllocs()
	for b.Loop() {
		flvOffset(uri)
	}
}
