package server

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plb/plb/internal/testhttp"
)

func TestWebServer(t *testing.T) {
	dir := t.TempDir()
	data := make([]byte, 3<<20)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<p>home</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, fmt.Sprintf(`[global]
workers = 2

[service.web]
role = "web_server"
listen = "127.0.0.1:0"
docroot = %q
persist_client = true
`, dir))
	addr := ts.addrOf("web")
	base := testhttp.FDCount(t)

	c := testhttp.Dial(t, addr)
	for i := 0; i < 2; i++ {
		resp, body := c.Do("GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
		if resp.StatusCode != 200 || body != string(data) || resp.Close {
			t.Fatalf("GET: %d, %d bytes, close %v", resp.StatusCode, len(body), resp.Close)
		}
	}
	resp, body := c.Do("GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=100-199\r\n\r\n")
	if resp.StatusCode != 206 || body != string(data[100:200]) || !strings.HasPrefix(resp.Header.Get("Content-Range"), "bytes 100-199/") {
		t.Fatalf("range: %d, %d bytes, Content-Range %q", resp.StatusCode, len(body), resp.Header.Get("Content-Range"))
	}
	resp, body = c.Do("GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=-10\r\n\r\n")
	if resp.StatusCode != 206 || body != string(data[len(data)-10:]) {
		t.Fatalf("suffix range: %d %q", resp.StatusCode, body)
	}
	lm := resp.Header.Get("Last-Modified")
	if lm == "" {
		t.Fatal("no Last-Modified")
	}
	resp, body = c.Do("GET /big.bin HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: " + lm + "\r\n\r\n")
	if resp.StatusCode != 304 || body != "" {
		t.Fatalf("If-Modified-Since: %d, %d bytes", resp.StatusCode, len(body))
	}
	resp, body = c.Do("HEAD /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
	if resp.StatusCode != 200 || body != "" || resp.ContentLength != int64(len(data)) {
		t.Fatalf("HEAD: %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	resp, body = c.Do("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
	if resp.StatusCode != 200 || body != "<p>home</p>" {
		t.Fatalf("index: %d %q", resp.StatusCode, body)
	}
	if resp, _ := c.Do("GET /missing HTTP/1.1\r\nHost: t\r\n\r\n"); resp.StatusCode != 404 {
		t.Fatalf("missing: %d", resp.StatusCode)
	}
	if resp, _ := c.Do("GET /../etc/passwd HTTP/1.1\r\nHost: t\r\n\r\n"); resp.StatusCode < 400 {
		t.Fatalf("path outside the docroot: %d", resp.StatusCode)
	}

	// Pipelined file requests come back whole and in order.
	c.Send("GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\nGET /index.html HTTP/1.1\r\nHost: t\r\n\r\nGET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=0-4\r\n\r\n")
	if _, body := c.Read("GET"); body != string(data) {
		t.Fatalf("pipelined 1: %d bytes", len(body))
	}
	if _, body := c.Read("GET"); body != "<p>home</p>" {
		t.Fatalf("pipelined 2: %q", body)
	}
	if _, body := c.Read("GET"); body != string(data[:5]) {
		t.Fatalf("pipelined 3: %q", body)
	}

	resp, _ = c.Do("GET /index.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
	if !resp.Close {
		t.Fatal("Connection: close not honoured")
	}
	c.ExpectClosed()
	c.NC.Close()
	testhttp.WaitFDs(t, base)
}
