package server

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/plb/plb/internal/testhttp"
)

// rawH2 is a scripted h2c backend: for each connection, it sends SETTINGS
// and calls script with a framer once per request HEADERS received.
type rawH2 struct {
	ln    net.Listener
	addr  string
	mu    sync.Mutex
	conns int
}

type h2req struct {
	fr     *http2.Framer
	id     uint32
	path   string
	connNo int
	wmu    *sync.Mutex
}

func (r *h2req) headers(end bool, kv ...string) {
	var b bytes.Buffer
	e := hpack.NewEncoder(&b)
	for i := 0; i < len(kv); i += 2 {
		e.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: r.id, BlockFragment: b.Bytes(), EndHeaders: true, EndStream: end})
}
func (r *h2req) data(end bool, p string) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.fr.WriteData(r.id, end, []byte(p))
}
func (r *h2req) rst(code http2.ErrCode) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.fr.WriteRSTStream(r.id, code)
}
func (r *h2req) goaway(last uint32) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.fr.WriteGoAway(last, http2.ErrCodeNo, nil)
}

func startRawH2(t *testing.T, settings []http2.Setting, script func(r *h2req)) *rawH2 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &rawH2{ln: ln, addr: ln.Addr().String()}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns++
			no := b.conns
			b.mu.Unlock()
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				pre := make([]byte, len(http2.ClientPreface))
				if _, err := io.ReadFull(br, pre); err != nil {
					return
				}
				fr := http2.NewFramer(c, br)
				wmu := &sync.Mutex{}
				wmu.Lock()
				fr.WriteSettings(settings...)
				wmu.Unlock()
				dec := hpack.NewDecoder(4096, nil)
				for {
					f, err := fr.ReadFrame()
					if err != nil {
						return
					}
					switch f := f.(type) {
					case *http2.SettingsFrame:
						if !f.IsAck() {
							wmu.Lock()
							fr.WriteSettingsAck()
							wmu.Unlock()
						}
					case *http2.HeadersFrame:
						fs, _ := dec.DecodeFull(f.HeaderBlockFragment())
						path := ""
						for _, h := range fs {
							if h.Name == ":path" {
								path = h.Value
							}
						}
						if path == "" {
							continue // trailers
						}
						go script(&h2req{fr: fr, id: f.StreamID, path: path, connNo: no, wmu: wmu})
					}
				}
			}()
		}
	}()
	return b
}

func rawGet(t *testing.T, addr, path string, to time.Duration) (string, time.Duration) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.SetDeadline(time.Now().Add(to))
	io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, err := nethttp.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "ERR " + err.Error(), time.Since(start)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.Status + " " + string(body), time.Since(start)
}

