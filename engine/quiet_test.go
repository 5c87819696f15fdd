package engine

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// quietPair dials two conns from loop 0 to a listener of the test and
// returns them with the test's ends, in the same order.
func quietPair(t *testing.T, e *Engine, h func(i int) *funcHandler) (conns [2]*Conn, peers [2]net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := netip.MustParseAddrPort(ln.Addr().String())
	l := e.Loops()[0]
	for i := range conns {
		opened := make(chan *Conn, 1)
		hi := h(i)
		l.Run(func() {
			_, err := l.Dial(addr, &funcHandler{
				open: func(c *Conn) { opened <- c },
				data: hi.data,
				eof:  func(c *Conn) {},
			}, time.Second)
			if err != nil {
				t.Error(err)
				close(opened)
			}
		})
		p, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		select {
		case c := <-opened:
			if c == nil {
				t.FailNow()
			}
			conns[i], peers[i] = c, p
		case <-time.After(5 * time.Second):
			t.Fatal("dial did not complete")
		}
	}
	return conns, peers
}

// onLoop runs fn on loop 0 and returns its result.
func onLoop(e *Engine, fn func() bool) bool {
	ch := make(chan bool, 1)
	e.Loops()[0].Run(func() { ch <- fn() })
	return <-ch
}

// TestQuietSeesEveryUnaskedByte pins what Conn.Quiet proves before an idle
// connection is reused: a byte of a poll batch whose event is still to be
// dispatched, a byte that came after the conn's last read, bytes waiting
// while reading is paused, and the peer's FIN all make it false.
func TestQuietSeesEveryUnaskedByte(t *testing.T) {
	e := startEngine(t, 1)
	type seen struct{ other, self, late bool }
	results := make(chan seen, 4)
	var conns [2]*Conn
	var peers [2]net.Conn
	first := true
	conns, peers = quietPair(t, e, func(i int) *funcHandler {
		return &funcHandler{data: func(c *Conn, p []byte) int {
			if string(p) != "batch" || !first {
				return len(p)
			}
			first = false
			// The first of the two conns the poll reported: the other's
			// event is still to come.
			s := seen{other: quiet(conns[1-i])}
			// All consumed (the engine keeps no rest once OnData returns
			// len(p)), nothing more sent: quiet.
			s.self = quiet(c)
			// A byte that arrives after this read is in no event yet.
			peers[i].Write([]byte("x"))
			time.Sleep(20 * time.Millisecond)
			s.late = quiet(c)
			results <- s
			return len(p)
		}}
	})
	if !onLoop(e, func() bool { return quiet(conns[0]) }) {
		t.Fatal("a fresh connection with nothing sent is not quiet")
	}

	// Both peers write while the loop is busy, so one poll reports both.
	e.Loops()[0].Run(func() {
		peers[0].Write([]byte("batch"))
		peers[1].Write([]byte("batch"))
		time.Sleep(50 * time.Millisecond)
	})
	select {
	case s := <-results:
		if s.other {
			t.Error("a conn whose event of this batch is not dispatched yet is quiet")
		}
		if !s.self {
			t.Error("a conn whose input was all consumed is not quiet")
		}
		if s.late {
			t.Error("a byte that arrived after the last read was not seen")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no data delivered")
	}

	// Paused: the poll no longer watches the conn.
	onLoop(e, func() bool { conns[1].PauseRead(); return true })
	peers[1].Write([]byte("y"))
	time.Sleep(20 * time.Millisecond)
	if onLoop(e, func() bool { q, spoke := conns[1].Quiet(); return q || !spoke }) {
		t.Error("bytes waiting on a paused conn were not seen")
	}
	onLoop(e, func() bool { conns[1].ResumeRead(); return true })
	time.Sleep(20 * time.Millisecond)
	if !onLoop(e, func() bool { return quiet(conns[1]) }) {
		t.Error("not quiet once the bytes were read")
	}
	// The peer's FIN counts too.
	peers[1].(*net.TCPConn).CloseWrite()
	time.Sleep(20 * time.Millisecond)
	if onLoop(e, func() bool { q, spoke := conns[1].Quiet(); return q || spoke }) {
		t.Error("a conn whose peer shut down is quiet, or said to have sent bytes")
	}
}

// quiet is c.Quiet's first result.
func quiet(c *Conn) bool {
	q, _ := c.Quiet()
	return q
}
