package static

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plb/plb/http/status"
)

var (
	testNow   = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	testMtime = time.Date(2024, 4, 1, 10, 0, 0, 0, time.UTC)
)

const (
	nowStr   = "Wed, 01 May 2024 12:00:00 GMT"
	mtimeStr = "Mon, 01 Apr 2024 10:00:00 GMT"
	hexData  = "0123456789abcdef"
	keepConn = "Connection: keep-alive\r\nKeep-Alive: timeout=30, max=100\r\n"
)

var fooBar = strings.Repeat("foo bar baz\n", 1000)

func keepAlive(dst []byte) []byte { return status.AppendConnection(dst, true, 30) }

// tree builds a temporary directory holding a docroot ("root") and, beside
// it, files no request may reach ("outside"). It returns the docroot.
func tree(t testing.TB) string {
	t.Helper()
	top := t.TempDir()
	root := filepath.Join(top, "root")
	out := filepath.Join(top, "outside")
	files := map[string]string{
		"outside/secret.txt":             "SECRET\n",
		"root/hello.txt":                 hexData,
		"root/empty.txt":                 "",
		"root/foo/bar.txt":               fooBar,
		"root/foo/foo..123.txt":          fooBar,
		"root/a+b.txt":                   "plus\n",
		"root/sp ace.txt":                "space\n",
		"root/%2e%2e/x.txt":              "literal percent dir\n",
		"root/pct%3Fq.txt":               "literal question mark\n",
		"root/page.html":                 "<p>hi</p>\n",
		"root/style.css":                 "b{}\n",
		"root/idx/index.html":            "<p>index</p>\n",
		"root/idx/sub/placeholder":       "",
		"root/list/<b>&'x\".txt":         "escaped\n",
		"root/list/plain.txt":            "p\n",
		"root/list/zdir/inner.txt":       "inner\n",
		"root/list/a dir/inner.txt":      "inner\n",
		"root/list/Upper.txt":            "u\n",
		"root/notindex/index.html/x.txt": "index.html is a directory here\n",
	}
	for name, data := range files {
		p := filepath.Join(top, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"root/link_in":       "hello.txt",
		"root/foo/link_up":   "../hello.txt",
		"root/link_out":      "../outside/secret.txt",
		"root/link_out_abs":  filepath.Join(out, "secret.txt"),
		"root/link_root_abs": filepath.Join(root, "hello.txt"),
		"root/dir_out":       "../outside",
		"root/dir_out_abs":   out,
		"root/list/to_zdir":  "zdir",
		"root/list/to_out":   "../../outside",
		"root/dangling":      "nowhere.txt",
		"root/loop":          "loop",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(top, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Fixed mtimes for exact heads.
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.Mode()&os.ModeSymlink != 0 {
			return err
		}
		return os.Chtimes(p, testMtime, testMtime)
	})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

type result struct {
	head   string
	status int
	body   string // Body, or the file region read
	file   bool
	bodyOK bool // Body non-nil
}

func do(t testing.TB, s *Server, r *Request, conn func([]byte) []byte) result {
	t.Helper()
	dst := make([]byte, 0, 1024)
	head, resp := s.Serve(dst, r, testNow, conn)
	res := result{head: string(head), status: resp.Status, body: string(resp.Body), bodyOK: resp.Body != nil}
	if !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		t.Errorf("head does not end in a blank line: %q", head)
	}
	if cap(head) != len(head) {
		t.Errorf("head has spare capacity %d: appending to it would clobber Body", cap(head)-len(head))
	}
	if resp.File != nil {
		res.file = true
		if resp.Length <= 0 {
			t.Errorf("File with Length %d", resp.Length)
		}
		b := make([]byte, resp.Length)
		if _, err := resp.File.ReadAt(b, resp.Offset); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		res.body = string(b)
		resp.File.Close()
	}
	return res
}

// TestServe runs every case twice: through openat2 (where the kernel has
// it) and through os.Root, the fallback; both must give the same answers.
func TestServe(t *testing.T) {
	root := tree(t)
	for _, mode := range []string{"openat2", "os.Root"} {
		t.Run(mode, func(t *testing.T) {
			s := New(Options{Docroot: root, ServerTokens: true})
			defer s.Close()
			if mode == "os.Root" {
				s.fast.Store(fastOff)
			}
			testServe(t, s)
			if mode == "openat2" && runtime.GOOS == "linux" && s.fast.Load() != fastOn {
				t.Log("openat2 is not usable here: both runs used os.Root")
			}
		})
	}
}

func testServe(t *testing.T, s *Server) {

	fileHead := func(code string, extra string) string {
		return "HTTP/1.0 " + code + "\r\nDate: " + nowStr + "\r\nServer: Perlbal\r\nLast-Modified: " + mtimeStr +
			"\r\nAccept-Ranges: bytes\r\n" + extra + keepConn + "\r\n"
	}
	simple := func(code int, msg string) (string, string) {
		o := status.Options{ServerTokens: true, Conn: keepAlive, Head: true}
		return string(status.AppendSimple(nil, code, msg, o)), string(status.AppendBody(nil, code, msg))
	}

	tests := []struct {
		name     string
		method   string // default GET
		uri      string
		ims, rng string
		status   int
		head     string // exact head, if set
		body     string // expected body or file region, if set
		msg      string // simple-page message, checked with status
	}{
		{name: "GET file", uri: "/hello.txt", status: 200,
			head: fileHead("200 OK", "Content-Type: text/plain\r\nContent-Length: 16\r\n"), body: hexData},
		{name: "query string cut", uri: "/foo/bar.txt?foo=bar", status: 200, body: fooBar},
		{name: "HEAD file", method: "HEAD", uri: "/hello.txt", status: 200,
			head: fileHead("200 OK", "Content-Type: text/plain\r\nContent-Length: 16\r\n")},
		{name: "html type", uri: "/page.html", status: 200,
			head: fileHead("200 OK", "Content-Type: text/html\r\nContent-Length: 10\r\n")},
		{name: "empty file", uri: "/empty.txt", status: 200,
			head: fileHead("200 OK", "Content-Type: text/plain\r\nContent-Length: 0\r\n")},
		{name: "missing", uri: "/foo/bar.txt/404.txt", status: 404},
		{name: "missing plain", uri: "/nope.txt", status: 404},
		{name: "file with trailing slash", uri: "/hello.txt/", status: 404},
		{name: "dots in name", uri: "/foo/foo..123.txt", status: 200, body: fooBar},
		{name: "plus is literal", uri: "/a+b.txt", status: 200, body: "plus\n"},
		{name: "percent-encoded space", uri: "/sp%20ace.txt", status: 200, body: "space\n"},
		{name: "encoded question mark is a name", uri: "/pct%253Fq.txt", status: 200, body: "literal question mark\n"},
		{name: "dot segments", uri: "/./foo//./bar.txt", status: 200, body: fooBar},
		{name: "bad escape kept", uri: "/%zz", status: 404},

		// Traversal.
		{name: "slash dotdot slash", uri: "/../outside/secret.txt", status: 403, msg: "Bogus URL"},
		{name: "trailing dotdot (Perlbal hole)", uri: "/..", status: 403, msg: "Bogus URL"},
		{name: "trailing dotdot in subdir", uri: "/foo/..", status: 403, msg: "Bogus URL"},
		{name: "trailing dotdot slash", uri: "/foo/../", status: 403, msg: "Bogus URL"},
		{name: "dotdot after query is fine", uri: "/hello.txt?x=/../", status: 200, body: hexData},
		{name: "encoded dotdot", uri: "/%2e%2e/outside/secret.txt", status: 403, msg: "Bogus URL"},
		{name: "mixed case encoded dotdot", uri: "/%2E%2e/", status: 403, msg: "Bogus URL"},
		{name: "encoded slash", uri: "/..%2foutside%2fsecret.txt", status: 403, msg: "Bogus URL"},
		{name: "all encoded", uri: "%2F%2E%2E%2Foutside%2Fsecret.txt", status: 403, msg: "Bogus URL"},
		{name: "deep encoded", uri: "/foo/%2e%2e%2f%2e%2e%2foutside/secret.txt", status: 403, msg: "Bogus URL"},
		{name: "double encoded is a literal name", uri: "/%252e%252e/x.txt", status: 200, body: "literal percent dir\n"},
		{name: "double encoded cannot escape", uri: "/%252e%252e/%252e%252e/outside/secret.txt", status: 404},
		{name: "backslash is a name byte", uri: "/..\\outside\\secret.txt", status: 404},
		{name: "no leading slash", uri: "hello.txt", status: 403, msg: "Bogus URL"},
		{name: "asterisk", uri: "*", status: 403, msg: "Bogus URL"},
		{name: "empty", uri: "", status: 403, msg: "Bogus URL"},
		{name: "absolute form", uri: "http://x/hello.txt", status: 403, msg: "Bogus URL"},
		{name: "NUL", uri: "/hello.txt%00.png", status: 400},
		{name: "symlink inside", uri: "/link_in", status: 200, body: hexData},
		{name: "symlink up but inside", uri: "/foo/link_up", status: 200, body: hexData},
		{name: "symlink outside", uri: "/link_out", status: 403},
		{name: "absolute symlink outside", uri: "/link_out_abs", status: 403},
		{name: "absolute symlink to inside is refused too", uri: "/link_root_abs", status: 403},
		{name: "symlinked dir outside", uri: "/dir_out/secret.txt", status: 403},
		{name: "symlinked dir outside listing", uri: "/dir_out/", status: 403},
		{name: "absolute symlinked dir outside", uri: "/dir_out_abs/secret.txt", status: 403},
		{name: "dangling symlink", uri: "/dangling", status: 404},
		{name: "symlink loop", uri: "/loop", status: 403},
		{name: "fifo", uri: "/fifo", status: 404},

		// Methods.
		{name: "POST", method: "POST", uri: "/hello.txt", status: 400},
		{name: "OPTIONS", method: "OPTIONS", uri: "*", status: 400},
		{name: "lower-case get", method: "get", uri: "/hello.txt", status: 400},
		{name: "PUT disabled", method: "PUT", uri: "/new.txt", status: 403},
		{name: "DELETE disabled", method: "DELETE", uri: "/hello.txt", status: 403},

		// Ranges on a 16-byte file.
		{name: "range 0-6", uri: "/hello.txt", rng: "bytes=0-6", status: 206, body: "0123456",
			head: fileHead("206 Partial Content", "Content-Type: text/plain\r\nContent-Range: bytes 0-6/16\r\nContent-Length: 7\r\n")},
		{name: "range 5-", uri: "/hello.txt", rng: "bytes=5-", status: 206, body: hexData[5:]},
		{name: "range -3 is the last 3", uri: "/hello.txt", rng: "bytes=-3", status: 206, body: "def",
			head: fileHead("206 Partial Content", "Content-Type: text/plain\r\nContent-Range: bytes 13-15/16\r\nContent-Length: 3\r\n")},
		{name: "range -100 is all", uri: "/hello.txt", rng: "bytes=-100", status: 206, body: hexData},
		{name: "range end clamped", uri: "/hello.txt", rng: "bytes=10-100", status: 206, body: hexData[10:]},
		{name: "range last byte", uri: "/hello.txt", rng: "bytes=15-15", status: 206, body: "f"},
		{name: "range spaces and case", uri: "/hello.txt", rng: " Bytes= 1-2 ", status: 206, body: "12"},
		{name: "range 5-1", uri: "/hello.txt", rng: "bytes=5-1", status: 416,
			head: fileHead("416 Request range not satisfiable", "Content-Range: bytes */16\r\nContent-Length: 0\r\n")},
		{name: "range -0", uri: "/hello.txt", rng: "bytes=-0", status: 416},
		{name: "range at EOF", uri: "/hello.txt", rng: "bytes=16-", status: 416},
		{name: "range beyond EOF", uri: "/hello.txt", rng: "bytes=100-200", status: 416},
		{name: "range huge start", uri: "/hello.txt", rng: "bytes=99999999999999999999999-", status: 416},
		{name: "range huge end", uri: "/hello.txt", rng: "bytes=0-99999999999999999999999", status: 206, body: hexData},
		{name: "range on empty file", uri: "/empty.txt", rng: "bytes=0-", status: 416},
		{name: "multi-range ignored", uri: "/hello.txt", rng: "bytes=0-1,4-5", status: 200, body: hexData},
		{name: "suffix multi-range ignored", uri: "/hello.txt", rng: "bytes=-1,0-1", status: 200, body: hexData},
		{name: "other unit ignored", uri: "/hello.txt", rng: "items=0-1", status: 200, body: hexData},
		{name: "garbage range ignored", uri: "/hello.txt", rng: "bytes=a-b", status: 200, body: hexData},
		{name: "bare dash ignored", uri: "/hello.txt", rng: "bytes=-", status: 200, body: hexData},
		{name: "HEAD range", method: "HEAD", uri: "/hello.txt", rng: "bytes=0-6", status: 206,
			head: fileHead("206 Partial Content", "Content-Type: text/plain\r\nContent-Range: bytes 0-6/16\r\nContent-Length: 7\r\n")},

		// If-Modified-Since.
		{name: "IMS exact", uri: "/hello.txt", ims: mtimeStr, status: 304, head: fileHead("304 Not Modified", "")},
		{name: "IMS with IE length", uri: "/hello.txt", ims: mtimeStr + "; length=16", status: 304},
		{name: "IMS with wrong IE length", uri: "/hello.txt", ims: mtimeStr + "; length=15", status: 200, body: hexData},
		{name: "IMS later date", uri: "/hello.txt", ims: "Tue, 02 Apr 2024 10:00:00 GMT", status: 304},
		{name: "IMS RFC 850", uri: "/hello.txt", ims: "Monday, 01-Apr-24 10:00:00 GMT", status: 304},
		{name: "IMS earlier date", uri: "/hello.txt", ims: "Mon, 01 Apr 2024 09:59:59 GMT", status: 200, body: hexData},
		{name: "IMS in the future", uri: "/hello.txt", ims: "Thu, 01 May 2025 12:00:00 GMT", status: 200, body: hexData},
		{name: "IMS garbage", uri: "/hello.txt", ims: "yesterday", status: 200, body: hexData},
		{name: "IMS beats range", uri: "/hello.txt", ims: mtimeStr, rng: "bytes=0-1", status: 304},
		{name: "IMS on a directory", uri: "/list/", ims: mtimeStr, status: 200, msg: "Directory listing disabled"},

		// Directories without index files or listing.
		{name: "dir listing disabled", uri: "/foo/", status: 200, msg: "Directory listing disabled"},
		{name: "dir without slash", uri: "/foo", status: 200, msg: "Directory listing disabled"},
		{name: "docroot", uri: "/", status: 200, msg: "Directory listing disabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			r := &Request{Method: method, URI: []byte(tt.uri)}
			if tt.ims != "" {
				r.IfModifiedSince = []byte(tt.ims)
			}
			if tt.rng != "" {
				r.Range = []byte(tt.rng)
			}
			res := do(t, s, r, keepAlive)
			if res.status != tt.status || !strings.HasPrefix(res.head, "HTTP/1.0 "+itoa(tt.status)+" ") {
				t.Fatalf("status %d, head %q; want %d", res.status, res.head, tt.status)
			}
			if tt.head != "" && res.head != tt.head {
				t.Errorf("head\n%q\nwant\n%q", res.head, tt.head)
			}
			if tt.body != "" && res.body != tt.body {
				t.Errorf("body %q, want %q", trunc(res.body), trunc(tt.body))
			}
			if method == "HEAD" && (res.file || res.bodyOK) {
				t.Errorf("HEAD got a body")
			}
			if tt.status == 304 || tt.status == 416 {
				if res.file || res.bodyOK || strings.Contains(res.head, "Content-Type") {
					t.Errorf("%d with a body or Content-Type: %q", tt.status, res.head)
				}
			}
			if (tt.status >= 400 && tt.status != 416) || tt.msg != "" {
				wantHead, wantBody := simple(tt.status, tt.msg)
				if res.head != wantHead || res.body != wantBody {
					t.Errorf("got %q + %q\nwant %q + %q", res.head, res.body, wantHead, wantBody)
				}
			}
		})
	}
}

