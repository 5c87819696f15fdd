package engine

import (
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestMaxConns: at the cap a new client is refused cleanly (accepted and
// closed at once: EOF, no reset) while the open connections go on, and a
// client is served again as soon as one of them closed.
func TestMaxConns(t *testing.T) {
	e := startEngine(t, 2)
	var accepted atomic.Int64
	ln, err := e.Listen(ListenConfig{Addr: "127.0.0.1:0", MaxConns: 2, OnAccept: func(c *Conn) Handler {
		accepted.Add(1)
		return echoHandler()
	}})
	if err != nil {
		t.Fatal(err)
	}
	echo := func(nc net.Conn, msg string) error {
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := nc.Write([]byte(msg)); err != nil {
			return err
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(nc, buf); err != nil {
			return err
		}
		if string(buf) != msg {
			return fmt.Errorf("echo %q, want %q", buf, msg)
		}
		return nil
	}
	dial := func() net.Conn {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		return nc
	}
	a, b := dial(), dial()
	for _, nc := range []net.Conn{a, b} {
		if err := echo(nc, "hi"); err != nil {
			t.Fatal(err)
		}
	}
	// The third learns at once, even having sent a request already.
	c := dial()
	c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := c.Read(make([]byte, 16)); err != io.EOF {
		t.Fatalf("third connection at MaxConns 2: read %d, %v; want EOF", n, err)
	}
	if n := accepted.Load(); n != 2 || ln.Refused() != 1 {
		t.Fatalf("accepted %d, refused %d; want 2, 1", n, ln.Refused())
	}
	for _, nc := range []net.Conn{a, b} {
		if err := echo(nc, "still"); err != nil {
			t.Fatalf("open connection disturbed by a refusal: %v", err)
		}
	}
	a.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		d := dial()
		err := echo(d, "again")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no client served after one closed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
