// Package testhttp is what the HTTP tests of several packages share:
// scripted backends on loopback, a raw HTTP client, deterministic
// payloads, descriptor counting, and the TOML of a reverse proxy over a
// pool. Nothing here is used outside tests.
package testhttp

import (
	"bufio"
	"bytes"
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
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/plb/plb/internal/testutil"
)

// Timeout bounds every wait of these helpers (and of the tests using
// them).
const Timeout = 20 * time.Second

// StdProxy are the service keys most proxy tests use.
const StdProxy = `persist_client = true
persist_backend = true
connect_timeout = "1s"
backend_timeout = "5s"
idle_timeout = "10s"
`

// ServiceKeys returns StdProxy with lines ("key = value") added or replacing
// the line of the same key.
func ServiceKeys(lines ...string) string {
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
	for _, l := range strings.Split(StdProxy, "\n") {
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

// ProxyTOML is the configuration of a reverse_proxy service "proxy" on
// 127.0.0.1:0 over pool "web" of nodes, on 2 loops; poolKeys and svcKeys
// are extra TOML lines of the pool and the service.
func ProxyTOML(nodes []string, poolKeys, svcKeys string) string {
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

// OneLoop makes a ProxyTOML configuration run on one event loop, so that
// a test's connections share one loop's idle backend connections.
func OneLoop(toml string) string { return strings.Replace(toml, "workers = 2", "workers = 1", 1) }

// ---- scripted backends ----

// Request is what a backend received.
type Request struct {
	Method, URI string
	Header      nethttp.Header
	Body        []byte
	Conn        int64 // backend connection number, from 1
}

// Backend is a scripted TCP backend on 127.0.0.1:0. Each connection runs
// serve on its own goroutine; the Backend closes it when serve returns.
type Backend struct {
	t     *testing.T
	ln    net.Listener
	Addr  string
	serve func(b *Backend, c net.Conn, id int64)

	Accepted  atomic.Int64
	Open      atomic.Int64
	ClosedIDs chan int64 // ids of connections as they end (buffered)

	mu    sync.Mutex
	conns map[net.Conn]bool
	reqs  []Request
	wg    sync.WaitGroup
}

// NewBackend starts a Backend on 127.0.0.1:0, closed when the test ends.
func NewBackend(t *testing.T, serve func(b *Backend, c net.Conn, id int64)) *Backend {
	t.Helper()
	return NewBackendAt(t, "127.0.0.1:0", serve)
}

// NewBackendAt is NewBackend on a given address.
func NewBackendAt(t *testing.T, addr string, serve func(b *Backend, c net.Conn, id int64)) *Backend {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	b := &Backend{t: t, ln: ln, Addr: ln.Addr().String(), serve: serve,
		ClosedIDs: make(chan int64, 4096), conns: map[net.Conn]bool{}}
	b.wg.Add(1)
	go b.acceptLoop()
	t.Cleanup(b.close)
	return b
}

func (b *Backend) acceptLoop() {
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
		id := b.Accepted.Add(1)
		b.Open.Add(1)
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
			b.Open.Add(-1)
			select {
			case b.ClosedIDs <- id:
			default:
			}
		}()
	}
}

func (b *Backend) close() {
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
	case <-time.After(Timeout):
		b.t.Error("backend goroutines did not end")
	}
}

// Kill makes b die as a killed process does: its port refuses and its
// connections are reset.
func (b *Backend) Kill() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
	b.mu.Unlock()
}

// Requests returns a copy of the requests received so far.
func (b *Backend) Requests() []Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.reqs)
}

func (b *Backend) Record(r Request) {
	b.mu.Lock()
	b.reqs = append(b.reqs, r)
	b.mu.Unlock()
}

// WaitOpen waits until the backend has n open connections.
func (b *Backend) WaitOpen(t *testing.T, n int64) {
	t.Helper()
	WaitFor(t, fmt.Sprintf("backend %s with %d open conns", b.Addr, n), func() bool { return b.Open.Load() == n })
}

// HTTPHandler answers one request read by an HTTP backend: it may read
// req.Body and writes the whole response to c. It returns false to close
// the connection.
type HTTPHandler func(b *Backend, c net.Conn, req *nethttp.Request, body []byte) bool