func TestMethodsEnabled(t *testing.T) {
	s := New(Options{Docroot: tree(t), EnablePut: true, EnableDelete: true})
	defer s.Close()
	// A PUT needs its body: Serve leaves it to StartPut.
	if res := do(t, s, &Request{Method: "PUT", URI: []byte("/x")}, nil); res.status != 501 {
		t.Errorf("PUT enabled: %d, want 501 from Serve", res.status)
	}
	if res := do(t, s, &Request{Method: "DELETE", URI: []byte("/x")}, nil); res.status != 404 {
		t.Errorf("DELETE enabled, missing file: %d, want 404", res.status)
	}
}

func TestDocrootUnconfigured(t *testing.T) {
	s := New(Options{})
	res := do(t, s, &Request{Method: "GET", URI: []byte("/x")}, nil)
	want := "HTTP/1.0 500 Internal Server Error\r\nContent-Type: text/html\r\nContent-Length: 57\r\nConnection: close\r\n\r\n"
	if res.head != want || res.body != "<h1>500 - Internal Server Error</h1>\nDocroot unconfigured" {
		t.Errorf("got %q + %q", res.head, res.body)
	}
	// Bogus URL is checked first, as in Perlbal.
	if res := do(t, s, &Request{Method: "GET", URI: []byte("/../x")}, nil); res.status != 403 {
		t.Errorf("bogus URL without docroot: %d", res.status)
	}
}

