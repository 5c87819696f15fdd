package server

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/plb/plb/internal/testhttp"
)

// TestAccessLog: a reverse proxy and a web server write one combined line
// per request (error pages and 404s included); SIGUSR1's ReopenLogs moves
// writing to a new file after a rename; an access_log that cannot be
// opened refuses the configuration.
func TestAccessLog(t *testing.T) {
	a := testhttp.OKBackend(t, "a")
	dir := t.TempDir()
	plog, wlog := filepath.Join(dir, "proxy.log"), filepath.Join(dir, "web.log")
	docroot := webRoot(t, map[string]string{"f.txt": "hello"})
	ts := startServer(t, testhttp.ProxyTOML([]string{a.Addr}, "", fmt.Sprintf("access_log = %q\n", plog))+
		fmt.Sprintf("\n[service.files]\nrole = \"web_server\"\nlisten = \"127.0.0.1:0\"\ndocroot = %q\naccess_log = %q\n", docroot, wlog))
	c := testhttp.Dial(t, ts.addrOf("proxy"))
	if _, body := c.Do("GET /x?y=1 HTTP/1.1\r\nHost: h\r\nReferer: http://r/\r\nUser-Agent: tester/1\r\n\r\n"); body != "a GET /x?y=1" {
		t.Fatal(body)
	}
	c2 := testhttp.Dial(t, ts.addrOf("proxy"))
	c2.Send("GET / HTTP/1.1\r\nHost: h\r\nno colon here\r\n\r\n")
	if resp, _ := c2.Read("GET"); resp.StatusCode != 400 {
		t.Fatalf("bad request: %d", resp.StatusCode)
	}
	testhttp.MustGet(t, ts.addrOf("files"), "/f.txt")
	testhttp.Get(t, ts.addrOf("files"), "/missing")

	line := `^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] `
	waitLines := func(path string, want ...string) {
		t.Helper()
		var got string
		testhttp.WaitFor(t, path+" lines", func() bool {
			b, _ := os.ReadFile(path)
			got = string(b)
			return strings.Count(got, "\n") >= len(want)
		})
		lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
		for i, w := range want {
			if !regexp.MustCompile(line + w + "$").MatchString(lines[i]) {
				t.Errorf("%s line %d: %q, want %q", path, i, lines[i], w)
			}
		}
	}
	waitLines(plog,
		regexp.QuoteMeta(`"GET /x?y=1 HTTP/1.1" 200 12 "http://r/" "tester/1"`),
		regexp.QuoteMeta(`"-" 400 `)+`\d+`+regexp.QuoteMeta(` "-" "-"`))
	waitLines(wlog,
		regexp.QuoteMeta(`"GET /f.txt HTTP/1.1" 200 5 "-" "-"`),
		regexp.QuoteMeta(`"GET /missing HTTP/1.1" 404 `)+`\d+`+regexp.QuoteMeta(` "-" "-"`))

	// Rotation: rename, reopen, the next line goes to a new file.
	if err := os.Rename(wlog, wlog+".1"); err != nil {
		t.Fatal(err)
	}
	if err := ts.ReopenLogs(); err != nil {
		t.Fatal(err)
	}
	testhttp.MustGet(t, ts.addrOf("files"), "/f.txt?after")
	waitLines(wlog, regexp.QuoteMeta(`"GET /f.txt?after HTTP/1.1" 200 5 "-" "-"`))

	// A log that cannot be opened: the change is refused, nothing changes.
	cfg := ts.Config().Clone()
	cfg.Service("files").AccessLog = filepath.Join(dir, "no", "such", "dir.log")
	if err := ts.Apply(cfg); err == nil || !strings.Contains(err.Error(), "access_log") {
		t.Fatalf("bad access_log: %v", err)
	}
	testhttp.MustGet(t, ts.addrOf("files"), "/f.txt")
}
