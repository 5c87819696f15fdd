package server

import (
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/internal/testhttp"
)

// startWeb runs one web_server "web" (2 loops) over a new docroot with the
// given extra service keys, and returns the server and the docroot.
func startWeb(t *testing.T, keys string) (*testServer, string) {
	t.Helper()
	dir := t.TempDir()
	ts := startServer(t, fmt.Sprintf(`[global]
workers = 2

[service.web]
role = "web_server"
listen = "127.0.0.1:0"
docroot = %q
persist_client = true
%s
`, dir, keys))
	return ts, dir
}

func b64md5(s string) string {
	sum := md5.Sum([]byte(s))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func fileIs(t *testing.T, p, want string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		t.Fatalf("%s holds %d bytes %q, want %d", p, len(b), trunc(string(b)), len(want))
	}
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func TestWebServerPut(t *testing.T) {
	ts, dir := startWeb(t, "enable_put = true\nenable_delete = true")
	addr := ts.addrOf("web")
	c := testhttp.Dial(t, addr)

	body := strings.Repeat("foo bar baz\n", 1000)
	resp, got := c.Do("PUT /a/b/foo.txt HTTP/1.1\r\nHost: t\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body)
	if resp.StatusCode != 200 || got != "<h1>200 - OK</h1>\n" || resp.Close {
		t.Fatalf("PUT: %d %q close %v", resp.StatusCode, got, resp.Close)
	}
	fileIs(t, filepath.Join(dir, "a/b/foo.txt"), body)
	// Same connection: the file, then a pipelined PUT and GET.
	if _, got := c.Do("GET /a/b/foo.txt HTTP/1.1\r\nHost: t\r\n\r\n"); got != body {
		t.Fatalf("GET after PUT: %d bytes", len(got))
	}
	c.Send("PUT /p.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabcGET /p.txt HTTP/1.1\r\nHost: t\r\n\r\n")
	if resp, _ := c.Read("PUT"); resp.StatusCode != 200 {
		t.Fatalf("pipelined PUT: %d", resp.StatusCode)
	}
	if _, got := c.Read("GET"); got != "abc" {
		t.Fatalf("pipelined GET: %q", got)
	}

	// Expect: 100-continue: the interim response first, then the body.
	c.Send("PUT /e.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	line, err := c.BR.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("interim: %q %v", line, err)
	}
	if blank, _ := c.BR.ReadString('\n'); blank != "\r\n" {
		t.Fatalf("after 100: %q", blank)
	}
	c.Send("hello")
	if resp, _ := c.Read("PUT"); resp.StatusCode != 200 {
		t.Fatalf("PUT after 100: %d", resp.StatusCode)
	}
	fileIs(t, filepath.Join(dir, "e.txt"), "hello")

	// Chunked, HTTP/1.1: the connection stays.
	resp, _ = c.Do("PUT /ch.txt HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nTrailer: 1\r\n\r\n")
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("chunked PUT: %d close %v", resp.StatusCode, resp.Close)
	}
	fileIs(t, filepath.Join(dir, "ch.txt"), "abcde")

	// Content-MD5.
	resp, got = c.Do("PUT /m.txt HTTP/1.1\r\nHost: t\r\nContent-MD5: " + b64md5("!") + "\r\nContent-Length: 1\r\n\r\n!")
	if resp.StatusCode != 201 || got != "<h1>201</h1>\n" {
		t.Fatalf("MD5 match: %d %q", resp.StatusCode, got)
	}
	resp, got = c.Do("PUT /m.txt HTTP/1.1\r\nHost: t\r\nContent-MD5: " + b64md5("!") + "\r\nContent-Length: 1\r\n\r\n?")
	if resp.StatusCode != 400 || !strings.Contains(got, "Content-MD5 mismatch, expected: ") {
		t.Fatalf("MD5 mismatch: %d %q", resp.StatusCode, got)
	}
	fileIs(t, filepath.Join(dir, "m.txt"), "!")
	if m, _ := filepath.Glob(filepath.Join(dir, "m.txt*")); len(m) != 1 {
		t.Fatalf("left over: %v", m)
	}

	// DELETE.
	if resp, _ := c.Do("DELETE /m.txt HTTP/1.1\r\nHost: t\r\n\r\n"); resp.StatusCode != 204 {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	if resp, _ := c.Do("DELETE /m.txt HTTP/1.1\r\nHost: t\r\n\r\n"); resp.StatusCode != 404 {
		t.Fatalf("DELETE again: %d", resp.StatusCode)
	}
	if resp, got := c.Do("DELETE /a HTTP/1.1\r\nHost: t\r\n\r\n"); resp.StatusCode != 400 || !strings.HasSuffix(got, "Is a directory") {
		t.Fatalf("DELETE a directory: %d %q", resp.StatusCode, got)
	}

	// Perlbal's 22-chunked-put: HTTP/1.0, chunked, 100-continue; the
	// file exists while the upload runs; the connection closes after.
	c2 := testhttp.Dial(t, addr)
	c2.Send("PUT /c10.txt HTTP/1.0\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
	if line, _ := c2.BR.ReadString('\n'); line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("1.0 interim: %q", line)
	}
	c2.BR.ReadString('\n')
	c2.Send("5\r\nhello\r\n")
	testhttp.WaitFor(t, "the file to exist mid-upload", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "c10.txt"))
		return err == nil && string(b) == "hello"
	})
	c2.Send("1\r\n!\r\n0\r\n\r\n")
	if resp, _ := c2.Read("PUT"); resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("1.0 chunked: %d close %v", resp.StatusCode, resp.Close)
	}
	c2.ExpectClosed()
	fileIs(t, filepath.Join(dir, "c10.txt"), "hello!")
}