func TestDocrootMissing(t *testing.T) {
	s := New(Options{Docroot: filepath.Join(t.TempDir(), "nope")})
	defer s.Close()
	if res := do(t, s, &Request{Method: "GET", URI: []byte("/")}, nil); res.status != 404 {
		t.Errorf("missing docroot: %d, want 404", res.status)
	}
}

func TestProtoAndDefaultConn(t *testing.T) {
	s := New(Options{Docroot: tree(t)})
	defer s.Close()
	res := do(t, s, &Request{Method: "GET", URI: []byte("/hello.txt"), Proto: "HTTP/1.1"}, nil)
	want := "HTTP/1.1 200 OK\r\nDate: " + nowStr + "\r\nLast-Modified: " + mtimeStr +
		"\r\nAccept-Ranges: bytes\r\nContent-Type: text/plain\r\nContent-Length: 16\r\nConnection: close\r\n\r\n"
	if res.head != want {
		t.Errorf("head\n%q\nwant\n%q", res.head, want)
	}
	res = do(t, s, &Request{Method: "GET", URI: []byte("/nope"), Proto: "HTTP/1.1"}, nil)
	if !strings.HasPrefix(res.head, "HTTP/1.1 404 Not Found\r\n") || strings.Contains(res.head, "Server:") {
		t.Errorf("head %q", res.head)
	}
}

