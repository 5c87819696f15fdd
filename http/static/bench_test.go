package static

import (
	nethttp "net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkServeSmallFile is the hot path of a static GET of a small
// file: decode, open (openat2 on Linux), fstat, head, and the file read
// into the buffer after the head.
func BenchmarkServeSmallFile(b *testing.B) {
	s := New(Options{Docroot: tree(b), ServerTokens: true})
	defer s.Close()
	r := &Request{Method: "GET", URI: []byte("/foo/bar.txt?v=1")}
	buf := make([]byte, 0, 32<<10)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		_, resp := s.Serve(buf[:0], r, now, keepAlive)
		if resp.Status != 200 || len(resp.Body) != len(fooBar) {
			b.Fatal(resp.Status)
		}
	}
}

// BenchmarkServeSmallFileOSRoot is the same through os.Root, the fallback
// where openat2 is missing: one open per path component.
func BenchmarkServeSmallFileOSRoot(b *testing.B) {
	s := New(Options{Docroot: tree(b), ServerTokens: true})
	defer s.Close()
	s.fast.Store(fastOff)
	r := &Request{Method: "GET", URI: []byte("/foo/bar.txt?v=1")}
	buf := make([]byte, 0, 32<<10)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, resp := s.Serve(buf[:0], r, now, keepAlive); resp.Status != 200 {
			b.Fatal(resp.Status)
		}
	}
}

// BenchmarkServeFile is a static GET of a file handed out for sendfile:
// decode, open, fstat, head, and the *os.File. The file is closed, not
// sent.
func BenchmarkServeFile(b *testing.B) {
	s := New(Options{Docroot: tree(b), ServerTokens: true, InlineMax: -1})
	defer s.Close()
	r := &Request{Method: "GET", URI: []byte("/foo/bar.txt?v=1")}
	buf := make([]byte, 0, 1024)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		_, resp := s.Serve(buf[:0], r, now, keepAlive)
		if resp.File == nil {
			b.Fatal(resp.Status)
		}
		resp.File.Close()
	}
}

// BenchmarkServeNotModified is a revalidation: no file region to send.
func BenchmarkServeNotModified(b *testing.B) {
	s := New(Options{Docroot: tree(b)})
	defer s.Close()
	r := &Request{Method: "GET", URI: []byte("/foo/bar.txt"), IfModifiedSince: []byte(mtimeStr)}
	buf := make([]byte, 0, 1024)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, resp := s.Serve(buf[:0], r, now, keepAlive); resp.Status != 304 {
			b.Fatal(resp.Status)
		}
	}
}

// BenchmarkServeFileNetHTTP is the standard library's baseline for the same
// request; it also copies the 12 KB body into the recorder.
func BenchmarkServeFileNetHTTP(b *testing.B) {
	h := nethttp.FileServer(nethttp.Dir(tree(b)))
	req := httptest.NewRequest("GET", "/foo/bar.txt?v=1", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
