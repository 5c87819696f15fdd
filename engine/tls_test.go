package engine

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testCert returns a self-signed certificate for 127.0.0.1 and names, and
// a pool that trusts it.
func testCert(t testing.TB, names ...string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "plb test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              names,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// tlsPair returns a server config and a client config that trusts it.
func tlsPair(t testing.TB) (*tls.Config, *tls.Config) {
	cert, pool := testCert(t)
	return &tls.Config{Certificates: []tls.Certificate{cert}}, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

// tlsListen listens with a TLS handler made by mk.
func tlsListen(t testing.TB, e *Engine, cfg *tls.Config, mk func() Handler) *Listener {
	t.Helper()
	ln, err := e.Listen(ListenConfig{Addr: "127.0.0.1:0", OnAccept: func(c *Conn) Handler {
		c.StartTLS(cfg, nil)
		return mk()
	}})
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func tlsDial(t testing.TB, addr string, cfg *tls.Config) *tls.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	tc := tls.Client(nc, cfg)
	t.Cleanup(func() { tc.Close() })
	return tc
}

// TestTLSEcho: large payloads both ways through the record layer on the
// loop, several clients at once, and the client's close_notify seen as an
// EOF.
func TestTLSEcho(t *testing.T) {
	e := startEngine(t, 2)
	srv, cli := tlsPair(t)
	eofs := make(chan bool, 8)
	ln := tlsListen(t, e, srv, func() Handler {
		return &funcHandler{
			data: func(c *Conn, p []byte) int { c.Write(p); return len(p) },
			eof:  func(c *Conn) { eofs <- true; c.Close() },
		}
	})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tc := tlsDial(t, ln.Addr().String(), cli)
			msg := make([]byte, 700<<10)
			rand.Read(msg)
			go func() {
				tc.Write(msg)
				tc.CloseWrite()
			}()
			got, err := io.ReadAll(tc)
			if err != nil {
				t.Error(err)
				return
			}
			if !bytes.Equal(got, msg) {
				t.Errorf("echo mismatch: %d bytes back of %d", len(got), len(msg))
			}
		}()
	}
	wg.Wait()
	for i := 0; i < 8; i++ {
		select {
		case <-eofs:
		case <-time.After(5 * time.Second):
			t.Fatal("no OnEOF after close_notify")
		}
	}
}

// TestTLSWriteBeforeHandshake: what the handler writes in OnOpen (before
// the handshake completed) arrives first, then a file (read and
// encrypted, not sendfile), then bytes written behind the file, then
// close_notify (the client reads io.EOF, not an error).
func TestTLSWriteBeforeHandshake(t *testing.T) {
	e := startEngine(t, 1)
	srv, cli := tlsPair(t)
	data := make([]byte, 5<<20+123)
	rand.Read(data)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ln := tlsListen(t, e, srv, func() Handler {
		return &funcHandler{open: func(c *Conn) {
			c.Write([]byte("head:"))
			f, err := os.Open(path)
			if err != nil {
				t.Error(err)
				c.Close()
				return
			}
			c.SendFile(f, 0, int64(len(data)), true)
			c.Write2([]byte(":tail"), []byte("!"))
			c.Close()
		}}
	})
	tc := tlsDial(t, ln.Addr().String(), cli)
	got, err := io.ReadAll(tc)
	if err != nil {
		t.Fatalf("read: %v (after %d bytes)", err, len(got))
	}
	want := append(append([]byte("head:"), data...), ":tail!"...)
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d", len(got), len(want))
	}
}

// TestTLSSendFileFlowControl: a client that does not read holds the file
// encryption at the high-water mark instead of filling memory.
func TestTLSSendFileFlowControl(t *testing.T) {
	e := runEngine(t, Config{Loops: 1, Tick: 10 * time.Millisecond, HighWater: 64 << 10})
	srv, cli := tlsPair(t)
	data := make([]byte, 16<<20)
	rand.Read(data)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var maxQueued atomic.Int64
	var conn atomic.Pointer[Conn]
	ln := tlsListen(t, e, srv, func() Handler {
		return &funcHandler{open: func(c *Conn) {
			conn.Store(c)
			f, _ := os.Open(path)
			c.SendFile(f, 0, int64(len(data)), true)
			c.Close()
		}}
	})
	tc := tlsDial(t, ln.Addr().String(), cli)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	// Sample the queue while the client sleeps.
	for i := 0; i < 20; i++ {
		time.Sleep(10 * time.Millisecond)
		e.RunAll(func(l *Loop) {
			if c := conn.Load(); c != nil && c.Loop() == l && !c.Closed() {
				if m := int64(c.out.mem); m > maxQueued.Load() {
					maxQueued.Store(m)
				}
			}
		})
	}
	if m := maxQueued.Load(); m > 64<<10+64<<10 {
		t.Errorf("queued %d bytes of ciphertext for a client that does not read", m)
	}
	h := sha256.New()
	n, err := io.Copy(h, tc)
	if err != nil || n != int64(len(data)) {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("content differs")
	}
}