func TestWebServerPutRefused(t *testing.T) {
	ts, dir := startWeb(t, "enable_put = true\nmax_put_size = 10\nmin_put_directory = 1")
	addr := ts.addrOf("web")
	os.Mkdir(filepath.Join(dir, "up"), 0o755)
	for _, tc := range []struct {
		req    string
		status int
		msg    string
	}{
		{"PUT /up/x.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n01234567890", 400, "Content-length of 11 is invalid."},
		{"PUT /x.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx", 400, "Does not meet minimum directory requirement"},
		{"PUT /nope/x.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx", 404, "Base directory does not exist"},
		{"PUT /up/../x.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx", 400, "Invalid filename"},
		// Chunked: max_put_size applies as the body comes.
		{"PUT /up/c.txt HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n01234567890\r\n0\r\n\r\n", 400, "Content-length of 11 is invalid."},
		{"PUT /up/c.txt HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "invalid chunk size"},
	} {
		c := testhttp.Dial(t, addr)
		resp, got := c.Do(tc.req)
		if resp.StatusCode != tc.status || tc.msg != "" && !strings.HasSuffix(got, "</h1>\n"+tc.msg) || !resp.Close {
			t.Errorf("%q: %d %q close %v", tc.req, resp.StatusCode, got, resp.Close)
		}
		c.ExpectClosed()
	}
	// A refused PUT without a body keeps the connection.
	c := testhttp.Dial(t, addr)
	if resp, _ := c.Do("PUT /x.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"); resp.StatusCode != 400 || resp.Close {
		t.Errorf("bodiless refused PUT: %d close %v", resp.StatusCode, resp.Close)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.txt")); err == nil {
		t.Error("refused PUT created a file")
	}

	// Off: 403, and DELETE too.
	ts2, _ := startWeb(t, "")
	c = testhttp.Dial(t, ts2.addrOf("web"))
	if resp, _ := c.Do("PUT /x.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx"); resp.StatusCode != 403 || !resp.Close {
		t.Errorf("PUT off: %d close %v", resp.StatusCode, resp.Close)
	}
	c = testhttp.Dial(t, ts2.addrOf("web"))
	if resp, _ := c.Do("DELETE /x.txt HTTP/1.1\r\nHost: t\r\n\r\n"); resp.StatusCode != 403 {
		t.Errorf("DELETE off: %d", resp.StatusCode)
	}
}

// TestWebServerPutStreams: a large upload reaches the disk as it arrives,
// not once complete.
func TestWebServerPutStreams(t *testing.T) {
	ts, dir := startWeb(t, "enable_put = true")
	c := testhttp.Dial(t, ts.addrOf("web"))
	const size = 8 << 20
	c.Send(fmt.Sprintf("PUT /big.bin HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n", size))
	chunk := []byte(strings.Repeat("0123456789abcdef", 4096)) // 64 KiB
	sent := 0
	for sent < size/2 {
		c.Send(string(chunk))
		sent += len(chunk)
	}
	testhttp.WaitFor(t, "half the upload on disk", func() bool {
		fi, err := os.Stat(filepath.Join(dir, "big.bin"))
		return err == nil && fi.Size() == int64(sent)
	})
	for sent < size {
		c.Send(string(chunk))
		sent += len(chunk)
	}
	if resp, _ := c.Read("PUT"); resp.StatusCode != 200 {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	if fi, err := os.Stat(filepath.Join(dir, "big.bin")); err != nil || fi.Size() != size {
		t.Fatalf("file: %v %v", fi, err)
	}
}

// TestWebServerPutDisconnect: a client gone mid-upload leaves no temporary
// file when Content-MD5 is checked, and what it sent otherwise (Perlbal).
func TestWebServerPutDisconnect(t *testing.T) {
	ts, dir := startWeb(t, "enable_put = true")
	addr := ts.addrOf("web")
	base := testhttp.FDCount(t)

	c := testhttp.Dial(t, addr)
	c.Send("PUT /md5.txt HTTP/1.1\r\nHost: t\r\nContent-MD5: " + b64md5("0123456789") + "\r\nContent-Length: 10\r\n\r\n01234")
	testhttp.WaitFor(t, "the temporary file", func() bool {
		m, _ := filepath.Glob(filepath.Join(dir, "md5.txt.*.tmp"))
		return len(m) == 1
	})
	c.NC.Close()
	testhttp.WaitFor(t, "the temporary file to go", func() bool {
		m, _ := filepath.Glob(filepath.Join(dir, "md5.txt*"))
		return len(m) == 0
	})

	c = testhttp.Dial(t, addr)
	c.Send("PUT /part.txt HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n")
	testhttp.WaitFor(t, "the partial file", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "part.txt"))
		return err == nil && string(b) == "01234"
	})
	c.NC.Close()
	testhttp.WaitFDs(t, base)
	fileIs(t, filepath.Join(dir, "part.txt"), "01234")
}

