package server

// Test helpers: a server fixture built from TOML, scripted backends, a raw
// HTTP client, deterministic payloads and descriptor counting.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	nethttp "net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/http/proxy"
	"github.com/plb/plb/internal/testutil"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 20 * time.Second

// stdProxy are the service keys most proxy tests use.
const stdProxy = `persist_client = true
persist_backend = true
connect_timeout = "1s"
backend_timeout = "5s"
idle_timeout = "10s"
`

// svcKeys returns stdProxy with lines ("key = value") added or replacing
// the line of the same key.
func svcKeys(lines ...string) string {
	var keys []string
	vals := map[string]string{}
	add := func(l string) {
		l = strings.TrimSpace(l)
		if l == "" {
			return
		}
		k := strings.TrimSpace(strings.SplitN(l, "=", 2)[0])
		if _, ok := vals[k]; !ok {
			keys = append(keys, k)
		}
		vals[k] = l
	}
	for _, l := range strings.Split(stdProxy, "\n") {
		add(l)
	}
	for _, l := range lines {
		for _, m := range strings.Split(l, "\n") {
			add(m)
		}
	}
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(vals[k] + "\n")
	}
	return b.String()
}

// testServer is a running Server whose Run ends with the test.
type testServer struct {
	*Server
	t      *testing.T
	done   chan struct{} // closed when Run returned
	runErr error
}

// startServer parses tomlText, applies it and runs the server until the
// test ends.
func startServer(t *testing.T, tomlText string) *testServer {
	t.Helper()
	return startServerOpts(t, tomlText, Options{})
}

func startServerOpts(t *testing.T, tomlText string, o Options) *testServer {
	t.Helper()
	cfg, err := config.Parse("test.toml", []byte(tomlText), nil)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, tomlText)
	}
	s, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(cfg); err != nil {
		s.eng.Stop()
		t.Fatal(err)
	}
	ts := &testServer{Server: s, t: t, done: make(chan struct{})}
	go func() {
		ts.runErr = s.Run(context.Background())
		close(ts.done)
	}()
	t.Cleanup(func() {
		s.Shutdown(false)
		select {
		case <-ts.done:
		case <-time.After(testTimeout):
			t.Error("server did not stop")
		}
	})
	return ts
}

// startProxy runs a reverse_proxy service "proxy" over pool "web" of nodes
// on 2 loops; poolKeys and svcKeys are extra TOML lines.
func startProxy(t *testing.T, nodes []string, poolKeys, svcKeys string) *testServer {
	t.Helper()
	return startServer(t, proxyTOML(nodes, poolKeys, svcKeys))
}

func proxyTOML(nodes []string, poolKeys, svcKeys string) string {
	q := make([]string, len(nodes))
	for i, n := range nodes {
		q[i] = fmt.Sprintf("%q", n)
	}
	return fmt.Sprintf(`[global]
workers = 2

[pool.web]
nodes = [%s]
%s
[service.proxy]
role = "reverse_proxy"
listen = "127.0.0.1:0"
pool = "web"
%s`, strings.Join(q, ", "), poolKeys, svcKeys)
}

// addrOf returns the bound address of a service as "ip:port".
func (ts *testServer) addrOf(name string) string {
	a := ts.Addr(name)
	if a == nil {
		ts.t.Fatalf("service %s not listening", name)
	}
	return a.String()
}

// proxySvc returns the running reverse_proxy service name.
func (ts *testServer) proxySvc(name string) *proxy.Service {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.services[name].run.(proxyRun).Service
}

// ---- scripted backends ----

// request is what a backend received.
type request struct {
	Method, URI string
	Header      nethttp.Header
	Body        []byte
	Conn        int64 // backend connection number, from 1
}

// backend is a scripted TCP backend on 127.0.0.1:0. Each connection runs
// serve on its own goroutine; the backend closes it when serve returns.
type backend struct {
	t     *testing.T
	ln    net.Listener
	addr  string
	serve func(b *backend, c net.Conn, id int64)

	accepted atomic.Int64
	open     atomic.Int64
	closedCh chan int64 // ids of connections as they end (buffered)

	mu    sync.Mutex
	conns map[net.Conn]bool
	reqs  []request
	wg    sync.WaitGroup
}

func newBackend(t *testing.T, serve func(b *backend, c net.Conn, id int64)) *backend {
	t.Helper()
	return newBackendAt(t, "127.0.0.1:0", serve)
}

