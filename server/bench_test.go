package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/plb/plb/config"
)

// BenchmarkProxyKeepAlive measures one proxied request/response of 100
// bytes over a kept-alive client connection and a persistent backend
// connection (1 loop): the proxy's hot path, syscalls included. allocs/op
// counts the whole process, the benchmark's own client and backend too
// (both allocation-free after warm-up).
func BenchmarkProxyKeepAlive(b *testing.B) {
	s := benchServer(b, benchProxyTOML(fixedBackend(b), ""))
	c, err := net.Dial("tcp", s.Addr("proxy").String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	benchRoundTrips(b, c, "/x", 100)
}

// benchProxyTOML is a reverse proxy "proxy" with persistent client and
// backend connections over pool "web" of backend (1 loop), plus the
// service keys extra.
func benchProxyTOML(backend, extra string) string {
	return fmt.Sprintf(`[global]
workers = 1
[pool.web]
nodes = [%q]
[service.proxy]
role = "reverse_proxy"
listen = "127.0.0.1:0"
pool = "web"
persist_client = true
persist_backend = true
%s`, backend, extra)
}

// fixedBackend is a backend answering every request with 100 bytes; it
// returns its address.
func fixedBackend(b testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go serveFixed(ln, []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n"+strings.Repeat("x", 100)))
	return ln.Addr().String()
}

// benchServer runs a server of the TOML configuration until the
// benchmark ends.
func benchServer(b *testing.B, tomlText string) *Server {
	cfg, err := config.Parse("bench.toml", []byte(tomlText), nil)
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
	b.Cleanup(func() { s.Shutdown(false); <-done })
	return s
}

// benchRoundTrips measures GETs of path, each answered with a body of
// bodyLen bytes, over c: 100 to warm up, then b.N timed.
func benchRoundTrips(b *testing.B, c io.ReadWriter, path string, bodyLen int) {
	benchRoundTripsWith(b, c, path, "", bodyLen)
}

// benchRoundTripsWith is benchRoundTrips with extra header lines in each
// request ("Name: value\r\n" each; "" none).
func benchRoundTripsWith(b *testing.B, c io.ReadWriter, path, extra string, bodyLen int) {
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n" + extra + "\r\n")
	buf := make([]byte, 4096)
	roundTrip := func() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		// Read until the head and the body are in.
		have := 0
		for {
			n, err := c.Read(buf[have:])
			if err != nil && err != io.EOF {
				b.Fatal(err)
			}
			have += n
			if i := bytes.Index(buf[:have], []byte("\r\n\r\n")); i >= 0 && have >= i+4+bodyLen {
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

// serveFixed answers every request head on every connection with resp.
func serveFixed(ln net.Listener, resp []byte) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 64<<10)
			have := 0
			for {
				n, err := c.Read(buf[have:])
				if err != nil {
					return
				}
				have += n
				for {
					i := bytes.Index(buf[:have], []byte("\r\n\r\n"))
					if i < 0 {
						break
					}
					c.Write(resp)
					copy(buf, buf[i+4:have])
					have -= i + 4
				}
			}
		}()
	}
}