// TestWebServerPutTimeout: an upload that stalls is dropped after
// idle_timeout, and its temporary file with it.
func TestWebServerPutTimeout(t *testing.T) {
	ts, dir := startWeb(t, "enable_put = true\nidle_timeout = 1")
	c := testhttp.Dial(t, ts.addrOf("web"))
	c.Send("PUT /slow.txt HTTP/1.1\r\nHost: t\r\nContent-MD5: x\r\nContent-Length: 10\r\n\r\n012")
	start := time.Now()
	c.ExpectClosed()
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("closed after %v", d)
	}
	testhttp.WaitFor(t, "the temporary file to go", func() bool {
		m, _ := filepath.Glob(filepath.Join(dir, "slow.txt*"))
		return len(m) == 0
	})
}

func TestWebServerConcat(t *testing.T) {
	ts, dir := startWeb(t, "enable_concatenate_get = true")
	addr := ts.addrOf("web")
	a, b := strings.Repeat("a", 50)+"\n", strings.Repeat("b", 50)+"\n"
	os.MkdirAll(filepath.Join(dir, "foo/bar"), 0o755)
	big := strings.Repeat("0123456789", 10000) // beyond the inline size
	for name, data := range map[string]string{"foo/a.txt": a, "foo/bar/b.txt": b, "foo/big.js": big} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := testhttp.Dial(t, addr)
	resp, got := c.Do("GET /foo/??a.txt,bar/b.txt,big.js,a.txt HTTP/1.1\r\nHost: t\r\n\r\n")
	if resp.StatusCode != 200 || got != a+b+big+a || resp.Close || resp.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("concat: %d %d bytes close %v type %q", resp.StatusCode, len(got), resp.Close, resp.Header.Get("Content-Type"))
	}
	lm := resp.Header.Get("Last-Modified")
	resp, got = c.Do("GET /foo/??a.txt,bar/b.txt,big.js,a.txt HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: " + lm + "\r\n\r\n")
	if resp.StatusCode != 304 || got != "" || resp.Header.Get("Content-Length") != "" || resp.Close {
		t.Fatalf("304: %d %q CL %q", resp.StatusCode, got, resp.Header.Get("Content-Length"))
	}
	for uri, want := range map[string]int{"/foo??a.txt": 500, "/bogus/??a.txt": 404, "/foo/??a.txt,nope.txt": 404, "/foo/??../x": 403} {
		if resp, _ := c.Do("GET " + uri + " HTTP/1.1\r\nHost: t\r\n\r\n"); resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", uri, resp.StatusCode, want)
		}
	}
	ts.exec("SET web.enable_concatenate_get = 0")
	if resp, _ := c.Do("GET /foo/??a.txt HTTP/1.1\r\nHost: t\r\n\r\n"); resp.StatusCode != 403 {
		t.Errorf("turned off: %d", resp.StatusCode)
	}
}

// TestWebServerRanges is Perlbal's 40-ranges for the web server, on a file
// read inline and on one sent with sendfile.
func TestWebServerRanges(t *testing.T) {
	ts, dir := startWeb(t, "")
	phrase := "foo bar yo this is my content.\n"
	for name, n := range map[string]int{"small.txt": 10, "big.txt": 1000} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Repeat(phrase, n)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := testhttp.Dial(t, ts.addrOf("web"))
	for name, n := range map[string]int{"small.txt": 10, "big.txt": 1000} {
		content := strings.Repeat(phrase, n)
		get := func(rng string) (int, string, string) {
			resp, body := c.Do("GET /" + name + " HTTP/1.0\r\nConnection: keep-alive\r\nRange: " + rng + "\r\n\r\n")
			return resp.StatusCode, body, resp.Header.Get("Content-Range")
		}
		if code, body, cr := get("bytes=0-6"); code != 206 || body != "foo bar" || cr != fmt.Sprintf("bytes 0-6/%d", len(content)) {
			t.Errorf("%s 0-6: %d %q %q", name, code, body, cr)
		}
		if code, body, _ := get(fmt.Sprintf("bytes=%d-", len(phrase))); code != 206 || body != content[len(phrase):] {
			t.Errorf("%s N-: %d %d bytes", name, code, len(body))
		}
		if code, body, _ := get("bytes=-5"); code != 206 || body != content[len(content)-5:] {
			t.Errorf("%s suffix: %d %q", name, code, body)
		}
		if code, _, cr := get(fmt.Sprintf("bytes=%d-", len(content))); code != 416 || cr != fmt.Sprintf("bytes */%d", len(content)) {
			t.Errorf("%s at EOF: %d %q", name, code, cr)
		}
		if code, _, _ := get("bytes=5-1"); code != 416 {
			t.Errorf("%s 5-1: %d", name, code)
		}
	}
}