// TestTLSGarbage: bytes that are not a ClientHello close that connection
// (after the reply StartTLS's notTLS gives, here to a plain HTTP request,
// in clear); others go on.
func TestTLSGarbage(t *testing.T) {
	e := startEngine(t, 1)
	srv, cli := tlsPair(t)
	closed := make(chan error, 4)
	notTLS := func(first []byte) []byte {
		if string(first) == "GET /" {
			return []byte("HTTP/1.0 400 Bad Request\r\n\r\n")
		}
		return nil
	}
	ln, err := e.Listen(ListenConfig{Addr: "127.0.0.1:0", OnAccept: func(c *Conn) Handler {
		c.StartTLS(srv, notTLS)
		return &funcHandler{
			data:   func(c *Conn, p []byte) int { c.Write(p); return len(p) },
			closed: func(c *Conn, err error) { closed <- err },
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	good := tlsDial(t, ln.Addr().String(), cli)
	if _, err := good.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(good, buf); err != nil {
		t.Fatal(err)
	}

	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	nc.Write([]byte("\x00\x01garbage garbage garbage\r\n\r\n"))
	if b, err := io.ReadAll(nc); len(b) != 0 {
		t.Errorf("garbage got %q (%v)", b, err)
	}
	if err := <-closed; err == nil || !strings.Contains(err.Error(), "TLS handshake") {
		t.Errorf("OnClose error: %v", err)
	}

	hc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	hc.SetDeadline(time.Now().Add(5 * time.Second))
	hc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	if b, _ := io.ReadAll(hc); !bytes.HasPrefix(b, []byte("HTTP/1.0 400 ")) {
		t.Errorf("plain HTTP got %q", b)
	}
	<-closed

	// The good connection still works.
	if _, err := good.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(good, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("%q %v", buf, err)
	}
}

// TestTLSHandshakeTimeout: a client that connects and says nothing is not
// held forever by the handshake (the handler's own timeout fires first
// here, as a proxy's header timeout would).
func TestTLSSilentClient(t *testing.T) {
	e := startEngine(t, 1)
	srv, _ := tlsPair(t)
	closed := make(chan error, 1)
	ln := tlsListen(t, e, srv, func() Handler {
		return &funcHandler{
			open:   func(c *Conn) { c.SetTimeout(100 * time.Millisecond) },
			closed: func(c *Conn, err error) { closed <- err },
		}
	})
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	select {
	case err := <-closed:
		if !errors.Is(err, ErrTimeout) {
			t.Errorf("closed with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("silent client not closed")
	}
}

// TestTLSClient: a dialed connection with StartTLSClient gets OnOpen once
// the handshake is done and talks to a crypto/tls server; a server whose
// certificate is not trusted fails the dial (OnClose with the error, no
// OnOpen).
func TestTLSClient(t *testing.T) {
	e := startEngine(t, 1)
	srvCfg, cliCfg := tlsPair(t)
	tl, err := tls.Listen("tcp", "127.0.0.1:0", srvCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	addr := netip.MustParseAddrPort(tl.Addr().String())

	type result struct {
		opened bool
		got    string
		err    error
	}
	dial := func(cfg *tls.Config) result {
		res := make(chan result, 1)
		var r result
		var buf []byte
		h := &funcHandler{
			open: func(c *Conn) {
				r.opened = true
				if st, ok := c.TLSConnectionState(); !ok || !st.HandshakeComplete {
					t.Error("no TLS state in OnOpen")
				}
				c.Write2([]byte("hello "), []byte("backend"))
			},
			data: func(c *Conn, p []byte) int {
				buf = append(buf, p...)
				if len(buf) >= len("hello backend") {
					c.Close()
				}
				return len(p)
			},
			closed: func(c *Conn, err error) {
				r.got, r.err = string(buf), err
				res <- r
			},
		}
		e.Loops()[0].Run(func() {
			c, err := e.Loops()[0].Dial(addr, h, 5*time.Second)
			if err != nil {
				res <- result{err: err}
				return
			}
			c.StartTLSClient(cfg)
		})
		select {
		case r := <-res:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("dial did not end")
		}
		return result{}
	}
	if r := dial(cliCfg); !r.opened || r.got != "hello backend" || r.err != nil {
		t.Errorf("trusted: %+v", r)
	}
	untrusted := &tls.Config{ServerName: "127.0.0.1", RootCAs: x509.NewCertPool()}
	if r := dial(untrusted); r.opened || r.err == nil || !strings.Contains(r.err.Error(), "certificate") {
		t.Errorf("untrusted: %+v", r)
	}
}

// TestTLSPauseResume: a handler that pauses reading mid-stream gets the
// rest (records already read and not yet decrypted) after ResumeRead.
func TestTLSPauseResume(t *testing.T) {
	e := startEngine(t, 1)
	srv, cli := tlsPair(t)
	var total int
	ln := tlsListen(t, e, srv, func() Handler {
		return &funcHandler{data: func(c *Conn, p []byte) int {
			n := min(len(p), 1000)
			total += n
			c.PauseRead()
			c.Loop().AfterFunc(time.Millisecond, func() {
				c.ResumeRead()
			})
			if total == 200000 {
				c.Write([]byte("done"))
			}
			return n
		}}
	})
	tc := tlsDial(t, ln.Addr().String(), cli)
	go tc.Write(make([]byte, 200000))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(tc, buf); err != nil || string(buf) != "done" {
		t.Fatalf("%q %v", buf, err)
	}
}

// BenchmarkTLSEcho measures one 100-byte request and reply over a TLS
// connection (1 loop): decryption on the loop, OnData, encryption into
// the output queue. allocs/op counts the whole process, the benchmark's
// crypto/tls client too.
func BenchmarkTLSEcho(b *testing.B) {
	e := runEngine(b, Config{Loops: 1})
	srv, cli := tlsPair(b)
	ln := tlsListen(b, e, srv, echoHandler)
	tc := tlsDial(b, ln.Addr().String(), cli)
	msg := make([]byte, 100)
	buf := make([]byte, 100)
	round := func() {
		if _, err := tc.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(tc, buf); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < 100; i++ {
		round()
	}
	tc.SetDeadline(time.Time{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		round()
	}
}

// BenchmarkTLSDownload measures 1 MiB written by the handler and read by a
// TLS client: encryption and the output queue.
func BenchmarkTLSDownload(b *testing.B) {
	e := runEngine(b, Config{Loops: 1})
	srv, cli := tlsPair(b)
	chunk := make([]byte, 64<<10)
	ln := tlsListen(b, e, srv, func() Handler {
		left := 0
		var h *funcHandler
		h = &funcHandler{
			data: func(c *Conn, p []byte) int {
				left = 1 << 20
				h.drain(c)
				return len(p)
			},
			drain: func(c *Conn) {
				for left > 0 && !c.Full() {
					n := min(left, len(chunk))
					c.Write(chunk[:n])
					left -= n
				}
			},
		}
		return h
	})
	tc := tlsDial(b, ln.Addr().String(), cli)
	tc.SetDeadline(time.Time{})
	buf := make([]byte, 1<<20)
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tc.Write([]byte("g"))
		if _, err := io.ReadFull(tc, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// TestTLSHandshakeOffLoop: handshakes run off the loop. Each one here
// takes 300ms in GetCertificate (a stand-in for slow crypto); while ten
// are in progress a plain connection on the same (single) loop is
// answered at once.
func TestTLSHandshakeOffLoop(t *testing.T) {
	e := startEngine(t, 1)
	cert, pool := testCert(t)
	slow := &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		time.Sleep(300 * time.Millisecond)
		return &cert, nil
	}}
	ln := tlsListen(t, e, slow, echoHandler)
	plainLn, err := e.Listen(ListenConfig{Addr: "127.0.0.1:0", OnAccept: func(c *Conn) Handler { return echoHandler() }})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tc := tlsDial(t, ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
			if err := tc.Handshake(); err != nil {
				t.Error(err)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond) // the handshakes are under way
	nc, err := net.Dial("tcp", plainLn.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	var worst time.Duration
	buf := make([]byte, 1)
	for i := 0; i < 20; i++ {
		t0 := time.Now()
		nc.Write([]byte{'x'})
		if _, err := io.ReadFull(nc, buf); err != nil {
			t.Fatal(err)
		}
		worst = max(worst, time.Since(t0))
	}
	wg.Wait()
	if worst > 100*time.Millisecond {
		t.Errorf("plain echo took %v while handshakes ran", worst)
	}
}

// TestTLSHalfClose: CloseWrite sends close_notify (the client reads a
// clean EOF after the data) and reading goes on; a peer that shuts its
// write side without close_notify is an EOF too.
func TestTLSHalfClose(t *testing.T) {
	e := startEngine(t, 1)
	srv, cli := tlsPair(t)
	var got []byte
	done := make(chan string, 2)
	ln := tlsListen(t, e, srv, func() Handler {
		return &funcHandler{
			data: func(c *Conn, p []byte) int {
				got = append(got, p...)
				if string(got) == "ask" {
					c.Write([]byte("answer"))
					c.CloseWrite()
				}
				return len(p)
			},
			eof: func(c *Conn) {
				done <- string(got)
				got = nil
				c.Close()
			},
		}
	})
	// close_notify both ways.
	tc := tlsDial(t, ln.Addr().String(), cli)
	tc.Write([]byte("ask"))
	b, err := io.ReadAll(tc)
	if err != nil || string(b) != "answer" {
		t.Fatalf("read %q, %v (want a clean EOF after the answer)", b, err)
	}
	tc.Write([]byte(" more")) // the server still reads
	tc.CloseWrite()
	if s := <-done; s != "ask more" {
		t.Fatalf("server read %q", s)
	}
	// A FIN without close_notify.
	tc2 := tlsDial(t, ln.Addr().String(), cli)
	tc2.Write([]byte("bare"))
	tc2.NetConn().(*net.TCPConn).CloseWrite()
	select {
	case s := <-done:
		if s != "bare" {
			t.Fatalf("server read %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no OnEOF after a FIN without close_notify")
	}
}