// TestH2BackendDataBeforeHead: DATA before a response head is the
// node's protocol error: its client gets a 502, and nothing of that
// stream (an HTTP/1.1 response of the node's making in its bytes) reaches
// the next client on the exchange.
func TestH2BackendDataBeforeHead(t *testing.T) {
	be := startRawH2(t, nil, func(r *h2req) {
		if r.path == "/alice" {
			r.data(false, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
			time.Sleep(700 * time.Millisecond)
			r.data(true, "HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\nforged-for-bob!")
			return
		}
		r.headers(true, ":status", "204")
	})
	ts := startH2CProxy(t, be.addr)
	addr := ts.addrOf("proxy")
	a, _ := rawGet(t, addr, "/alice", 5*time.Second)
	t.Logf("alice got %q", a)
	time.Sleep(100 * time.Millisecond)
	b, _ := rawGet(t, addr, "/bob", 5*time.Second)
	t.Logf("bob got %q", b)
	if !strings.HasPrefix(a, "502 ") {
		t.Errorf("alice's answer, DATA before any head: %q, want a 502", a)
	}
	if strings.Contains(b, "forged") {
		t.Errorf("bob's response is a part of alice's stream: %q", b)
	}
}

// TestH2BackendLateEndStream: a response whose length is all there, its
// END_STREAM two seconds later: the exchange is done with its last byte,
// and the next client on it does not wait for the end of the stream.
func TestH2BackendLateEndStream(t *testing.T) {
	be := startRawH2(t, nil, func(r *h2req) {
		if r.path == "/a" {
			r.headers(false, ":status", "200", "content-length", "5")
			r.data(false, "hello")
			time.Sleep(2 * time.Second)
			r.data(true, "")
			return
		}
		r.headers(false, ":status", "200", "content-length", "2")
		r.data(true, "ok")
	})
	ts := startH2CProxy(t, be.addr)
	addr := ts.addrOf("proxy")
	a, da := rawGet(t, addr, "/a", 5*time.Second)
	t.Logf("a: %q in %v", a, da)
	b, db := rawGet(t, addr, "/b", 5*time.Second)
	t.Logf("b: %q in %v", b, db)
	if db > time.Second {
		t.Errorf("client b waited %v for another client's stream to end", db)
	}
}

// TestH2BackendLateReset: the same, the stream reset after its body: the
// next client on the exchange does not hear of it.
func TestH2BackendLateReset(t *testing.T) {
	be := startRawH2(t, nil, func(r *h2req) {
		if r.path == "/a" {
			r.headers(false, ":status", "200", "content-length", "5")
			r.data(false, "hello")
			time.Sleep(500 * time.Millisecond)
			r.rst(http2.ErrCodeInternal)
			return
		}
		r.headers(false, ":status", "200", "content-length", "2")
		r.data(true, "ok")
	})
	ts := startH2CProxy(t, be.addr, "retries = 0")
	addr := ts.addrOf("proxy")
	a, _ := rawGet(t, addr, "/a", 5*time.Second)
	t.Logf("a: %q", a)
	// b: a POST on the reused pair
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	postOK(t, c, bufio.NewReader(c), "/b", "a POST after an earlier client's stream was reset")
}

// postOK sends a small POST of path on c and wants a 200 back.
func postOK(t *testing.T, c io.Writer, br *bufio.Reader, path, what string) {
	t.Helper()
	io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")
	resp, err := nethttp.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("%s: %s %q", what, resp.Status, body)
	}
}

// TestH2BackendHeadContentLength: a HEAD answered with a content-length
// and END_STREAM on an empty DATA frame later (RFC 9113 8.1.1 allows it)
// is a complete answer, and the request after it on the exchange gets
// its own.
func TestH2BackendHeadContentLength(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	be := startRawH2(t, nil, func(r *h2req) {
		mu.Lock()
		seen = append(seen, r.path)
		mu.Unlock()
		if r.path == "/h" {
			r.headers(false, ":status", "200", "content-length", "10")
			time.Sleep(200 * time.Millisecond)
			r.data(true, "")
			return
		}
		r.headers(false, ":status", "200", "content-length", "2")
		r.data(true, "ok")
	})
	ts := startH2CProxy(t, be.addr, "retries = 0")
	addr := ts.addrOf("proxy")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "HEAD /h HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := nethttp.ReadResponse(br, &nethttp.Request{Method: "HEAD"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("HEAD: %s", resp.Status)
	// The same client at once: a POST on the same exchange.
	postOK(t, c, br, "/p", "a POST after a HEAD with a length")
}

// TestH2BackendSlowReadersShareWindow: clients that do not read their
// large answers hold their streams' windows, not the connection's: a
// small answer on the same connection still comes at once.
func TestH2BackendSlowReadersShareWindow(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 8<<20)
	be := startH2Backend(t, nil, nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		if r.URL.Path == "/big" {
			w.Write(big)
			return
		}
		io.WriteString(w, "small")
	}))
	ts := startH2CProxy(t, be.addr, `buffer_dir_size = "1"`, `backend_timeout = "20s"`, `idle_timeout = "30s"`)
	addr := ts.addrOf("proxy")
	for i := 0; i < 24; i++ {
		c, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(mustAP(addr)))
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadBuffer(4096)
		defer c.Close()
		io.WriteString(c, "GET /big HTTP/1.1\r\nHost: h\r\n\r\n")
	}
	time.Sleep(time.Second)
	out, d := rawGet(t, addr, "/small", 8*time.Second)
	t.Logf("small: %q after %v; backend conns %d", out, d, be.conns.Load())
	if d > 2*time.Second {
		t.Errorf("a small response stalled behind slow readers: %v", d)
	}
}