// NewHTTPBackend serves HTTP requests (with keep-alive) with h. The request
// body is read before h is called.
func NewHTTPBackend(t *testing.T, h HTTPHandler) *Backend {
	return NewHTTPBackendAt(t, "127.0.0.1:0", h)
}

func NewHTTPBackendAt(t *testing.T, addr string, h HTTPHandler) *Backend {
	return NewRequestBackendAt(t, addr, func(b *Backend, c net.Conn, br *bufio.Reader, req *nethttp.Request, id int64, n int) bool {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return false
		}
		b.Record(Request{Method: req.Method, URI: req.RequestURI, Header: req.Header, Body: body, Conn: id})
		return h(b, c, req, body) && !req.Close
	})
}

// RequestHandler answers the n-th request (from 0) of backend connection
// id, whose body is left unread in br (a server may answer first, or
// never read it). It returns false to close the connection.
type RequestHandler func(b *Backend, c net.Conn, br *bufio.Reader, req *nethttp.Request, id int64, n int) bool

// NewRequestBackend serves the requests of each connection, one after the
// other, with h.
func NewRequestBackend(t *testing.T, h RequestHandler) *Backend {
	return NewRequestBackendAt(t, "127.0.0.1:0", h)
}

func NewRequestBackendAt(t *testing.T, addr string, h RequestHandler) *Backend {
	return NewBackendAt(t, addr, func(b *Backend, c net.Conn, id int64) {
		br := bufio.NewReader(c)
		for n := 0; ; n++ {
			req, err := nethttp.ReadRequest(br)
			if err != nil || !h(b, c, br, req, id, n) {
				return
			}
		}
	})
}

// Respond writes a Content-Length response with body and extra header
// lines (each ending in CRLF).
func Respond(c net.Conn, code int, extra, body string) {
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Length: %d\r\n%s\r\n%s", code, nethttp.StatusText(code), len(body), extra, body)
}

// OKBackend answers every request 200 with body "name METHOD URI".
func OKBackend(t *testing.T, name string) *Backend {
	return OKBackendAt(t, "127.0.0.1:0", name)
}

func OKBackendAt(t *testing.T, addr, name string) *Backend {
	return NewHTTPBackendAt(t, addr, func(b *Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		Respond(c, 200, "X-Backend: "+name+"\r\n", name+" "+req.Method+" "+req.RequestURI)
		return true
	})
}

// HoldBackend answers "NAME PATH" (the path without the query) on kept
// connections, holding a request for hold until release is closed: a
// request in flight the test controls.
func HoldBackend(t *testing.T, name, hold string) (b *Backend, release chan struct{}) {
	release = make(chan struct{})
	b = NewHTTPBackend(t, func(b *Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		if req.URL.Path == hold {
			<-release
		}
		Respond(c, 200, "", name+" "+req.URL.Path)
		return true
	})
	return b, release
}

// EchoBackend answers with the request body.
func EchoBackend(t *testing.T) *Backend {
	return NewHTTPBackend(t, func(b *Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		Respond(c, 200, "", string(body))
		return true
	})
}

// DeadAddr returns a loopback address where nothing listens, as
// "ip:port".
func DeadAddr(t *testing.T) string {
	t.Helper()
	return testutil.ClosedAddr(t).String()
}

// Leak is the body of the response an attacker tries to make a backend
// send unasked: whoever reads it got a response that was not theirs.
const Leak = "LEAKED-PAGE Set-Cookie: session=another-users-secret"

// LeakResponse is that response, complete and keep-alive.
var LeakResponse = fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(Leak), Leak)

// Misbehave writes a response to an attacker's request that leaves bytes
// behind on the connection, in one write or two; it returns false to
// close the connection.
type Misbehave func(c net.Conn, br *bufio.Reader, req *nethttp.Request) bool

