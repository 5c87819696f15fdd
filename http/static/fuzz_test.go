package static

import (
	"crypto/md5"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzServePath checks that no request-target, with any Range or
// If-Modified-Since, panics or yields a file outside the docroot, and that
// every head is well formed.
func FuzzServePath(f *testing.F) {
	for _, seed := range []string{
		"/", "/hello.txt", "/../outside/secret.txt", "/..", "/%2e%2e/", "/%2E%2e/outside/secret.txt",
		"/..%2foutside%2fsecret.txt", "/%252e%252e/x.txt", "/link_out", "/dir_out/secret.txt",
		"/dir_out_abs/secret.txt", "/list/to_out/secret.txt", "/foo/link_up", "/link_root_abs",
		"/loop", "/fifo", "/list/", "/foo/foo..123.txt", "/a+b.txt?x", "/%00", "*", "",
		"/foo/%2e%2e%2f%2e%2e%2foutside/secret.txt", "/./list/./zdir/../../..",
	} {
		f.Add(seed, "bytes=0-6", "")
	}
	f.Add("/hello.txt", "bytes=-3", mtimeStr+"; length=16")
	f.Add("/hello.txt", "bytes=99999999999999999999-", "Mon, 01 Apr 2024 10:00:00 GMT")

	root := tree(f)
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		f.Fatal(err)
	}
	servers := []*Server{
		New(Options{Docroot: root, DirIndexing: true, ServerTokens: true, InlineMax: -1}),
		New(Options{Docroot: root, IndexFiles: []string{"index.html", "link_in", "link_out", "hello.txt"}}),
	}
	f.Cleanup(func() {
		for _, s := range servers {
			s.Close()
		}
	})

	// The second server answers from a cache too (asked a minute after
	// the real clock, so that the files count as settled).
	var cache FileCache
	later := time.Now().Add(time.Minute)
	f.Fuzz(func(t *testing.T, uri, rng, ims string) {
		for i, s := range servers {
			method := "GET"
			if i == 1 && len(uri)%2 == 1 {
				method = "HEAD"
			}
			r := &Request{Method: method, URI: []byte(uri), Range: []byte(rng), IfModifiedSince: []byte(ims)}
			now := testNow
			if i == 1 {
				r.Cache, now = &cache, later
			}
			head, resp := s.Serve(nil, r, now, keepAlive)
			checkServed(t, uri, head, &resp)
			if resp.File == nil {
				continue
			}
			if resp.Length <= 0 || resp.Offset < 0 {
				t.Errorf("%q: region %d+%d", uri, resp.Offset, resp.Length)
			}
			insideRoot(t, resp.File, realRoot, uri)
			resp.File.Close()
		}
	})
}

// checkServed checks that the head answering uri is well formed and that
// the body shows nothing from outside the docroot.
func checkServed(t *testing.T, uri string, head []byte, resp *Response) {
	t.Helper()
	h := string(head)
	if !strings.HasPrefix(h, "HTTP/1.0 "+strconv.Itoa(resp.Status)+" ") || !strings.HasSuffix(h, "\r\n\r\n") ||
		strings.Count(h, "\r\n\r\n") != 1 {
		t.Fatalf("malformed head for %q: %q", uri, h)
	}
	if strings.Contains(string(resp.Body), "SECRET") {
		t.Fatalf("%q: body shows a file outside the docroot", uri)
	}
}

// insideRoot checks, on Linux, that an open file lies in the docroot.
func insideRoot(t *testing.T, f *os.File, realRoot, what string) {
	t.Helper()
	if runtime.GOOS != "linux" {
		return
	}
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p, realRoot+string(filepath.Separator)) {
		t.Errorf("%q: opened %s, outside %s", what, p, realRoot)
	}
}

// FuzzConcat checks that no concatenation list panics, yields a part
// outside the docroot, or a malformed head.
func FuzzConcat(f *testing.F) {
	for _, seed := range []string{
		"/??hello.txt,foo/bar.txt", "/foo/??bar.txt,bar.txt?v=1", "/??link_out", "/??../outside/secret.txt",
		"/dir_out/??secret.txt", "/??%2e%2e/outside/secret.txt", "/??list/to_out/secret.txt", "/??,,,",
		"/foo??bar.txt", "/??fifo", "/??loop", "/??foo/", "/%2e%2e/??x", "/??hello.txt%00",
	} {
		f.Add(seed, "")
	}
	f.Add("/??hello.txt", mtimeStr)
	root := tree(f)
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		f.Fatal(err)
	}
	s := New(Options{Docroot: root, EnableConcatenateGet: true})
	f.Cleanup(func() { s.Close() })
	f.Fuzz(func(t *testing.T, uri, ims string) {
		head, resp := s.Serve(nil, &Request{Method: "GET", URI: []byte(uri), IfModifiedSince: []byte(ims)}, testNow, nil)
		checkServed(t, uri, head, &resp)
		if resp.File != nil {
			insideRoot(t, resp.File, realRoot, uri)
		}
		var sum int64
		for _, p := range resp.Parts {
			insideRoot(t, p.File, realRoot, uri)
			sum += p.Length
		}
		if resp.Parts != nil && !strings.Contains(string(head), "\r\nContent-Length: "+strconv.FormatInt(sum, 10)+"\r\n") {
			t.Errorf("%q: parts of %d bytes under %q", uri, sum, head)
		}
		resp.Close()
	})
}

