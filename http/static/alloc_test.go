//go:build !race

package static

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestAllocsHead checks that building heads allocates nothing: generated
// pages without touching the file system, and a file's head once it is open.
func TestAllocsHead(t *testing.T) {
	root := tree(t)
	s := New(Options{Docroot: root, ServerTokens: true})
	defer s.Close()
	buf := make([]byte, 0, 1024)
	for _, r := range []*Request{
		{Method: "POST", URI: []byte("/x")},
		{Method: "GET", URI: []byte("/%2e%2e/etc/passwd")},
		{Method: "GET", URI: []byte("/x%00")},
		{Method: "PUT", URI: []byte("/x")},
	} {
		n := testing.AllocsPerRun(100, func() { s.Serve(buf[:0], r, testNow, keepAlive) })
		if n != 0 {
			t.Errorf("%s %s: %v allocs", r.Method, r.URI, n)
		}
	}

	fi, err := os.Stat(filepath.Join(root, "hello.txt"))
	if err != nil {
		t.Fatal(err)
	}
	st, name := statOf(fi), []byte("hello.txt")
	for _, r := range []*Request{
		{Method: "GET", URI: []byte("/hello.txt")},
		{Method: "HEAD", URI: []byte("/hello.txt")},
		{Method: "GET", URI: []byte("/hello.txt"), Range: []byte("bytes=2-5")},
		{Method: "GET", URI: []byte("/hello.txt"), Range: []byte("bytes=-0")},
		{Method: "GET", URI: []byte("/hello.txt"), Range: []byte("bytes=0-1,3-4")},
		{Method: "GET", URI: []byte("/hello.txt"), IfModifiedSince: []byte(mtimeStr + "; length=16")},
		{Method: "GET", URI: []byte("/hello.txt"), IfModifiedSince: []byte("Tue, 02 Apr 2024 10:00:00 GMT")},
	} {
		n := testing.AllocsPerRun(100, func() {
			b := s.builder(buf[:0], r, testNow, keepAlive)
			s.fileHead(&b, r, st, name)
			b.end()
		})
		if n != 0 {
			t.Errorf("file head %s range %q IMS %q: %v allocs", r.Method, r.Range, r.IfModifiedSince, n)
		}
	}
}

// TestAllocsServeSmallFile checks that a whole GET of a small file (open,
// fstat, head, the file read after it) allocates nothing on Linux, where
// the open is one openat2.
func TestAllocsServeSmallFile(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the allocation-free open is openat2")
	}
	s := New(Options{Docroot: tree(t), ServerTokens: true, EnableConcatenateGet: true})
	defer s.Close()
	buf := make([]byte, 0, 32<<10)
	r := &Request{Method: "GET", URI: []byte("/foo/bar.txt?v=1"), Range: []byte("bytes=1-100")}
	s.Serve(buf[:0], r, testNow, keepAlive)
	if s.fast.Load() != fastOn {
		t.Skip("openat2 is not usable here")
	}
	for _, r := range []*Request{
		{Method: "GET", URI: []byte("/foo/bar.txt?v=1")},
		{Method: "GET", URI: []byte("/hello.txt"), Range: []byte("bytes=1-5")},
		{Method: "HEAD", URI: []byte("/page.html")},
		{Method: "GET", URI: []byte("/nope.txt")},
		{Method: "GET", URI: []byte("/hello.txt"), IfModifiedSince: []byte(mtimeStr)},
	} {
		n := testing.AllocsPerRun(100, func() {
			if _, resp := s.Serve(buf[:0], r, testNow, keepAlive); resp.File != nil {
				t.Fatal("file handed out")
			}
		})
		if n != 0 {
			t.Errorf("%s %s: %v allocs", r.Method, r.URI, n)
		}
	}
}

// TestAllocsServeCached checks that a GET answered from the loop's cache
// allocates nothing.
func TestAllocsServeCached(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the cache needs openat2 and statx")
	}
	s := New(Options{Docroot: tree(t)})
	defer s.Close()
	var c FileCache
	buf := make([]byte, 0, 32<<10)
	r := &Request{Method: "GET", URI: []byte("/foo/bar.txt"), Cache: &c}
	at := time.Now().Add(time.Minute) // change times are the real clock's
	s.Serve(buf[:0], r, at, keepAlive)
	if c.Len() != 1 {
		t.Skip("not cached: openat2 is not usable here")
	}
	n := testing.AllocsPerRun(100, func() {
		if _, resp := s.Serve(buf[:0], r, at, keepAlive); len(resp.Body) != len(fooBar) {
			t.Fatal("wrong body")
		}
	})
	if n != 0 {
		t.Errorf("%v allocs", n)
	}
}
