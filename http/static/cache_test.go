package static

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestFileCache(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the cache needs openat2 and statx")
	}
	root := tree(t)
	s := New(Options{Docroot: root})
	defer s.Close()
	var c FileCache
	// The files' change times are the real clock's (only the
	// modification times are set back): ask a minute later.
	at := time.Now().Add(time.Minute)
	get := func(uri, rng string) (int, string) {
		t.Helper()
		r := &Request{Method: "GET", URI: []byte(uri), Range: []byte(rng), Cache: &c}
		_, resp := s.Serve(nil, r, at, nil)
		if resp.File != nil {
			t.Fatal("file handed out")
		}
		return resp.Status, string(resp.Body)
	}
	if code, body := get("/hello.txt", ""); code != 200 || body != hexData {
		t.Fatalf("first: %d %q", code, body)
	}
	if s.fast.Load() != fastOn {
		t.Skip("openat2 is not usable here")
	}
	if c.Len() != 1 {
		t.Fatalf("cached %d files", c.Len())
	}
	// From the cache: whole, a range, HEAD, a 304.
	if code, body := get("/hello.txt", ""); code != 200 || body != hexData {
		t.Fatalf("cached: %d %q", code, body)
	}
	if code, body := get("/hello.txt", "bytes=2-4"); code != 206 || body != "234" {
		t.Fatalf("cached range: %d %q", code, body)
	}
	head, resp := s.Serve(nil, &Request{Method: "HEAD", URI: []byte("/hello.txt"), Cache: &c}, at, nil)
	if resp.Status != 200 || resp.Body != nil || !strings.Contains(string(head), "Content-Length: 16\r\n") {
		t.Fatalf("cached HEAD: %d %q", resp.Status, head)
	}
	_, resp = s.Serve(nil, &Request{Method: "GET", URI: []byte("/hello.txt"), IfModifiedSince: []byte(mtimeStr), Cache: &c}, at, nil)
	if resp.Status != 304 {
		t.Fatalf("cached IMS: %d", resp.Status)
	}

	p := filepath.Join(root, "hello.txt")
	// Rewritten in place, same size, same second: the nanoseconds and the
	// change time tell.
	if err := os.WriteFile(p, []byte("ABCDEFGHIJKLMNOP"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(p, testMtime, testMtime)
	at = time.Now()
	if code, body := get("/hello.txt", ""); code != 200 || body != "ABCDEFGHIJKLMNOP" {
		t.Fatalf("rewritten: %d %q", code, body)
	}
	// Just changed (ctime is now): not cached again until it settles.
	if c.Len() != 0 {
		t.Errorf("a file changed just now was cached")
	}
	if code, body := get("/hello.txt", ""); code != 200 || body != "ABCDEFGHIJKLMNOP" {
		t.Fatalf("again: %d %q", code, body)
	}
	later := func(uri string) (int, string) {
		r := &Request{Method: "GET", URI: []byte(uri), Cache: &c}
		_, resp := s.Serve(nil, r, time.Now().Add(time.Minute), nil)
		return resp.Status, string(resp.Body)
	}
	if code, _ := later("/hello.txt"); code != 200 || c.Len() != 1 {
		t.Fatalf("settled: %d, cached %d", code, c.Len())
	}
	// Replaced by a rename: another inode.
	tmp := filepath.Join(root, "hello.tmp")
	os.WriteFile(tmp, []byte("renamed over...."), 0o644)
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	if code, body := later("/hello.txt"); code != 200 || body != "renamed over...." {
		t.Fatalf("renamed: %d %q", code, body)
	}
	// Replaced by a symlink leading out: refused, never the cached bytes.
	later("/hello.txt")
	if c.Len() != 1 {
		t.Fatalf("cached %d", c.Len())
	}
	os.Remove(p)
	if err := os.Symlink("../outside/secret.txt", p); err != nil {
		t.Fatal(err)
	}
	if code, body := later("/hello.txt"); code != 403 || strings.Contains(body, "renamed") || strings.Contains(body, "SECRET") {
		t.Fatalf("symlinked out: %d %q", code, body)
	}
	// Removed: 404.
	os.Remove(p)
	if code, _ := later("/hello.txt"); code != 404 {
		t.Fatalf("removed: %d", code)
	}
	// Another Server (new settings): the cache starts over.
	later("/page.html")
	s2 := New(Options{Docroot: root})
	defer s2.Close()
	s2.Serve(nil, &Request{Method: "GET", URI: []byte("/foo/bar.txt"), Cache: &c}, time.Now().Add(time.Minute), nil)
	if c.Len() != 1 || c.entries["foo/bar.txt"] == nil {
		t.Errorf("after a Server change: %d entries", c.Len())
	}
}

func TestFileCacheBounds(t *testing.T) {
	root := t.TempDir()
	s := New(Options{Docroot: root})
	defer s.Close()
	var c FileCache
	old := time.Now().Add(-time.Hour)
	data := strings.Repeat("x", 10<<10)
	for i := 0; i < cacheMaxEntries+50; i++ {
		name := filepath.Join(root, "f"+itoa(i))
		os.WriteFile(name, []byte(data), 0o644)
		os.Chtimes(name, old, old)
		_, resp := s.Serve(nil, &Request{Method: "GET", URI: []byte("/f" + itoa(i)), Cache: &c}, time.Now().Add(time.Minute), nil)
		if resp.Status != 200 || string(resp.Body) != data {
			t.Fatalf("f%d: %d", i, resp.Status)
		}
		if c.Len() > cacheMaxEntries || c.bytes > cacheMaxBytes {
			t.Fatalf("cache holds %d files, %d bytes", c.Len(), c.bytes)
		}
	}
	if runtime.GOOS == "linux" && s.fast.Load() == fastOn && c.Len() < cacheMaxBytes/len(data)-1 {
		t.Errorf("only %d files cached", c.Len())
	}
}
