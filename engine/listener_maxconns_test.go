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

// TestEngineClientCap: SetMaxClients caps the clients of all listeners
// together; an Exempt listener (the console) is neither counted nor
// refused; a closed client frees its place.
func TestEngineClientCap(t *testing.T) {
	e := startEngine(t, 2)
	e.SetMaxClients(2)
	listen := func(exempt bool) *Listener {
		ln, err := e.Listen(ListenConfig{Addr: "127.0.0.1:0", Exempt: exempt, OnAccept: func(c *Conn) Handler { return echoHandler() }})
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	one, two, console := listen(false), listen(false), listen(true)
	served := func(ln *Listener) (net.Conn, bool) {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		nc.Write([]byte("x"))
		_, err = io.ReadFull(nc, make([]byte, 1))
		return nc, err == nil
	}
	a, ok1 := served(one)
	_, ok2 := served(two)
	if !ok1 || !ok2 {
		t.Fatal("clients under the cap refused")
	}
	if _, ok := served(one); ok {
		t.Fatal("a third client over two listeners served with SetMaxClients(2)")
	}
	if _, ok := served(two); ok {
		t.Fatal("a third client served on the other listener")
	}
	if _, ok := served(console); !ok {
		t.Fatal("the exempt listener's client refused at the engine's cap")
	}
	if n := e.Clients(); n != 2 {
		t.Fatalf("Clients() = %d, want 2 (the exempt one not counted)", n)
	}
	a.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := served(two); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no client served after one closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
