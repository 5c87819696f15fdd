package static

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
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
		New(Options{Docroot: root, DirIndexing: true, ServerTokens: true}),
		New(Options{Docroot: root, IndexFiles: []string{"index.html", "link_in", "link_out", "hello.txt"}}),
	}
	f.Cleanup(func() {
		for _, s := range servers {
			s.Close()
		}
	})

	f.Fuzz(func(t *testing.T, uri, rng, ims string) {
		for i, s := range servers {
			method := "GET"
			if i == 1 && len(uri)%2 == 1 {
				method = "HEAD"
			}
			r := &Request{Method: method, URI: []byte(uri), Range: []byte(rng), IfModifiedSince: []byte(ims)}
			head, resp := s.Serve(nil, r, testNow, keepAlive)
			h := string(head)
			if !strings.HasPrefix(h, "HTTP/1.0 "+strconv.Itoa(resp.Status)+" ") || !strings.HasSuffix(h, "\r\n\r\n") ||
				strings.Count(h, "\r\n\r\n") != 1 {
				t.Fatalf("malformed head for %q: %q", uri, h)
			}
			if strings.Contains(string(resp.Body), "SECRET") {
				t.Fatalf("%q: body shows a file outside the docroot", uri)
			}
			if resp.File == nil {
				continue
			}
			if resp.Length <= 0 || resp.Offset < 0 {
				t.Errorf("%q: region %d+%d", uri, resp.Offset, resp.Length)
			}
			if runtime.GOOS == "linux" {
				p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(resp.File.Fd())))
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(p, realRoot+string(filepath.Separator)) {
					t.Errorf("%q served %s, outside %s", uri, p, realRoot)
				}
			}
			resp.File.Close()
		}
	})
}