func TestHeadAppendsToDst(t *testing.T) {
	s := New(Options{Docroot: tree(t)})
	defer s.Close()
	head, resp := s.Serve([]byte("PREFIX"), &Request{Method: "GET", URI: []byte("/nope")}, testNow, nil)
	if !bytes.HasPrefix(head, []byte("PREFIXHTTP/1.0 404 ")) || string(resp.Body) != "<h1>404 - Not Found</h1>\n" {
		t.Errorf("got %q + %q", head, resp.Body)
	}
}

func TestIndexFiles(t *testing.T) {
	root := tree(t)
	for _, tc := range []struct {
		name    string
		index   []string
		uri     string
		status  int
		body    string
		msg     string
		listing bool
	}{
		{name: "first present wins", index: []string{"not_here.txt", "nor_here.html", "bar.txt"}, uri: "/foo/", status: 200, body: fooBar},
		{name: "no slash", index: []string{"bar.txt"}, uri: "/foo", status: 200, body: fooBar},
		{name: "none present", index: []string{"blah.txt"}, uri: "/foo/", status: 200, msg: "Directory listing disabled"},
		{name: "directory is not an index", index: []string{"index.html"}, uri: "/notindex/", status: 200, msg: "Directory listing disabled"},
		{name: "index html", index: []string{"index.html"}, uri: "/idx/", status: 200, body: "<p>index</p>\n"},
		{name: "index then listing", index: []string{"index.html"}, uri: "/foo/", status: 200, listing: true},
		{name: "path-like index ignored", index: []string{"../hello.txt", "sub/placeholder", "..", "."}, uri: "/idx/sub/", status: 200, msg: "Directory listing disabled"},
		{name: "symlinked index inside", index: []string{"link_in"}, uri: "/", status: 200, body: hexData},
		{name: "symlinked index outside", index: []string{"link_out"}, uri: "/", status: 200, msg: "Directory listing disabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Options{Docroot: root, IndexFiles: tc.index, DirIndexing: tc.listing})
			defer s.Close()
			res := do(t, s, &Request{Method: "GET", URI: []byte(tc.uri)}, nil)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d (%q)", res.status, tc.status, res.head)
			}
			if tc.body != "" && res.body != tc.body {
				t.Errorf("body %q, want %q", trunc(res.body), trunc(tc.body))
			}
			if tc.msg != "" && !strings.HasSuffix(res.body, "\n"+tc.msg) {
				t.Errorf("body %q, want message %q", res.body, tc.msg)
			}
			if tc.listing && !strings.Contains(res.body, "bar.txt") {
				t.Errorf("no listing: %q", res.body)
			}
		})
	}
	// An index file is served in place with the file rules: ranges, IMS.
	s := New(Options{Docroot: root, IndexFiles: []string{"hello.txt"}})
	defer s.Close()
	if res := do(t, s, &Request{Method: "GET", URI: []byte("/"), Range: []byte("bytes=0-1")}, nil); res.status != 206 || res.body != "01" {
		t.Errorf("index range: %d %q", res.status, res.body)
	}
	if res := do(t, s, &Request{Method: "GET", URI: []byte("/"), IfModifiedSince: []byte(mtimeStr)}, nil); res.status != 304 {
		t.Errorf("index IMS: %d", res.status)
	}
}

