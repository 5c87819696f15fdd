package server

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkWebServerKeepAlive measures one static GET of a 100-byte file
// over a kept-alive connection (1 loop): the web server's hot path, open,
// fstat, read and the one write included. allocs/op counts the whole
// process, the benchmark's client too (allocation-free after warm-up).
func BenchmarkWebServerKeepAlive(b *testing.B) {
	dir := b.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "static"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "static", "100b.txt"), bytes.Repeat([]byte("x"), 100), 0o644); err != nil {
		b.Fatal(err)
	}
	s := benchServer(b, fmt.Sprintf(`[global]
workers = 1
[service.web]
role = "web_server"
listen = "127.0.0.1:0"
docroot = %q
persist_client = true
`, dir))
	c, err := net.Dial("tcp", s.Addr("web").String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	benchRoundTrips(b, c, "/static/100b.txt", 100)
}