// newBackendAt is newBackend on a given address.
func newBackendAt(t *testing.T, addr string, serve func(b *backend, c net.Conn, id int64)) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{t: t, ln: ln, addr: ln.Addr().String(), serve: serve,
		closedCh: make(chan int64, 4096), conns: map[net.Conn]bool{}}
	b.wg.Add(1)
	go b.acceptLoop()
	t.Cleanup(b.close)
	return b
}

func (b *backend) acceptLoop() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				time.Sleep(5 * time.Millisecond) // out of descriptors: retry
				continue
			}
			return
		}
		id := b.accepted.Add(1)
		b.open.Add(1)
		b.mu.Lock()
		b.conns[c] = true
		b.mu.Unlock()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.serve(b, c, id)
			c.Close()
			b.mu.Lock()
			delete(b.conns, c)
			b.mu.Unlock()
			b.open.Add(-1)
			select {
			case b.closedCh <- id:
			default:
			}
		}()
	}
}

func (b *backend) close() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(testTimeout):
		b.t.Error("backend goroutines did not end")
	}
}

// requests returns a copy of the requests received so far.
func (b *backend) requests() []request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.reqs)
}

func (b *backend) record(r request) {
	b.mu.Lock()
	b.reqs = append(b.reqs, r)
	b.mu.Unlock()
}

// waitOpen waits until the backend has n open connections.
func (b *backend) waitOpen(t *testing.T, n int64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("backend %s with %d open conns", b.addr, n), func() bool { return b.open.Load() == n })
}

// httpHandler answers one request read by an HTTP backend: it may read
// req.Body and writes the whole response to c. It returns false to close
// the connection.
type httpHandler func(b *backend, c net.Conn, req *nethttp.Request, body []byte) bool

// newHTTPBackend serves HTTP requests (with keep-alive) with h. The request
// body is read before h is called.
func newHTTPBackend(t *testing.T, h httpHandler) *backend {
	return newHTTPBackendAt(t, "127.0.0.1:0", h)
}

func newHTTPBackendAt(t *testing.T, addr string, h httpHandler) *backend {
	return newRequestBackendAt(t, addr, func(b *backend, c net.Conn, br *bufio.Reader, req *nethttp.Request, id int64, n int) bool {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return false
		}
		b.record(request{Method: req.Method, URI: req.RequestURI, Header: req.Header, Body: body, Conn: id})
		return h(b, c, req, body) && !req.Close
	})
}

// requestHandler answers the n-th request (from 0) of backend connection
// id, whose body is left unread in br (a server may answer first, or
// never read it). It returns false to close the connection.
type requestHandler func(b *backend, c net.Conn, br *bufio.Reader, req *nethttp.Request, id int64, n int) bool

// newRequestBackend serves the requests of each connection, one after the
// other, with h.
func newRequestBackend(t *testing.T, h requestHandler) *backend {
	return newRequestBackendAt(t, "127.0.0.1:0", h)
}

func newRequestBackendAt(t *testing.T, addr string, h requestHandler) *backend {
	return newBackendAt(t, addr, func(b *backend, c net.Conn, id int64) {
		br := bufio.NewReader(c)
		for n := 0; ; n++ {
			req, err := nethttp.ReadRequest(br)
			if err != nil || !h(b, c, br, req, id, n) {
				return
			}
		}
	})
}

// respond writes a Content-Length response with body and extra header
// lines (each ending in CRLF).
func respond(c net.Conn, code int, extra, body string) {
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Length: %d\r\n%s\r\n%s", code, nethttp.StatusText(code), len(body), extra, body)
}

// okBackend answers every request 200 with body "name METHOD URI".
func okBackend(t *testing.T, name string) *backend {
	return okBackendAt(t, "127.0.0.1:0", name)
}

func okBackendAt(t *testing.T, addr, name string) *backend {
	return newHTTPBackendAt(t, addr, func(b *backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		respond(c, 200, "X-Backend: "+name+"\r\n", name+" "+req.Method+" "+req.RequestURI)
		return true
	})
}

// echoBackend answers with the request body.
func echoBackend(t *testing.T) *backend {
	return newHTTPBackend(t, func(b *backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		respond(c, 200, "", string(body))
		return true
	})
}

// deadAddr returns a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// ---- client ----

// conn is a raw client connection to a service.
type conn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(testTimeout))
	t.Cleanup(func() { c.Close() })
	return &conn{t: t, c: c, br: bufio.NewReaderSize(c, 64<<10)}
}