// DirtyBackend answers /victim* with "victim N" and hands /evil* to m. It
// reads requests with ReadRequest and leaves an unread body where it was,
// as a server that answers before reading would.
func DirtyBackend(t *testing.T, m Misbehave) *Backend {
	return NewRequestBackend(t, func(b *Backend, c net.Conn, br *bufio.Reader, req *nethttp.Request, id int64, n int) bool {
		if strings.HasPrefix(req.URL.Path, "/evil") {
			return m(c, br, req)
		}
		io.Copy(io.Discard, req.Body)
		Respond(c, 200, "", "victim "+req.URL.Path)
		return true
	})
}

// FlakyNode is a backend that answers "name METHOD path body"; when
// flaky, it resets the connection on /reset and never answers /hang.
func FlakyNode(t *testing.T, name string, flaky bool) *Backend {
	return NewHTTPBackend(t, func(b *Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		if flaky {
			switch req.URL.Path {
			case "/reset":
				c.(*net.TCPConn).SetLinger(0)
				return false
			case "/hang":
				io.Copy(io.Discard, c)
				return false
			}
		}
		Respond(c, 200, "", name+" "+req.Method+" "+req.URL.Path+" "+string(body))
		return true
	})
}

// ---- client ----

// Client is a raw client connection to a service.
type Client struct {
	t  *testing.T
	NC net.Conn
	BR *bufio.Reader
}

// Dial connects a Client to addr, with the deadline Timeout, closed when
// the test ends.
func Dial(t *testing.T, addr string) *Client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(Timeout))
	t.Cleanup(func() { c.Close() })
	return NewClient(t, c)
}

// NewClient is a Client on a connection the test made (a TLS one, one
// dialed with its own timeout); the test sets its deadlines and closes it.
func NewClient(t *testing.T, nc net.Conn) *Client {
	return &Client{t: t, NC: nc, BR: bufio.NewReaderSize(nc, 64<<10)}
}

func (c *Client) Send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.NC, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// Read reads one response to a request with method, body included.
func (c *Client) Read(method string) (*nethttp.Response, string) {
	c.t.Helper()
	resp, err := nethttp.ReadResponse(c.BR, &nethttp.Request{Method: method})
	if err != nil {
		c.t.Fatalf("reading response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("reading body: %v", err)
	}
	return resp, string(body)
}

// Do sends raw and reads the response (method taken from raw).
func (c *Client) Do(raw string) (*nethttp.Response, string) {
	c.t.Helper()
	c.Send(raw)
	return c.Read(strings.SplitN(raw, " ", 2)[0])
}

// ExpectClosed checks that the server closes the connection (EOF or reset,
// no more bytes) within the deadline.
func (c *Client) ExpectClosed() {
	c.t.Helper()
	c.NC.SetReadDeadline(time.Now().Add(5 * time.Second))
	var buf [256]byte
	n, err := c.BR.Read(buf[:])
	if n > 0 {
		c.t.Fatalf("unexpected bytes after the response: %q", buf[:n])
	}
	if err == nil || IsTimeout(err) {
		c.t.Fatalf("connection not closed: %v", err)
	}
}

// DialQuiet dials addr for a goroutine that must not call t.Fatal (nil on
// error), with the deadline Timeout.
func DialQuiet(addr string) net.Conn {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil
	}
	c.SetDeadline(time.Now().Add(Timeout))
	return c
}

// IsTimeout reports whether err is a network timeout.
func IsTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// Status sends raw on a new connection and returns the response's
// status and body.
func Status(t *testing.T, addr, raw string) (int, string) {
	t.Helper()
	c := Dial(t, addr)
	defer c.NC.Close()
	resp, body := c.Do(raw)
	return resp.StatusCode, body
}

// GrepLines returns the lines of s that contain sub.
func GrepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Get does one GET on a new connection with Connection: close.
func Get(t *testing.T, addr, path string) (*nethttp.Response, string) {
	t.Helper()
	c := Dial(t, addr)
	defer c.NC.Close()
	return c.Do("GET " + path + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
}

// MustGet expects a 200 from Get.
func MustGet(t *testing.T, addr, path string) string {
	t.Helper()
	resp, body := Get(t, addr, path)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %q", path, resp.StatusCode, body)
	}
	return body
}

// ---- payloads ----