// putPattern is Perlbal's PUT file pattern; parsePutPath must agree with
// it (and refuse any "..", checked before it in Perlbal).
var putPattern = regexp.MustCompile(`^((?:/[\w\-\.]+)*)/([\w\-\.]+)$`)

// FuzzPutPath compares parsePutPath with Perlbal's regular expression, and
// checks that a PUT of any name opens a file inside the docroot only.
func FuzzPutPath(f *testing.F) {
	for _, seed := range []string{
		"/foo.txt", "/a/b/c.txt", "/a//b.txt", "/a/", "/", "", "foo", "/a/../b", "/a..b", "/.", "/./x",
		"/x?y", "/x%41", "/é.txt", "/dir_out/x.txt", "/link_out", "/list/to_out/x", "/-_.AZaz09",
	} {
		f.Add(seed)
	}
	root := tree(f)
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		f.Fatal(err)
	}
	s := New(Options{Docroot: root, EnablePut: true, EnableMD5: true})
	f.Cleanup(func() { s.Close() })
	f.Fuzz(func(t *testing.T, uri string) {
		dir, name, ndirs, ok := parsePutPath([]byte(uri))
		m := putPattern.FindStringSubmatch(uri)
		want := m != nil && !strings.Contains(uri, "..")
		if ok != want {
			t.Fatalf("parsePutPath(%q) ok=%v, the pattern says %v", uri, ok, want)
		}
		if !ok {
			return
		}
		if "/"+string(dir) != m[1] && !(len(dir) == 0 && m[1] == "") || string(name) != m[2] {
			t.Fatalf("parsePutPath(%q) = %q, %q; the pattern %q, %q", uri, dir, name, m[1], m[2])
		}
		if wantDirs := strings.Count(m[1], "/"); ndirs != wantDirs {
			t.Fatalf("parsePutPath(%q) counts %d directories, want %d", uri, ndirs, wantDirs)
		}
		if validDeletePath([]byte(uri)) != ok {
			t.Fatalf("DELETE and PUT disagree on %q", uri)
		}
		u, _, _ := s.StartPut(nil, &Request{Method: "PUT", URI: []byte(uri), ContentMD5: []byte("x")}, testNow, nil)
		if u != nil {
			insideRoot(t, u.f, realRoot, uri)
			u.Abort()
		}
	})
}

// FuzzContentMD5 checks the Content-MD5 normalization: idempotent, no
// blank or '=' left at the end, and any padding or blanks around a real
// digest match the unpadded encoding Finish compares with.
func FuzzContentMD5(f *testing.F) {
	for _, seed := range []string{"", "=", "abc==", " x= ", "1B2M2Y8AsgTpgAmY7PhCfg==", "\t=\t"} {
		f.Add(seed, []byte("body"))
	}
	f.Fuzz(func(t *testing.T, v string, body []byte) {
		n := expectedMD5([]byte(v))
		if string(expectedMD5(n)) != string(n) {
			t.Fatalf("not idempotent on %q: %q", v, n)
		}
		if len(n) > 0 {
			if c := n[len(n)-1]; c == '=' || c == ' ' || c == '\t' {
				t.Fatalf("expectedMD5(%q) = %q ends in %q", v, n, c)
			}
			if c := n[0]; c == ' ' || c == '\t' {
				t.Fatalf("expectedMD5(%q) = %q starts with a blank", v, n)
			}
		}
		sum := md5.Sum(body)
		raw := base64.RawStdEncoding.EncodeToString(sum[:])
		padded := " " + base64.StdEncoding.EncodeToString(sum[:]) + "  "
		if string(expectedMD5([]byte(padded))) != raw {
			t.Fatalf("padded digest %q normalizes to %q, want %q", padded, expectedMD5([]byte(padded)), raw)
		}
	})
}
