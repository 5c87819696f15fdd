package static

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// concatBody reads the parts of a concatenated response and closes them.
func concatBody(t *testing.T, resp *Response) string {
	t.Helper()
	var sb strings.Builder
	for _, p := range resp.Parts {
		if p.Length <= 0 {
			t.Errorf("part of length %d", p.Length)
		}
		b := make([]byte, p.Length)
		if _, err := p.File.ReadAt(b, p.Offset); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		sb.Write(b)
		p.File.Close()
	}
	return sb.String()
}

func TestConcat(t *testing.T) {
	root := tree(t)
	a, b := strings.Repeat("a", 50)+"\n", strings.Repeat("b", 50)+"\n"
	for name, data := range map[string]string{"c/a.txt": a, "c/b.txt": b, "c/bar/b.txt": b, "c/s.css": "s{}", "c/e.txt": "", "c/README": "r"} {
		p := filepath.Join(root, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, testMtime, testMtime)
	}
	newer := testMtime.Add(time.Hour)
	os.Chtimes(filepath.Join(root, "c/b.txt"), newer, newer)
	s := New(Options{Docroot: root, EnableConcatenateGet: true, ServerTokens: true})
	defer s.Close()
	simple := func(code int, msg string) string {
		return "<h1>" + itoa(code) + " - " + map[int]string{403: "Forbidden", 404: "Not Found", 500: "Internal Server Error"}[code] + "</h1>\n" + msg
	}

	for _, tc := range []struct {
		name, uri, ims, method string
		status                 int
		body, msg              string
		head                   string
	}{
		{name: "basic", uri: "/c/??a.txt,b.txt", status: 200, body: a + b,
			head: "HTTP/1.0 200 OK\r\nDate: " + nowStr + "\r\nServer: Perlbal\r\nLast-Modified: Mon, 01 Apr 2024 11:00:00 GMT\r\n" +
				"Content-Type: text/plain\r\nContent-Length: 102\r\n" + keepConn + "\r\n"},
		{name: "subdirectory", uri: "/c/??a.txt,bar/b.txt", status: 200, body: a + b},
		{name: "duplicates", uri: "/c/??a.txt,a.txt", status: 200, body: a + a},
		{name: "cache buster", uri: "/c/??a.txt,b.txt?v=123", status: 200, body: a + b},
		{name: "trailing comma", uri: "/c/??a.txt,", status: 200, body: a},
		{name: "empty file skipped", uri: "/c/??e.txt,a.txt,e.txt", status: 200, body: a},
		{name: "type of the first known", uri: "/c/??README,s.css,a.txt", status: 200, body: "r" + "s{}" + a},
		{name: "encoded names", uri: "/c/??%61.txt,b%2etxt", status: 200, body: a + b},
		{name: "HEAD", method: "HEAD", uri: "/c/??a.txt", status: 200},
		{name: "not modified", uri: "/c/??a.txt,b.txt", ims: "Mon, 01 Apr 2024 11:00:00 GMT", status: 304,
			head: "HTTP/1.0 304 Not Modified\r\nDate: " + nowStr + "\r\nServer: Perlbal\r\nLast-Modified: Mon, 01 Apr 2024 11:00:00 GMT\r\n" +
				"Content-Type: text/plain\r\n" + keepConn + "\r\n"},
		{name: "modified", uri: "/c/??a.txt,b.txt", ims: mtimeStr, status: 200, body: a + b},
		{name: "no trailing slash", uri: "/c??a.txt", status: 500, msg: "Base directory (before ??) must end in slash."},
		{name: "bogus directory", uri: "/bogus/??a.txt", status: 404, msg: "Base directory not a directory"},
		{name: "file as directory", uri: "/hello.txt/??a.txt", status: 404, msg: "Base directory not a directory"},
		{name: "bogus file", uri: "/c/??a.txt,bogus.txt", status: 404, msg: "One or more file does not exist"},
		{name: "directory entry", uri: "/c/??bar", status: 404, msg: "One or more file does not exist"},
		{name: "entry with slash", uri: "/c/??a.txt/", status: 404, msg: "One or more file does not exist"},
		{name: "empty entry", uri: "/c/??a.txt,,b.txt", status: 404, msg: "One or more file does not exist"},
		{name: "empty list", uri: "/c/??", status: 404, msg: "One or more file does not exist"},
		{name: "dotdot entry", uri: "/c/??../hello.txt", status: 403, msg: "Bogus filenames"},
		{name: "dotdot entry at end", uri: "/c/??bar/..", status: 403, msg: "Bogus filenames"},
		{name: "encoded dotdot entry", uri: "/c/??%2e%2e/hello.txt", status: 403, msg: "Bogus filenames"},
		{name: "dotdot base", uri: "/c/../??hello.txt", status: 403, msg: "Bogus URL"},
		{name: "symlink out", uri: "/??link_out", status: 404, msg: "One or more file does not exist"},
		{name: "symlinked dir out", uri: "/dir_out/??secret.txt", status: 404, msg: "Base directory not a directory"},
		{name: "too many", uri: "/c/??" + strings.Repeat("a.txt,", 101), status: 403, msg: "Too many files requested"},
		{name: "a hundred", uri: "/c/??" + strings.Repeat("a.txt,", 100), status: 200, body: strings.Repeat(a, 100)},
		{name: "percent-encoded question marks are a name", uri: "/c/%3F%3Fa.txt", status: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "GET"
			}
			r := &Request{Method: method, URI: []byte(tc.uri), IfModifiedSince: []byte(tc.ims)}
			head, resp := s.Serve(nil, r, testNow, keepAlive)
			body := string(resp.Body) + concatBody(t, &resp)
			if resp.Status != tc.status {
				t.Fatalf("status %d, want %d: %q %q", resp.Status, tc.status, head, body)
			}
			if tc.head != "" && string(head) != tc.head {
				t.Errorf("head\n%q\nwant\n%q", head, tc.head)
			}
			if tc.body != "" && body != tc.body {
				t.Errorf("body %q, want %q", trunc(body), trunc(tc.body))
			}
			if tc.msg != "" && body != simple(tc.status, tc.msg) {
				t.Errorf("body %q, want %q", body, simple(tc.status, tc.msg))
			}
			if tc.name == "type of the first known" && !strings.Contains(string(head), "Content-Type: text/css\r\n") {
				t.Errorf("type: %q", head)
			}
			if method == "HEAD" && (body != "" || !strings.Contains(string(head), "Content-Length: 51\r\n")) {
				t.Errorf("HEAD: %q %q", head, body)
			}
		})
	}

	// Off: 403, after the slash and docroot checks, as in Perlbal.
	off := New(Options{Docroot: root})
	defer off.Close()
	for uri, want := range map[string]int{"/c/??a.txt": 403, "/c??a.txt": 500} {
		if _, resp := off.Serve(nil, &Request{Method: "GET", URI: []byte(uri)}, testNow, nil); resp.Status != want {
			t.Errorf("disabled %s: %d, want %d", uri, resp.Status, want)
		}
	}
	if _, resp := off.Serve(nil, &Request{Method: "GET", URI: []byte("/c/??a.txt")}, testNow, nil); !strings.HasSuffix(string(resp.Body), "Multiple file serving isn't enabled") {
		t.Errorf("disabled body %q", resp.Body)
	}
	noRoot := New(Options{EnableConcatenateGet: true})
	if _, resp := noRoot.Serve(nil, &Request{Method: "GET", URI: []byte("/c/??a.txt")}, testNow, nil); resp.Status != 500 || !strings.HasSuffix(string(resp.Body), "Docroot unconfigured") {
		t.Errorf("no docroot: %d %q", resp.Status, resp.Body)
	}
}

func TestSplitConcat(t *testing.T) {
	for _, tc := range []struct {
		uri, base, list string
		ok              bool
	}{
		{"/a/??b,c", "/a/", "b,c", true},
		{"/a/??b,c?v=1", "/a/", "b,c", true},
		{"/a/??b?x??y", "/a/", "b", true},
		{"/a/?x??b", "", "", false},
		{"/a/?", "", "", false},
		{"/a/??", "/a/", "", true},
		{"/a/b", "", "", false},
	} {
		base, list, ok := splitConcat([]byte(tc.uri))
		if ok != tc.ok || string(base) != tc.base || string(list) != tc.list {
			t.Errorf("splitConcat(%q) = %q, %q, %v", tc.uri, base, list, ok)
		}
	}
	var names []string
	n := concatNames([]byte("a,,b,c,,"), func(b []byte) bool { names = append(names, string(b)); return true })
	if n != 4 || strings.Join(names, "|") != "a||b|c" {
		t.Errorf("concatNames: %d %q", n, names)
	}
}
