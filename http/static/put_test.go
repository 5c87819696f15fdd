package static

import (
	"crypto/md5"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func md5Header(body string) []byte {
	sum := md5.Sum([]byte(body))
	return []byte(base64.StdEncoding.EncodeToString(sum[:]))
}

// put runs a whole PUT through StartPut, Write (in pieces of at most 7
// bytes) and Finish, and returns the response (head + body).
func put(t *testing.T, s *Server, r *Request, body string) (int, string) {
	t.Helper()
	r.Method = "PUT"
	if r.ContentLength == 0 && !r.Chunked {
		r.ContentLength = int64(len(body))
	}
	u, head, resp := s.StartPut(nil, r, testNow, nil)
	if u == nil {
		return resp.Status, string(head) + string(resp.Body)
	}
	for p := []byte(body); len(p) > 0; {
		n := min(len(p), 7)
		if err := u.Write(p[:n]); err != nil {
			u.Abort()
			ue := err.(*UploadError)
			return ue.Code, ue.Msg
		}
		p = p[n:]
	}
	head, resp = u.Finish(nil, r, testNow, nil)
	return resp.Status, string(head) + string(resp.Body)
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// leftovers lists the names in dir starting with prefix.
func leftovers(t *testing.T, dir, prefix string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, prefix) + "*")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPut(t *testing.T) {
	root := tree(t)
	s := New(Options{Docroot: root, EnablePut: true, EnableMD5: true})
	defer s.Close()

	code, resp := put(t, s, &Request{URI: []byte("/new.txt")}, fooBar)
	if code != 200 || resp != "HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: 18\r\nConnection: close\r\n\r\n<h1>200 - OK</h1>\n" {
		t.Fatalf("PUT: %d %q", code, resp)
	}
	if got := readFile(t, filepath.Join(root, "new.txt")); got != fooBar {
		t.Fatalf("file holds %d bytes", len(got))
	}
	// Overwrite, shorter: truncated.
	if code, _ := put(t, s, &Request{URI: []byte("/new.txt")}, "short"); code != 200 || readFile(t, filepath.Join(root, "new.txt")) != "short" {
		t.Fatalf("overwrite: %d", code)
	}
	// No Content-Length: an empty file, as in Perlbal.
	if code, _ := put(t, s, &Request{URI: []byte("/new.txt"), ContentLength: -1}, ""); code != 200 || readFile(t, filepath.Join(root, "new.txt")) != "" {
		t.Fatalf("empty: %d", code)
	}
	// Deeper directories are created.
	if code, _ := put(t, s, &Request{URI: []byte("/a/b/c/d.txt")}, "deep"); code != 200 || readFile(t, filepath.Join(root, "a/b/c/d.txt")) != "deep" {
		t.Fatalf("deep: %d", code)
	}
	if fi, err := os.Stat(filepath.Join(root, "a/b")); err != nil || fi.Mode().Perm() != 0o755&^umask() {
		t.Errorf("created directory: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(root, "a/b/c/d.txt")); err != nil || fi.Mode().Perm() != 0o644&^umask() {
		t.Errorf("created file: %v %v", fi.Mode(), err)
	}
	// Chunked: no Content-Length.
	if code, _ := put(t, s, &Request{URI: []byte("/chunked.txt"), Chunked: true}, "abc"); code != 200 || readFile(t, filepath.Join(root, "chunked.txt")) != "abc" {
		t.Fatalf("chunked: %d", code)
	}
	// HTTP/1.1 status line when asked.
	if _, resp := put(t, s, &Request{URI: []byte("/new.txt"), Proto: "HTTP/1.1"}, "x"); !strings.HasPrefix(resp, "HTTP/1.1 200 OK\r\n") {
		t.Errorf("proto: %q", resp)
	}
}

// umask reads the process umask from the mode mkdir gives a new directory.
func umask() os.FileMode {
	d, err := os.MkdirTemp("", "umask")
	if err != nil {
		return 0o022
	}
	defer os.RemoveAll(d)
	sub := filepath.Join(d, "x")
	if err := os.Mkdir(sub, 0o777); err != nil {
		return 0o022
	}
	fi, err := os.Stat(sub)
	if err != nil {
		return 0o022
	}
	return 0o777 &^ fi.Mode().Perm()
}

func TestPutMD5(t *testing.T) {
	root := tree(t)
	s := New(Options{Docroot: root, EnablePut: true, EnableMD5: true})
	defer s.Close()
	p := filepath.Join(root, "md5.txt")

	// Match: 201 with an empty reason, renamed into place.
	code, resp := put(t, s, &Request{URI: []byte("/md5.txt"), ContentMD5: md5Header("!")}, "!")
	if code != 201 || resp != "HTTP/1.0 201 \r\nContent-Type: text/html\r\nContent-Length: 13\r\nConnection: close\r\n\r\n<h1>201</h1>\n" {
		t.Fatalf("match: %d %q", code, resp)
	}
	if readFile(t, p) != "!" || len(leftovers(t, root, "md5.txt")) != 1 {
		t.Fatalf("after match: %q, files %v", readFile(t, p), leftovers(t, root, "md5.txt"))
	}
	// Without padding, and with blanks: the same digest.
	unpadded := strings.TrimRight(string(md5Header("ab")), "=")
	if code, _ := put(t, s, &Request{URI: []byte("/md5.txt"), ContentMD5: []byte(" " + unpadded + " ")}, "ab"); code != 201 {
		t.Fatalf("unpadded: %d", code)
	}
	// Mismatch: 400 with both digests, the old file untouched, no
	// temporary file left.
	code, resp = put(t, s, &Request{URI: []byte("/md5.txt"), ContentMD5: md5Header("!")}, "?")
	want := "Content-MD5 mismatch, expected: " + strings.TrimRight(string(md5Header("!")), "=") +
		" actual: " + strings.TrimRight(string(md5Header("?")), "=")
	if code != 400 || !strings.HasSuffix(resp, "<h1>400 - Bad request</h1>\n"+want) {
		t.Fatalf("mismatch: %d %q", code, resp)
	}
	if readFile(t, p) != "ab" || len(leftovers(t, root, "md5.txt")) != 1 {
		t.Fatalf("after mismatch: %q, files %v", readFile(t, p), leftovers(t, root, "md5.txt"))
	}
	// The client's value is escaped in the HTML page.
	_, resp = put(t, s, &Request{URI: []byte("/md5.txt"), ContentMD5: []byte("<script>")}, "?")
	if strings.Contains(resp, "<script>") || !strings.Contains(resp, "&lt;script&gt;") {
		t.Errorf("unescaped: %q", resp)
	}
	// MD5 checking off: the header is ignored.
	s2 := New(Options{Docroot: root, EnablePut: true})
	defer s2.Close()
	if code, _ := put(t, s2, &Request{URI: []byte("/md5.txt"), ContentMD5: md5Header("!")}, "?"); code != 200 || readFile(t, p) != "?" {
		t.Fatalf("md5 off: %d", code)
	}
}

func TestPutAbort(t *testing.T) {
	root := tree(t)
	s := New(Options{Docroot: root, EnablePut: true, EnableMD5: true})
	defer s.Close()
	r := &Request{Method: "PUT", URI: []byte("/part.txt"), ContentLength: 10, ContentMD5: md5Header("0123456789")}
	u, _, resp := s.StartPut(nil, r, testNow, nil)
	if u == nil {
		t.Fatalf("StartPut: %d", resp.Status)
	}
	if err := u.Write([]byte("01234")); err != nil {
		t.Fatal(err)
	}
	if l := leftovers(t, root, "part.txt."); len(l) != 1 || !strings.HasSuffix(l[0], ".tmp") {
		t.Fatalf("temporary file while uploading: %v", l)
	}
	u.Abort()
	u.Abort() // twice is fine
	if l := leftovers(t, root, "part.txt"); len(l) != 0 {
		t.Fatalf("after abort with MD5: %v", l)
	}
	if err := u.Write([]byte("x")); err == nil {
		t.Error("Write after Abort succeeded")
	}
	if _, resp := u.Finish(nil, r, testNow, nil); resp.Status != 500 {
		t.Errorf("Finish after Abort: %d", resp.Status)
	}

	// Without MD5 the file is written in place: the part stays.
	r.ContentMD5 = nil
	u, _, _ = s.StartPut(nil, r, testNow, nil)
	u.Write([]byte("01234"))
	if readFile(t, filepath.Join(root, "part.txt")) != "01234" {
		t.Fatal("no data in place while uploading")
	}
	u.Abort()
	if readFile(t, filepath.Join(root, "part.txt")) != "01234" {
		t.Fatal("partial file gone")
	}
}

func TestPutRefused(t *testing.T) {
	root := tree(t)
	on := Options{Docroot: root, EnablePut: true, EnableMD5: true}
	for _, tc := range []struct {
		name   string
		opts   func(o *Options)
		uri    string
		cl     int64
		status int
		msg    string
	}{
		{name: "disabled", opts: func(o *Options) { o.EnablePut = false }, uri: "/x.txt", status: 403},
		{name: "too large", opts: func(o *Options) { o.MaxPutSize = 10 }, uri: "/x.txt", cl: 11, status: 400, msg: "Content-length of 11 is invalid."},
		{name: "dot dot", uri: "/a/../x.txt", status: 400, msg: "Invalid filename"},
		{name: "dot dot in a name", uri: "/foo..txt", status: 400, msg: "Invalid filename"},
		{name: "query", uri: "/x.txt?a=1", status: 400, msg: "Invalid filename"},
		{name: "escape", uri: "/x%20y.txt", status: 400, msg: "Invalid filename"},
		{name: "trailing slash", uri: "/dir/", status: 400, msg: "Invalid filename"},
		{name: "root", uri: "/", status: 400, msg: "Invalid filename"},
		{name: "double slash", uri: "//x.txt", status: 400, msg: "Invalid filename"},
		{name: "absolute form", uri: "http://h/x.txt", status: 400, msg: "Invalid filename"},
		{name: "min dirs", opts: func(o *Options) { o.MinPutDirectory = 2 }, uri: "/foo/x.txt", status: 400, msg: "Does not meet minimum directory requirement"},
		{name: "min dirs missing", opts: func(o *Options) { o.MinPutDirectory = 2 }, uri: "/foo/nope/x.txt", status: 404, msg: "Base directory does not exist"},
		{name: "min dir is a file", opts: func(o *Options) { o.MinPutDirectory = 1 }, uri: "/hello.txt/x.txt", status: 404, msg: "Base directory does not exist"},
		{name: "symlinked dir outside", uri: "/dir_out/new.txt", status: 403, msg: "Internal error"},
		{name: "symlink to a file outside", uri: "/link_out", status: 403, msg: "Internal error"},
		{name: "a directory", uri: "/foo", status: 500, msg: "Internal error"},
		{name: "a fifo", uri: "/fifo", status: 500, msg: "Internal error"},
		{name: "no docroot", opts: func(o *Options) { o.Docroot = "" }, uri: "/x.txt", status: 500, msg: "Docroot unconfigured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := on
			if tc.opts != nil {
				tc.opts(&o)
			}
			s := New(o)
			defer s.Close()
			r := &Request{Method: "PUT", URI: []byte(tc.uri), ContentLength: tc.cl}
			u, head, resp := s.StartPut(nil, r, testNow, nil)
			if u != nil {
				u.Abort()
				t.Fatal("accepted")
			}
			if resp.Status != tc.status || !strings.HasPrefix(string(head), "HTTP/1.0 "+itoa(tc.status)+" ") {
				t.Fatalf("status %d %q, want %d", resp.Status, head, tc.status)
			}
			if tc.msg != "" && !strings.HasSuffix(string(resp.Body), "</h1>\n"+tc.msg) {
				t.Errorf("body %q, want message %q", resp.Body, tc.msg)
			}
		})
	}
	if got := readFile(t, filepath.Join(filepath.Dir(root), "outside", "secret.txt")); got != "SECRET\n" {
		t.Errorf("file outside the docroot changed: %q", got)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(root), "outside", "new.txt")); err == nil {
		t.Error("file created outside the docroot")
	}
}

