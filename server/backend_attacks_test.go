package server

// Attacks on backend connection reuse found by review (issue 11): each
// failed before its fix. The leak matrix itself is in
// backend_conns_test.go.

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	nethttp "net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plb/plb/internal/testhttp"
)

// delayConn delays the first read (the TLS ClientHello), so that a TLS
// handshake takes a while.
type delayConn struct {
	net.Conn
	once  sync.Once
	delay time.Duration
}

func (d *delayConn) Read(p []byte) (int, error) {
	d.once.Do(func() { time.Sleep(d.delay) })
	return d.Conn.Read(p)
}

// delayListener: the first connection's handshake takes 400 ms (the
// client's own), the others' 100 ms (the connect_ahead spare).
type delayListener struct {
	net.Listener
	n *atomic.Int64
}

func (l delayListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	d := 100 * time.Millisecond
	if l.n.Add(1) == 1 {
		d = 400 * time.Millisecond
	}
	return &delayConn{Conn: c, delay: d}, nil
}

// TestTLSSpareNotTakenForUnasked: backend_ssl + connect_ahead +
// max_backend_conns. A spare connection whose handshake completes while a
// client is queued is handed over by handOff, which asks Conn.Quiet; right
// after the handshake the engine's TLS state may hold records (session
// tickets): that must not count as bytes unasked, which would cost a
// well-behaved node its connection reuse for 60 s.
func TestTLSSpareNotTakenForUnasked(t *testing.T) {
	hts := httptest.NewUnstartedServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		fmt.Fprintf(w, "tls %s", r.URL.Path)
	}))
	hts.Listener = delayListener{hts.Listener, new(atomic.Int64)}
	hts.StartTLS()
	defer hts.Close()
	node := strings.TrimPrefix(hts.URL, "https://")
	var logs logBuffer
	ts := startServerOpts(t, testhttp.OneLoop(testhttp.ProxyTOML([]string{node}, "server_retry = 100",
		testhttp.ServiceKeys("backend_ssl = true", "backend_ssl_verify = false", "connect_ahead = 1", "max_backend_conns = 2"))),
		Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	addr := ts.addrOf("proxy")
	a := testhttp.Dial(t, addr)
	a.Send("GET /a HTTP/1.1\r\nHost: t\r\n\r\n") // dials, and connect_ahead dials a spare
	time.Sleep(50 * time.Millisecond)
	b := testhttp.Dial(t, addr)
	b.Send("GET /b HTTP/1.1\r\nHost: t\r\n\r\n") // at max_backend_conns: queued
	for _, c := range []*testhttp.Client{a, b} {
		if resp, body := c.Read("GET"); resp.StatusCode != 200 {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	}
	n := ts.Pool("web").Nodes()[0]
	if n.ReuseSuspended(time.Now()) {
		t.Fatalf("a well-behaved TLS node lost connection reuse; log:\n%s", testhttp.GrepLines(logs.String(), "unasked"))
	}
}

func TestTLS12SpareNotTakenForUnasked(t *testing.T) {
	hts := httptest.NewUnstartedServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		fmt.Fprintf(w, "tls %s", r.URL.Path)
	}))
	hts.Listener = delayListener{hts.Listener, new(atomic.Int64)}
	hts.TLS = &tls.Config{MaxVersion: tls.VersionTLS12, SessionTicketsDisabled: true}
	hts.StartTLS()
	defer hts.Close()
	node := strings.TrimPrefix(hts.URL, "https://")
	ts := startServer(t, testhttp.OneLoop(testhttp.ProxyTOML([]string{node}, "server_retry = 100",
		testhttp.ServiceKeys("backend_ssl = true", "backend_ssl_verify = false", "connect_ahead = 1", "max_backend_conns = 2"))))
	addr := ts.addrOf("proxy")
	a := testhttp.Dial(t, addr)
	a.Send("GET /a HTTP/1.1\r\nHost: t\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	b := testhttp.Dial(t, addr)
	b.Send("GET /b HTTP/1.1\r\nHost: t\r\n\r\n")
	for _, c := range []*testhttp.Client{a, b} {
		if resp, body := c.Read("GET"); resp.StatusCode != 200 {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	}
	if ts.Pool("web").Nodes()[0].ReuseSuspended(time.Now()) {
		t.Fatal("TLS 1.2, no tickets: a well-behaved TLS node lost connection reuse")
	}
}

// TestReproxyFetchNotReusedAfterHEAD: the reproxy fetch pool does not
// reuse a connection after a response with no body by rule: a storage
// server that sends a body on HEAD 3 ms after the head would hand it to
// the next client whose URL goes to the same host. (The main pool cools
// such connections instead: TestUnaskedBytesSeenBeforeReuse.)
func TestReproxyFetchNotReusedAfterHEAD(t *testing.T) {
	fetch := testhttp.DirtyBackend(t, func(c net.Conn, br *bufio.Reader, req *nethttp.Request) bool {
		io.WriteString(c, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: keep-alive\r\n\r\n", len(testhttp.LeakResponse)))
		time.Sleep(3 * time.Millisecond)
		io.WriteString(c, testhttp.LeakResponse) // a body on HEAD, in its own segment
		return true
	})
	rb := newReproxyBackend(t)
	ts := startServer(t, testhttp.OneLoop(reproxyTOML(rb.Addr, t.TempDir(), "", "")))
	addr := ts.addrOf("proxy")
	url := "url:http://" + fetch.Addr
	attacker := testhttp.Dial(t, addr)
	if resp, _ := attacker.Do("HEAD /" + url + "/evil HTTP/1.1\r\nHost: h\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatalf("attacker: %d", resp.StatusCode)
	}
	victim := testhttp.Dial(t, addr)
	resp, body := victim.Do("GET /" + url + "/victim HTTP/1.1\r\nHost: h\r\n\r\n")
	if body != "victim /victim" {
		t.Fatalf("victim asked for /victim and got %d %q", resp.StatusCode, body)
	}
}
