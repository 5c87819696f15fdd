package server

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/plb/plb/internal/testhttp"
)

// h2Backend is Go's net/http server speaking HTTP/2 on loopback: h2c
// (prior knowledge), or h2 over TLS when tlsConf is set. It counts the
// connections it accepted.
type h2Backend struct {
	addr  string
	conns atomic.Int64
	mu    sync.Mutex
	seen  []string // "proto method path" of each request
}

func startH2Backend(t *testing.T, tlsConf *tls.Config, h nethttp.Handler) *h2Backend {
	t.Helper()
	b := &h2Backend{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = ln.Addr().String()
	wrapped := nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		b.mu.Lock()
		b.seen = append(b.seen, r.Proto+" "+r.Method+" "+r.RequestURI)
		b.mu.Unlock()
		h.ServeHTTP(w, r)
	})
	srv := &nethttp.Server{ConnState: func(_ net.Conn, s nethttp.ConnState) {
		if s == nethttp.StateNew {
			b.conns.Add(1)
		}
	}}
	h2s := &http2.Server{MaxConcurrentStreams: 50}
	if tlsConf != nil {
		srv.Handler = wrapped
		srv.TLSConfig = tlsConf
		if err := http2.ConfigureServer(srv, h2s); err != nil {
			t.Fatal(err)
		}
		go srv.ServeTLS(ln, "", "")
	} else {
		srv.Handler = h2c.NewHandler(wrapped, h2s)
		go srv.Serve(ln)
	}
	t.Cleanup(func() { srv.Close() })
	return b
}

func (b *h2Backend) requests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.seen...)
}

// echoH2 answers with the request's protocol, method, target, body length
// and a trailer, flushing the head first so that the body goes chunked.
func echoH2(w nethttp.ResponseWriter, r *nethttp.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Trailer", "X-Sum")
	w.Header().Set("X-Host", r.Host)
	w.WriteHeader(200)
	fmt.Fprintf(w, "%s %s %s %d", r.Proto, r.Method, r.RequestURI, len(body))
	w.Header().Set("X-Sum", strconv.Itoa(len(body)))
}

// TestH2CBackendCurl: backend_protocol h2c in front of Go's net/http
// h2c server: HTTP/1.1 and HTTP/2 clients' GETs and uploads (with a
// length, and chunked) reach it as HTTP/2 requests, answers and trailers
// come back, and twenty requests at once share one connection.
func TestH2CBackendCurl(t *testing.T) {
	be := startH2Backend(t, nil, nethttp.HandlerFunc(echoH2))
	ts := startProxy(t, []string{be.addr}, "", testhttp.ServiceKeys(`backend_protocol = "h2c"`, "http2 = true"))
	addr := ts.addrOf("proxy")
	if out := curl(t, "-H", "Host: h.test", "http://"+addr+"/a?x=1"); out != "HTTP/2.0 GET /a?x=1 0" {
		t.Fatalf("HTTP/1.1 GET: %q", out)
	}
	if out := curl(t, "--http2-prior-knowledge", "http://"+addr+"/b"); out != "HTTP/2.0 GET /b 0" {
		t.Fatalf("h2c GET: %q", out)
	}
	upload := filepath.Join(t.TempDir(), "up")
	if err := os.WriteFile(upload, bytes.Repeat([]byte("u"), 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, extra := range [][]string{{"--data-binary", "@" + upload}, {"-H", "Transfer-Encoding: chunked", "--data-binary", "@" + upload}, {"--http2-prior-knowledge", "--data-binary", "@" + upload}} {
		out := curl(t, append(extra, "http://"+addr+"/up")...)
		if want := "HTTP/2.0 POST /up " + strconv.Itoa(1<<20); out != want {
			t.Fatalf("upload %q: %q, want %q", extra, out, want)
		}
	}
	// The trailer reaches an HTTP/1.1 client in the chunked body.
	raw := rawHTTP(t, addr, "GET /t HTTP/1.1\r\nHost: h.test\r\nTE: trailers\r\nConnection: close\r\n\r\n")
	if !strings.Contains(raw, "Transfer-Encoding: chunked") && !strings.Contains(raw, "transfer-encoding: chunked") || !strings.Contains(raw, "x-sum: 0\r\n") {
		t.Fatalf("chunked answer with its trailer:\n%s", raw)
	}
	if !strings.Contains(raw, "x-host: h.test") {
		t.Fatalf("the Host became :authority:\n%s", raw)
	}
	before := be.conns.Load()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			resp, err := nethttp.Get(fmt.Sprintf("http://%s/c%d", addr, i))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if want := fmt.Sprintf("HTTP/2.0 GET /c%d 0", i); string(b) != want {
				errs <- fmt.Errorf("%q, want %q", b, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Two loops: at most a connection each (and one more while one
	// connects and another is needed).
	if n := be.conns.Load(); n > 4 {
		t.Errorf("%d connections to the backend (%d before the 20 requests): streams were not multiplexed", n, before)
	}
}

// rawHTTP sends req on a new connection and returns all it reads.
func rawHTTP(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, req)
	b, _ := io.ReadAll(c)
	return string(b)
}