func TestPutMinDirectory(t *testing.T) {
	root := tree(t)
	s := New(Options{Docroot: root, EnablePut: true, MinPutDirectory: 1})
	defer s.Close()
	// foo exists; deeper levels are created.
	if code, _ := put(t, s, &Request{URI: []byte("/foo/x/y/z.txt")}, "z"); code != 200 || readFile(t, filepath.Join(root, "foo/x/y/z.txt")) != "z" {
		t.Fatalf("min 1: %d", code)
	}
	// The check is made on every PUT (Perlbal caches it for ever).
	if err := os.RemoveAll(filepath.Join(root, "idx")); err != nil {
		t.Fatal(err)
	}
	if code, _ := put(t, s, &Request{URI: []byte("/idx/z.txt")}, "z"); code != 404 {
		t.Fatalf("removed base: %d", code)
	}
}

func TestPutSizeLimits(t *testing.T) {
	root := tree(t)
	s := New(Options{Docroot: root, EnablePut: true, MaxPutSize: 10, MaxChunkedSize: 5})
	defer s.Close()
	if code, _ := put(t, s, &Request{URI: []byte("/ten.txt")}, "0123456789"); code != 200 {
		t.Fatalf("at the limit: %d", code)
	}
	// Chunked: the smaller of the two limits, checked as the body comes.
	code, msg := put(t, s, &Request{URI: []byte("/c.txt"), Chunked: true}, "012345")
	if code != 400 || msg != "Content-length of 6 is invalid." {
		t.Fatalf("chunked over: %d %q", code, msg)
	}
	if code, _ := put(t, s, &Request{URI: []byte("/c.txt"), Chunked: true}, "01234"); code != 200 {
		t.Fatalf("chunked at the limit: %d", code)
	}
}