// Pattern writes n deterministic bytes: 1 MiB random blocks each stamped
// with its index, so a lost, repeated or reordered block changes the hash.
type Pattern struct{ block []byte }

func NewPattern() *Pattern {
	p := &Pattern{block: make([]byte, 1<<20)}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < len(p.block); i += 8 {
		binary.LittleEndian.PutUint64(p.block[i:], r.Uint64())
	}
	return p
}

// Emit writes n bytes to w, hashing them into h, and reports the error.
func (p *Pattern) Emit(w io.Writer, n int64, h hash.Hash) error {
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

// BigBackend answers every request with size pattern bytes by
// Content-Length and stores the sha256 it sent; it notes when it finished
// writing and when the proxy closed the connection.
type BigBackend struct {
	*Backend
	size     int64
	Sum      chan []byte
	Wrote    chan time.Time
	ClosedAt chan time.Time
}

func NewBigBackend(t *testing.T, size int64) *BigBackend {
	bb := &BigBackend{size: size, Sum: make(chan []byte, 16), Wrote: make(chan time.Time, 16), ClosedAt: make(chan time.Time, 16)}
	p := NewPattern()
	bb.Backend = NewBackend(t, func(b *Backend, c net.Conn, id int64) {
		br := bufio.NewReader(c)
		for {
			req, err := nethttp.ReadRequest(br)
			if err != nil {
				bb.ClosedAt <- time.Now()
				return
			}
			io.Copy(io.Discard, req.Body)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: application/octet-stream\r\n\r\n", size)
			h := sha256.New()
			if err := p.Emit(c, size, h); err != nil {
				return
			}
			bb.Sum <- h.Sum(nil)
			bb.Wrote <- time.Now()
		}
	})
	return bb
}

// CheckBody reads body to its end and checks that it is the size bytes
// the backend sent last (their sha256, Sum), no more, no fewer.
func (bb *BigBackend) CheckBody(t *testing.T, body io.Reader) {
	t.Helper()
	h := sha256.New()
	if n, err := io.Copy(h, body); err != nil || n != bb.size {
		t.Fatalf("read %d of %d bytes: %v", n, bb.size, err)
	}
	bb.CheckSum(t, h.Sum(nil))
}

// CheckSum checks that sum is the sha256 of what the backend sent last.
func (bb *BigBackend) CheckSum(t *testing.T, sum []byte) {
	t.Helper()
	if want := <-bb.Sum; !bytes.Equal(sum, want) {
		t.Fatal("response body differs from what the backend sent")
	}
}

// ---- descriptors and polling ----

// FDCount returns the number of open descriptors of this process, less
// directories (the web server keeps its docroot open, and renews that
// handle every second).
func FDCount(t *testing.T) int {
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

// WaitFDs waits until the descriptor count is back to at most base.
func WaitFDs(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := FDCount(t)
		if n <= base {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("descriptor leak: %d open, %d before: %s", n, base, fdList())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitFor polls cond every few milliseconds until it holds or the test
// timeout passes.
func WaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Browser returns the path of a headless-capable Chromium, skipping the
// test when there is none (failing it under CI, whose .ci/run installs
// one).
func Browser(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (apt-get install chromium)")
	}
	t.Skip("chromium is not installed (apt-get install chromium)")
	return ""
}

// Load sends GET url from workers goroutines, one request at a time each
// on a new connection, until stop is closed (at most limit requests in
// all), and counts those answered 200 (with body want, when want is not
// "") and the others. wait waits for the workers and returns the counts.
func Load(url, want string, workers, limit int, stop <-chan struct{}) (wait func() (ok, failed int64)) {
	var wg sync.WaitGroup
	var okN, failN, sent atomic.Int64
	client := &nethttp.Client{Timeout: 10 * time.Second, Transport: &nethttp.Transport{DisableKeepAlives: true}}
	for range workers {
		wg.Go(func() {
			for sent.Add(1) <= int64(limit) {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(url)
				if err != nil {
					failN.Add(1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || want != "" && string(b) != want {
					failN.Add(1)
				} else {
					okN.Add(1)
				}
			}
		})
	}
	return func() (int64, int64) { wg.Wait(); return okN.Load(), failN.Load() }
}