func TestListing(t *testing.T) {
	s := New(Options{Docroot: tree(t), DirIndexing: true, ServerTokens: true})
	defer s.Close()
	wantBody := "<html><body>" +
		"<a href='/list/%3Cb%3E%26%27x%22.txt'>&lt;b&gt;&amp;&#39;x&#34;.txt</a><br />\n" +
		"<a href='/list/Upper.txt'>Upper.txt</a><br />\n" +
		"<b><a href='/list/a%20dir/'>a dir</a></b><br />\n" +
		"<a href='/list/plain.txt'>plain.txt</a><br />\n" +
		"<a href='/list/to_out'>to_out</a><br />\n" +
		"<b><a href='/list/to_zdir/'>to_zdir</a></b><br />\n" +
		"<b><a href='/list/zdir/'>zdir</a></b><br />\n" +
		"</body></html>"
	wantHead := "HTTP/1.0 200 OK\r\nDate: " + nowStr + "\r\nServer: Perlbal\r\nLast-Modified: " + mtimeStr +
		"\r\nContent-Type: text/html\r\nContent-Length: " + itoa(len(wantBody)) + "\r\n" + keepConn + "\r\n"
	for _, uri := range []string{"/list/", "/list", "/list//", "/./list/."} {
		res := do(t, s, &Request{Method: "GET", URI: []byte(uri)}, keepAlive)
		if res.head != wantHead {
			t.Errorf("%s: head\n%q\nwant\n%q", uri, res.head, wantHead)
		}
		if res.body != wantBody {
			t.Errorf("%s: body\n%s\nwant\n%s", uri, res.body, wantBody)
		}
	}
	res := do(t, s, &Request{Method: "HEAD", URI: []byte("/list/")}, keepAlive)
	if res.head != wantHead || res.bodyOK {
		t.Errorf("HEAD listing: %q body %v", res.head, res.bodyOK)
	}
	// Perlbal's 15-webserver looks for the file name in the root listing.
	res = do(t, s, &Request{Method: "GET", URI: []byte("/foo/")}, nil)
	if !strings.Contains(res.body, "bar.txt") || strings.Contains(res.body, "'/foo/./'") || strings.Contains(res.body, "'/foo/../'") {
		t.Errorf("foo listing: %q", res.body)
	}
	res = do(t, s, &Request{Method: "GET", URI: []byte("/")}, nil)
	if !strings.Contains(res.body, "<b><a href='/foo/'>foo</a></b><br />\n") || strings.Contains(res.body, "SECRET") {
		t.Errorf("root listing: %q", res.body)
	}
}

