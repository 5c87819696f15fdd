package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/plb/plb/config"
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
	cfg, err := config.Parse("bench.toml", []byte(fmt.Sprintf(`[global]
workers = 1
[service.web]
role = "web_server"
listen = "127.0.0.1:0"
docroot = %q
persist_client = true
`, dir)), nil)
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Apply(cfg); err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Run(context.Background()); close(done) }()
	defer func() { s.Shutdown(false); <-done }()

	c, err := net.Dial("tcp", s.Addr("web").String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /static/100b.txt HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	buf := make([]byte, 4096)
	roundTrip := func() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		have := 0
		for {
			n, err := c.Read(buf[have:])
			if err != nil && err != io.EOF {
				b.Fatal(err)
			}
			have += n
			if i := bytes.Index(buf[:have], []byte("\r\n\r\n")); i >= 0 && have >= i+4+100 {
				return
			}
			if n == 0 {
				b.Fatal("connection closed")
			}
		}
	}
	for i := 0; i < 100; i++ {
		roundTrip()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		roundTrip()
	}
}