func mustAP(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// TestH2BackendGoAwayThenDialFails: a connection that got GOAWAY still
// carries a long stream, and the connection dialed for the next request
// fails: that request fails at once (503), it does not wait for the old
// connection to end.
func TestH2BackendGoAwayThenDialFails(t *testing.T) {
	var be *rawH2
	be = startRawH2(t, nil, func(r *h2req) {
		if r.path == "/long" {
			r.headers(false, ":status", "200")
			r.data(false, "part")
			r.goaway(r.id)
			be.ln.Close() // the node restarts: no new connection is accepted
			time.Sleep(30 * time.Second)
			return
		}
		r.headers(true, ":status", "204")
	})
	ts := startH2CProxy(t, be.addr, `idle_timeout = "30s"`)
	addr := ts.addrOf("proxy")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /long HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(500 * time.Millisecond)
	out, d := rawGet(t, addr, "/x", 8*time.Second)
	t.Logf("x: %q after %v", out, d)
	if d > 3*time.Second {
		t.Errorf("the request hung: %v", d)
	}
}

// TestH2BackendInterimFlood: interim heads have no flow control; a
// node's flood of 103s, a few bytes each with HPACK, to a client that does
// not read is cut (the stream reset past 8), not piled up in memory.
func TestH2BackendInterimFlood(t *testing.T) {
	be := startRawH2(t, nil, func(r *h2req) {
		var b bytes.Buffer
		e := hpack.NewEncoder(&b)
		e.WriteField(hpack.HeaderField{Name: ":status", Value: "103"})
		e.WriteField(hpack.HeaderField{Name: "link", Value: strings.Repeat("a", 3000)})
		r.wmu.Lock()
		r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: r.id, BlockFragment: b.Bytes(), EndHeaders: true})
		b.Reset()
		e.WriteField(hpack.HeaderField{Name: ":status", Value: "103"})
		e.WriteField(hpack.HeaderField{Name: "link", Value: strings.Repeat("a", 3000)})
		small := append([]byte(nil), b.Bytes()...)
		t.Logf("each further 103 is %d bytes of block", len(small))
		for i := 0; i < 40000; i++ {
			if r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: r.id, BlockFragment: small, EndHeaders: true}) != nil {
				break
			}
		}
		r.wmu.Unlock()
	})
	ts := startH2CProxy(t, be.addr)
	addr := ts.addrOf("proxy")
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	c, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(mustAP(addr)))
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadBuffer(4096)
	defer c.Close()
	io.WriteString(c, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(3 * time.Second)
	runtime.GC()
	runtime.ReadMemStats(&ms)
	grew := (int64(ms.HeapAlloc) - int64(before)) >> 20
	if grew > 32 {
		t.Errorf("heap grew by %d MB for one response's 1xx heads", grew)
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, err := io.Copy(io.Discard, c)
	t.Logf("client read %d bytes, %v", n, err)
}

// TestH2BackendTLSMultiplexed: backend_protocol h2 verifying the node's
// IP (no backend_ssl_server_name, so each dial makes the handshake's own
// config): 30 requests at once still share the node's connections.
func TestH2BackendTLSMultiplexed(t *testing.T) {
	ca := newTestCA(t)
	certFile, keyFile, _ := ca.issue("b", false, "b.test")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	good := startH2Backend(t, &tls.Config{Certificates: []tls.Certificate{cert}}, nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		<-release
		io.WriteString(w, "ok")
	}))
	keys := testhttp.ServiceKeys(`backend_protocol = "h2"`, fmt.Sprintf("backend_ssl_ca_file = %q", ca.pem))
	ts := startServer(t, testhttp.OneLoop(testhttp.ProxyTOML([]string{good.addr}, "", keys)))
	addr := ts.addrOf("proxy")
	var wg sync.WaitGroup
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rawGet(t, addr, "/", 10*time.Second)
		}()
	}
	time.Sleep(time.Second)
	t.Logf("backend TLS connections for 30 concurrent requests: %d", good.conns.Load())
	close(release)
	wg.Wait()
	if good.conns.Load() > 9 {
		t.Errorf("%d connections: above MaxConns 8, streams not multiplexed", good.conns.Load())
	}
}