func TestDocrootSymlinkSwitch(t *testing.T) {
	top := t.TempDir()
	for _, d := range []string{"v1", "v2"} {
		if err := os.MkdirAll(filepath.Join(top, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(top, d, "v.txt"), []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	current := filepath.Join(top, "current")
	if err := os.Symlink("v1", current); err != nil {
		t.Fatal(err)
	}
	s := New(Options{Docroot: current, InlineMax: -1})
	defer s.Close()
	get := func(now time.Time) string {
		_, resp := s.Serve(nil, &Request{Method: "GET", URI: []byte("/v.txt")}, now, nil)
		if resp.File == nil {
			t.Fatalf("no file: %d", resp.Status)
		}
		defer resp.File.Close()
		b, _ := io.ReadAll(resp.File)
		return string(b)
	}
	if got := get(testNow); got != "v1" {
		t.Fatalf("got %q", got)
	}
	tmp := filepath.Join(top, "next")
	if err := os.Symlink("v2", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, current); err != nil {
		t.Fatal(err)
	}
	if got := get(testNow.Add(500 * time.Millisecond)); got != "v1" {
		t.Errorf("same second: got %q, want the cached v1", got)
	}
	if got := get(testNow.Add(-time.Second)); got != "v1" {
		t.Errorf("slightly older clock: got %q, want the cached v1", got)
	}
	if got := get(testNow.Add(time.Second)); got != "v2" {
		t.Errorf("next second: got %q, want v2", got)
	}
}

func TestClose(t *testing.T) {
	s := New(Options{Docroot: tree(t), InlineMax: -1})
	_, resp := s.Serve(nil, &Request{Method: "GET", URI: []byte("/hello.txt")}, testNow, nil)
	if resp.File == nil {
		t.Fatal("no file")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Files handed out stay usable.
	b, err := io.ReadAll(resp.File)
	resp.File.Close()
	if err != nil || string(b) != hexData {
		t.Errorf("read after Close: %q %v", b, err)
	}
	if _, resp := s.Serve(nil, &Request{Method: "GET", URI: []byte("/hello.txt")}, testNow.Add(time.Second), nil); resp.Status != 503 || resp.File != nil {
		t.Errorf("after Close: %d", resp.Status)
	}
}

// TestReplacedRootRetried covers a loop that loaded the docroot handle just
// before another loop's refresh closed it.
func TestReplacedRootRetried(t *testing.T) {
	s := New(Options{Docroot: tree(t)})
	defer s.Close()
	if s.docroot(testNow, false) == nil {
		t.Fatal("no root")
	}
	// Close the current handle behind the Server's back, in the same
	// second: only the forced reopen on retry can save the request.
	s.root.Load().root.Close()
	_, resp := s.Serve(nil, &Request{Method: "GET", URI: []byte("/hello.txt")}, testNow, nil)
	if resp.File != nil {
		resp.File.Close()
	}
	if resp.Status != 200 {
		t.Errorf("status %d after the handle was closed, want 200 via retry", resp.Status)
	}
}

func TestConcurrentServe(t *testing.T) {
	s := New(Options{Docroot: tree(t), IndexFiles: []string{"index.html"}})
	defer s.Close()
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			buf := make([]byte, 0, 512)
			for i := 0; i < 50; i++ {
				// Every call a new second: maximal refresh churn.
				now := testNow.Add(time.Duration(i) * time.Second)
				_, resp := s.Serve(buf[:0], &Request{Method: "GET", URI: []byte("/idx/")}, now, nil)
				if resp.File != nil {
					resp.File.Close()
				}
				if resp.Status != 200 {
					t.Errorf("status %d", resp.Status)
					return
				}
			}
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
}

func TestCustomMIME(t *testing.T) {
	m := MIMETypes()
	m["txt"] = "text/plain; charset=utf-8"
	delete(m, "css")
	s := New(Options{Docroot: tree(t), MIME: m})
	defer s.Close()
	for uri, want := range map[string]string{
		"/hello.txt": "text/plain; charset=utf-8",
		"/style.css": "text/plain",
		"/page.html": "text/html",
	} {
		res := do(t, s, &Request{Method: "GET", URI: []byte(uri)}, nil)
		if !strings.Contains(res.head, "\r\nContent-Type: "+want+"\r\n") {
			t.Errorf("%s: %q, want %s", uri, res.head, want)
		}
	}
}

func TestUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads anything")
	}
	root := tree(t)
	p := filepath.Join(root, "hello.txt")
	if err := os.Chmod(p, 0); err != nil {
		t.Fatal(err)
	}
	s := New(Options{Docroot: root})
	defer s.Close()
	if res := do(t, s, &Request{Method: "GET", URI: []byte("/hello.txt")}, nil); res.status != 403 {
		t.Errorf("unreadable: %d, want 403", res.status)
	}
}

func itoa(n int) string { return string(status.AppendBody(nil, n, "")[4 : 4+digitsOf(n)]) }

func digitsOf(n int) int {
	d := 1
	for ; n >= 10; n /= 10 {
		d++
	}
	return d
}

func trunc(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}
