//go:build linux

package engine

import (
	"bytes"
	"crypto/rand"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// pairRun runs fn on the loop and waits for it.
func pairRun(t *testing.T, l *Loop, fn func()) {
	t.Helper()
	done := make(chan struct{})
	if !l.Run(func() { fn(); close(done) }) {
		t.Fatal("loop stopped")
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("loop did not run the task")
	}
}

// collector gathers a pair end's input and its EOF and close.
type collector struct {
	mu     sync.Mutex
	got    bytes.Buffer
	eof    bool
	closed error
	done   chan struct{}
}

func newCollector() *collector { return &collector{done: make(chan struct{})} }

func (k *collector) handler(keepOpen bool) *funcHandler {
	return &funcHandler{
		data: func(c *Conn, p []byte) int {
			k.mu.Lock()
			k.got.Write(p)
			k.mu.Unlock()
			return len(p)
		},
		eof: func(c *Conn) {
			k.mu.Lock()
			k.eof = true
			k.mu.Unlock()
			if !keepOpen {
				c.Close()
			}
		},
		closed: func(c *Conn, err error) {
			k.mu.Lock()
			k.closed = err
			k.mu.Unlock()
			close(k.done)
		},
	}
}

func (k *collector) wait(t *testing.T) {
	t.Helper()
	select {
	case <-k.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the end never closed")
	}
}

// TestPairCarriesBytesAndEOF: 4 MiB written to one end of a pair whose
// other end reads slowly (paused, resumed) arrive whole and in order,
// with OnDrain on the writer once its queue went over the high mark and
// back; a file sent with SendFile follows; the writer's CloseWrite is the
// reader's EOF after the last byte; the reader's Close closes both.
func TestPairCarriesBytesAndEOF(t *testing.T) {
	e := startEngine(t, 1)
	l := e.Loops()[0]
	payload := make([]byte, 4<<20)
	rand.Read(payload)
	file := make([]byte, 1<<20+7)
	rand.Read(file)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	reader := newCollector()
	var drains int
	var inner, outer *Conn
	writerDone := make(chan struct{})
	pairRun(t, l, func() {
		rh := reader.handler(false)
		var err error
		inner, outer, err = l.Pair(PairInfo{Remote: netip.MustParseAddrPort("192.0.2.1:1234"), Local: netip.MustParseAddrPort("192.0.2.9:443"), Secure: true, Proto: "HTTP/2.0"}, func(c *Conn) Handler {
			return &funcHandler{
				drain: func(c *Conn) { drains++ },
				eof:   func(c *Conn) { c.Close() },
				closed: func(c *Conn, err error) {
					close(writerDone)
				},
			}
		}, rh)
		if err != nil {
			t.Error(err)
			return
		}
		if inner.RemoteAddr().String() != "192.0.2.1:1234" || inner.LocalAddr().String() != "192.0.2.9:443" || !inner.TLS() || outer.TLS() ||
			inner.Fd() >= 0 || outer.Fd() >= 0 || inner.Fd() == outer.Fd() || inner.Proto() != "HTTP/2.0" {
			t.Errorf("inner: %v to %v tls %v fd %d, outer tls %v fd %d", inner.RemoteAddr(), inner.LocalAddr(), inner.TLS(), inner.Fd(), outer.TLS(), outer.Fd())
		}
		outer.PauseRead()
		inner.Write(payload)
		if !inner.Full() {
			t.Error("4 MiB to a paused end: not Full")
		}
		f, _ := os.Open(path)
		inner.SendFile(f, 0, int64(len(file)), true)
		inner.CloseWrite()
	})
	pairRun(t, l, func() { outer.ResumeRead() })
	reader.wait(t)
	<-writerDone
	reader.mu.Lock()
	defer reader.mu.Unlock()
	if !bytes.Equal(reader.got.Bytes(), append(payload, file...)) {
		t.Fatalf("got %d bytes, want %d, or out of order", reader.got.Len(), len(payload)+len(file))
	}
	if !reader.eof || reader.closed != nil {
		t.Fatalf("eof %v, close %v", reader.eof, reader.closed)
	}
	if drains == 0 {
		t.Fatal("no OnDrain for the writer")
	}
}

// TestPairPeerGone: after one end closes, the other gets its EOF and its
// writes fail (ErrPeerClosed); after one end is aborted, the other closes
// at once with ErrPeerClosed, as after a socket's reset, without an EOF;
// an engine stop closes the ends still open.
func TestPairPeerGone(t *testing.T) {
	e := startEngine(t, 1)
	l := e.Loops()[0]
	for _, abort := range []bool{false, true} {
		var writeErr error
		eofs := 0
		closedWith := make(chan error, 2)
		var outer *Conn
		pairRun(t, l, func() {
			_, outer, _ = l.Pair(PairInfo{}, func(c *Conn) Handler {
				return &funcHandler{
					eof: func(c *Conn) {
						eofs++
						writeErr = c.Write([]byte("late"))
						c.Close()
					},
					closed: func(c *Conn, err error) { closedWith <- err },
				}
			}, &funcHandler{})
		})
		pairRun(t, l, func() {
			if abort {
				outer.Abort(nil)
			} else {
				outer.Close()
			}
		})
		pairRun(t, l, func() {})
		select {
		case err := <-closedWith:
			switch {
			case abort && (err != ErrPeerClosed || eofs != 0):
				t.Fatalf("after an abort: inner closed with %v after %d EOFs", err, eofs)
			case !abort && (eofs != 1 || writeErr != ErrPeerClosed):
				t.Fatalf("after a close: %d EOFs, a write after it: %v", eofs, writeErr)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("inner never closed")
		}
	}
	var inner *Conn
	pairRun(t, l, func() {
		inner, _, _ = l.Pair(PairInfo{}, func(c *Conn) Handler { return &funcHandler{} }, &funcHandler{})
	})

	stopped := make(chan error, 1)
	pairRun(t, l, func() {
		l.Pair(PairInfo{}, func(c *Conn) Handler {
			return &funcHandler{closed: func(c *Conn, err error) { stopped <- err }}
		}, &funcHandler{})
	})
	e.Stop()
	select {
	case err := <-stopped:
		if err != ErrStopped {
			t.Fatalf("at the stop: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a pair end outlived the engine")
	}
	_ = inner
}

// TestPairRefused: an accept that returns nil makes Pair fail, leaves
// no connection, and calls neither handler.
func TestPairRefused(t *testing.T) {
	e := startEngine(t, 1)
	l := e.Loops()[0]
	called := 0
	h := &funcHandler{open: func(*Conn) { called++ }, closed: func(*Conn, error) { called++ }}
	pairRun(t, l, func() {
		if _, _, err := l.Pair(PairInfo{}, func(*Conn) Handler { return nil }, h); err == nil {
			t.Error("a refused pair made")
		}
	})
	pairRun(t, l, func() {
		if n := l.Conns(); n != 0 || len(l.pipes) != 0 || called != 0 {
			t.Errorf("%d connections, %d pipes left, the handler called %d times", n, len(l.pipes), called)
		}
	})
}

// TestPairSocketSemantics: what a socket's handler relies on. A write
// queued for a peer that then closes fails (ErrPeerClosed) once the
// survivor tries to send it, and its Close is at once; the EOF comes
// after input the handler asked to have again (Kick); a write after
// CloseWrite fails (a socket's EPIPE) and never reaches the peer after
// its EOF.
func TestPairSocketSemantics(t *testing.T) {
	e := startEngine(t, 1)
	l := e.Loops()[0]

	// A queued writer whose peer goes.
	closed := make(chan error, 1)
	var w, r *Conn
	pairRun(t, l, func() {
		w, r, _ = l.Pair(PairInfo{}, func(*Conn) Handler {
			return &funcHandler{eof: func(c *Conn) {}, closed: func(_ *Conn, err error) { closed <- err }}
		}, &funcHandler{})
		r.PauseRead()
		w.Write(make([]byte, 1<<20)) // mostly queued
		if !w.Pending() {
			t.Error("nothing queued")
		}
	})
	pairRun(t, l, func() {
		r.Abort(nil)
		if !w.PeerClosed() {
			t.Error("the survivor does not know its peer closed") // before any event
		}
	})
	pairRun(t, l, func() {
		if err := w.Write([]byte("more")); err == nil {
			t.Error("a write after the peer left succeeded")
		}
	})
	select {
	case err := <-closed:
		if err != ErrPeerClosed {
			t.Fatalf("the writer closed with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the writer lingers with its queue")
	}

	// EOF after kicked input, and writes after CloseWrite.
	var order []string
	done := make(chan struct{})
	var a *Conn
	pairRun(t, l, func() {
		var b *Conn
		a, b, _ = l.Pair(PairInfo{}, func(*Conn) Handler { return &funcHandler{} }, &funcHandler{
			data: func(c *Conn, p []byte) int {
				order = append(order, "data:"+string(p))
				if string(p) == "headbody" {
					c.Kick() // the rest again, as the proxy does for a body behind a head
					return 4
				}
				return len(p)
			},
			eof:    func(c *Conn) { order = append(order, "eof"); c.Close() },
			closed: func(*Conn, error) { close(done) },
		})
		_ = b
		a.Write([]byte("headbody"))
		a.CloseWrite()
	})
	<-done
	pairRun(t, l, func() {
		if err := a.Write([]byte("late")); err == nil {
			t.Error("a write after CloseWrite succeeded")
		}
	})
	if want := "data:headbody data:body eof"; strings.Join(order, " ") != want {
		t.Fatalf("order %q, want %q", strings.Join(order, " "), want)
	}
}

// TestPairClosingPeerGone: an end closing with output queued (waiting
// for its peer to read it) is closed at once when the peer goes, not
// after the linger timeout.
func TestPairClosingPeerGone(t *testing.T) {
	e := startEngine(t, 1)
	l := e.Loops()[0]
	closed := make(chan error, 1)
	var w, r *Conn
	pairRun(t, l, func() {
		w, r, _ = l.Pair(PairInfo{}, func(*Conn) Handler {
			return &funcHandler{closed: func(_ *Conn, err error) { closed <- err }}
		}, &funcHandler{})
		r.PauseRead()
		w.Write(make([]byte, 1<<20))
		w.Close() // waits for its queue
	})
	pairRun(t, l, func() {
		if w.Closed() {
			t.Error("closed with its queue unsent")
		}
		r.Abort(nil)
	})
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("the closing end outlived its peer")
	}
}

// TestPairPausedReaderGetsTailOnClose: the writer puts its last bytes in
// a paused reader's input and closes; the reader gets them, then its EOF,
// when it resumes, as from a socket (a close is no reset).
func TestPairPausedReaderGetsTailOnClose(t *testing.T) {
	e := startEngine(t, 1)
	l := e.Loops()[0]
	reader := newCollector()
	var inner, outer *Conn
	pairRun(t, l, func() {
		var err error
		inner, outer, err = l.Pair(PairInfo{}, func(c *Conn) Handler { return &funcHandler{} }, reader.handler(false))
		if err != nil {
			t.Fatal(err)
		}
	})
	pairRun(t, l, func() {
		outer.PauseRead() // as h2srv's exchange does while its client's window is shut
		inner.Write([]byte("the last 15 B.."))
		inner.Close() // a role ending a Connection: close response
	})
	pairRun(t, l, func() {
		if !outer.Closed() {
			outer.ResumeRead()
			outer.Kick()
		}
	})
	reader.wait(t)
	reader.mu.Lock()
	defer reader.mu.Unlock()
	if reader.got.String() != "the last 15 B.." || reader.closed == ErrPeerClosed {
		t.Errorf("a close reached a paused reader as a reset: got %q, closed with %v", reader.got.String(), reader.closed)
	}
}