func (c *conn) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read reads one response to a request with method, body included.
func (c *conn) read(method string) (*nethttp.Response, string) {
	c.t.Helper()
	resp, err := nethttp.ReadResponse(c.br, &nethttp.Request{Method: method})
	if err != nil {
		c.t.Fatalf("reading response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("reading body: %v", err)
	}
	return resp, string(body)
}

// do sends raw and reads the response (method taken from raw).
func (c *conn) do(raw string) (*nethttp.Response, string) {
	c.t.Helper()
	c.send(raw)
	return c.read(strings.SplitN(raw, " ", 2)[0])
}

// expectClosed checks that the server closes the connection (EOF or reset,
// no more bytes) within the deadline.
func (c *conn) expectClosed() {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var buf [256]byte
	n, err := c.br.Read(buf[:])
	if n > 0 {
		c.t.Fatalf("unexpected bytes after the response: %q", buf[:n])
	}
	if err == nil || isTimeout(err) {
		c.t.Fatalf("connection not closed: %v", err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// get does one GET on a new connection with Connection: close.
func get(t *testing.T, addr, path string) (*nethttp.Response, string) {
	t.Helper()
	c := dial(t, addr)
	defer c.c.Close()
	return c.do("GET " + path + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
}

// mustGet expects a 200 from get.
func mustGet(t *testing.T, addr, path string) string {
	t.Helper()
	resp, body := get(t, addr, path)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %q", path, resp.StatusCode, body)
	}
	return body
}

// ---- payloads ----

// pattern writes n deterministic bytes: 1 MiB random blocks each stamped
// with its index, so a lost, repeated or reordered block changes the hash.
type pattern struct{ block []byte }

func newPattern() *pattern {
	p := &pattern{block: make([]byte, 1<<20)}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < len(p.block); i += 8 {
		binary.LittleEndian.PutUint64(p.block[i:], r.Uint64())
	}
	return p
}

// writeTo writes n bytes to w, hashing them into h, and reports the error.
func (p *pattern) writeTo(w io.Writer, n int64, h hash.Hash) error {
	buf := make([]byte, len(p.block))
	for i := int64(0); n > 0; i++ {
		copy(buf, p.block)
		binary.LittleEndian.PutUint64(buf, uint64(i))
		k := int64(len(buf))
		if k > n {
			k = n
		}
		h.Write(buf[:k])
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// bigBackend answers every request with size pattern bytes by
// Content-Length and stores the sha256 it sent; it notes when it finished
// writing and when the proxy closed the connection.
type bigBackend struct {
	*backend
	size      int64
	sum       chan []byte
	wrote     chan time.Time
	closedAt  chan time.Time
	keepAlive bool
}

func newBigBackend(t *testing.T, size int64) *bigBackend {
	bb := &bigBackend{size: size, sum: make(chan []byte, 16), wrote: make(chan time.Time, 16), closedAt: make(chan time.Time, 16)}
	p := newPattern()
	bb.backend = newBackend(t, func(b *backend, c net.Conn, id int64) {
		br := bufio.NewReader(c)
		for {
			req, err := nethttp.ReadRequest(br)
			if err != nil {
				bb.closedAt <- time.Now()
				return
			}
			io.Copy(io.Discard, req.Body)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: application/octet-stream\r\n\r\n", size)
			h := sha256.New()
			if err := p.writeTo(c, size, h); err != nil {
				return
			}
			bb.sum <- h.Sum(nil)
			bb.wrote <- time.Now()
		}
	})
	return bb
}

// logBuffer is a slog handler target that keeps what was logged.
type logBuffer = testutil.SyncBuffer

// ---- descriptors and polling ----

// fdCount returns the number of open descriptors of this process, less
// directories (the web server keeps its docroot open, and renews that
// handle every second).
func fdCount(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	n := 0
	for _, e := range ents {
		if fi, err := os.Stat("/proc/self/fd/" + e.Name()); err == nil && !fi.IsDir() {
			n++
		}
	}
	return n
}

func fdList() string {
	ents, _ := os.ReadDir("/proc/self/fd")
	var b strings.Builder
	for _, e := range ents {
		l, _ := os.Readlink("/proc/self/fd/" + e.Name())
		fmt.Fprintf(&b, "%s->%s ", e.Name(), l)
	}
	return b.String()
}

// waitFDs waits until the descriptor count is back to at most base.
func waitFDs(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := fdCount(t)
		if n <= base {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("descriptor leak: %d open, %d before: %s", n, base, fdList())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor polls cond every few milliseconds until it holds or the test
// timeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