// TestH2BackendEarlyResponseWindowClosed: a complete answer while the
// exchange holds the rest of the request body for the node's window
// (closed): the exchange closes after it, and the next client's request
// is not sent into it.
func TestH2BackendEarlyResponseWindowClosed(t *testing.T) {
	be := startRawH2(t, []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 0}}, func(r *h2req) {
		if r.path == "/up" {
			time.Sleep(500 * time.Millisecond)
			r.headers(false, ":status", "200", "content-length", "2")
			r.data(true, "ok")
			return
		}
		r.headers(false, ":status", "200", "content-length", "3")
		r.data(true, "bob")
	})
	ts := startH2CProxy(t, be.addr, `backend_timeout = "4s"`)
	addr := ts.addrOf("proxy")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	const n = 160 << 10
	io.WriteString(c, fmt.Sprintf("POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n", n))
	c.Write(bytes.Repeat([]byte("u"), n))
	resp, err := nethttp.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	t.Logf("alice: %s %q", resp.Status, body)
	out, d := rawGet(t, addr, "/b", 8*time.Second)
	t.Logf("bob: %q after %v", out, d)
	if !strings.HasSuffix(out, "bob") {
		t.Errorf("bob's request went to a dead exchange: %q after %v", out, d)
	}
}

// TestH2BackendRoleHeadLimits: a request plb accepts (199 fields, under
// the client side's 200) is served over h2c too, though the role adds
// fields of its own before the exchange reads it; and a 103 carrying a
// content-length says nothing of the final response's body.
func TestH2BackendRoleHeadLimits(t *testing.T) {
	h2be := startH2Backend(t, nil, nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) { io.WriteString(w, "ok") }))
	var b strings.Builder
	b.WriteString("GET /many HTTP/1.1\r\nHost: h\r\n")
	for i := range 198 {
		fmt.Fprintf(&b, "X-F%d: v\r\n", i)
	}
	b.WriteString("Connection: close\r\n\r\n")
	if out := rawHTTP(t, startH2CProxy(t, h2be.addr).addrOf("proxy"), b.String()); !strings.HasPrefix(out, "HTTP/1.1 200 ") {
		t.Fatalf("a 199-field request over h2c: %.200q", out)
	}

	be := startRawH2(t, nil, func(r *h2req) {
		switch r.path {
		case "/zero":
			r.headers(false, ":status", "103", "content-length", "0", "link", "</s.css>; rel=preload")
		case "/three":
			r.headers(false, ":status", "103", "content-length", "3")
		}
		r.headers(false, ":status", "200")
		r.data(false, "hel")
		r.data(true, "lo")
	})
	addr := startH2CProxy(t, be.addr, `idle_timeout = "2s"`, "retries = 0").addrOf("proxy")
	for _, p := range []string{"/plain", "/zero", "/three"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(4 * time.Second))
		io.WriteString(c, "GET "+p+" HTTP/1.1\r\nHost: h\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := nethttp.ReadResponse(br, nil)
		for err == nil && resp.StatusCode < 200 {
			resp, err = nethttp.ReadResponse(br, nil)
		}
		var body []byte
		if err == nil {
			body, err = io.ReadAll(resp.Body)
		}
		c.Close()
		if err != nil || string(body) != "hello" {
			t.Errorf("%s after a 103 with a length: %q %v", p, body, err)
		}
	}
}
