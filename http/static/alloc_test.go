//go:build !race

package static

import (
	"os"
	"path/filepath"
	"testing"
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
			s.fileHead(&b, r, fi, "hello.txt")
			b.end()
		})
		if n != 0 {
			t.Errorf("file head %s range %q IMS %q: %v allocs", r.Method, r.Range, r.IfModifiedSince, n)
		}
	}
}
