package engine

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// queuedFIN accepts one connection on e, paused, has a client send msg
// and half-close, then resumes reading: the first read sees the bytes
// with EPOLLRDHUP. h handles the accepted conn; the client is returned.
func queuedFIN(t *testing.T, e *Engine, msg string, h *funcHandler) net.Conn {
	t.Helper()
	accepted := make(chan *Conn, 1)
	open := h.open
	h.open = func(c *Conn) {
		c.PauseRead()
		if open != nil {
			open(c)
		}
		accepted <- c
	}
	ln, err := e.Listen(ListenConfig{Addr: "127.0.0.1:0", OnAccept: func(*Conn) Handler { return h }})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if err := nc.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var c *Conn
	select {
	case c = <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("not accepted")
	}
	time.Sleep(20 * time.Millisecond) // the bytes and the FIN are queued
	c.Loop().Run(c.ResumeRead)
	return nc
}

// TestEOFBehindData: bytes followed by the peer's FIN come as OnData, then
// one OnEOF; what the handler writes meanwhile and its close reach the peer.
func TestEOFBehindData(t *testing.T) {
	e := startEngine(t, 1)
	var mu sync.Mutex
	var events []string
	note := func(s string) { mu.Lock(); events = append(events, s); mu.Unlock() }
	nc := queuedFIN(t, e, "hello", &funcHandler{
		data: func(c *Conn, p []byte) int { note("data " + string(p)); c.Write(p); return len(p) },
		eof:  func(c *Conn) { note("eof"); c.Write([]byte(" bye")); c.Close() },
	})
	got, err := io.ReadAll(nc)
	if err != nil || string(got) != "hello bye" {
		t.Fatalf("read %q: %v", got, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(events, ",") != "data hello,eof" {
		t.Fatalf("events %q", events)
	}
}

// TestCorkedBytesPushed: bytes relayed while handling a peer's last bytes
// leave with MSG_MORE; when the relay keeps the other conn open they are
// still sent at once, not held for the FIN that never comes.
func TestCorkedBytesPushed(t *testing.T) {
	e := startEngine(t, 1)
	// The receiving side: an accepted conn the relay writes to.
	sinkConn := make(chan *Conn, 1)
	sinkLn, err := e.Listen(ListenConfig{Addr: "127.0.0.1:0", OnAccept: func(*Conn) Handler {
		return &funcHandler{open: func(c *Conn) { sinkConn <- c }}
	}})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := net.Dial("tcp", sinkLn.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out *Conn
	select {
	case out = <-sinkConn:
	case <-time.After(5 * time.Second):
		t.Fatal("not accepted")
	}
	// Unsent bytes on out once the event is done: MSG_MORE would hold them
	// (until the kernel's probe timer, about 200 ms) were they not pushed.
	unsent := make(chan int, 1)
	queuedFIN(t, e, "relayed", &funcHandler{ // one loop: out is on it
		data: func(c *Conn, p []byte) int { out.Write(p); return len(p) },
		eof: func(c *Conn) {
			c.Close() // out stays open
			c.Loop().Run(func() {
				n, err := unix.IoctlGetInt(out.fd, unix.SIOCOUTQNSD)
				if err != nil {
					n = -1
				}
				unsent <- n
			})
		},
	})
	select {
	case n := <-unsent:
		if n != 0 {
			t.Fatalf("%d bytes left unsent after the event", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no EOF")
	}
	rc.SetDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 16)
	n, err := io.ReadAtLeast(rc, buf, len("relayed"))
	if err != nil || string(buf[:n]) != "relayed" {
		t.Fatalf("read %q: %v (bytes written with MSG_MORE were not pushed)", buf[:n], err)
	}
}

// TestEOFWaitsWhilePaused: a handler that pauses while handling the last
// bytes gets its EOF only after it resumes and has taken them.
func TestEOFWaitsWhilePaused(t *testing.T) {
	e := startEngine(t, 1)
	var mu sync.Mutex
	var events []string
	note := func(s string) { mu.Lock(); events = append(events, s); mu.Unlock() }
	var held *Conn
	paused := make(chan struct{})
	nc := queuedFIN(t, e, "abc", &funcHandler{
		data: func(c *Conn, p []byte) int {
			if held == nil {
				held = c
				note("held")
				c.PauseRead()
				close(paused)
				return 0
			}
			note("data " + string(p))
			return len(p)
		},
		eof: func(c *Conn) { note("eof"); c.Close() },
	})
	<-paused
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	early := strings.Join(events, ",")
	mu.Unlock()
	if early != "held" {
		t.Fatalf("while paused: events %q", early)
	}
	held.Loop().Run(func() { held.ResumeRead() })
	if _, err := io.ReadAll(nc); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(events, ",") != "held,data abc,eof" {
		t.Fatalf("events %q", events)
	}
}