func TestDelete(t *testing.T) {
	root := tree(t)
	s := New(Options{Docroot: root, EnableDelete: true, ServerTokens: true})
	defer s.Close()
	del := func(uri string) result {
		return do(t, s, &Request{Method: "DELETE", URI: []byte(uri)}, keepAlive)
	}
	res := del("/hello.txt")
	if res.status != 204 || res.head != "HTTP/1.0 204 No Content\r\nServer: Perlbal\r\n"+keepConn+"\r\n" || res.bodyOK {
		t.Fatalf("delete: %d %q", res.status, res.head)
	}
	if _, err := os.Stat(filepath.Join(root, "hello.txt")); !os.IsNotExist(err) {
		t.Fatal("file still there")
	}
	if res := del("/hello.txt"); res.status != 404 {
		t.Errorf("again: %d", res.status)
	}
	if res := del("/foo"); res.status != 400 || !strings.HasSuffix(res.body, "\nIs a directory") {
		t.Errorf("directory: %d %q", res.status, res.body)
	}
	for _, uri := range []string{"/foo/../page.html", "/a..b", "/", "/x?y", "/x%41", "/foo/", "x"} {
		if res := del(uri); res.status != 400 || !strings.HasSuffix(res.body, "\nInvalid filename") {
			t.Errorf("%s: %d %q", uri, res.status, res.body)
		}
	}
	// A symlink is removed itself, never its target; one leading out is
	// refused.
	if res := del("/link_out"); res.status != 204 {
		t.Errorf("symlink: %d", res.status)
	}
	if res := del("/dir_out/secret.txt"); res.status != 403 {
		t.Errorf("through a symlink outside: %d %q", res.status, res.body)
	}
	if got := readFile(t, filepath.Join(filepath.Dir(root), "outside", "secret.txt")); got != "SECRET\n" {
		t.Errorf("outside file: %q", got)
	}
	s2 := New(Options{Docroot: root})
	defer s2.Close()
	if res := do(t, s2, &Request{Method: "DELETE", URI: []byte("/page.html")}, nil); res.status != 403 {
		t.Errorf("disabled: %d", res.status)
	}
}

func TestExpectedMD5(t *testing.T) {
	for in, want := range map[string]string{
		"abc==":      "abc",
		" abc= \t":   "abc",
		"abc":        "abc",
		"===":        "",
		"":           "",
		"a=b=":       "a=b",
		"\tQUJD==  ": "QUJD",
	} {
		if got := string(expectedMD5([]byte(in))); got != want {
			t.Errorf("expectedMD5(%q) = %q, want %q", in, got, want)
		}
	}
}
