//go:build linux

package engine

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"time"
)

// ErrInboundOverflow closes a connection whose handler left more than
// Config.MaxInbound bytes unconsumed.
var ErrInboundOverflow = errors.New("engine: unconsumed input over limit")

// Handler receives a connection's events. Every method runs on the
// connection's loop and must not block.
type Handler interface {
	// OnOpen is called once an accepted connection is registered or a dial
	// has connected.
	OnOpen(c *Conn)
	// OnData delivers input and returns how many bytes were consumed. The
	// rest stays buffered and is delivered again, in front of new input, on
	// the next read or after Kick/ResumeRead. data is valid only during the
	// call; copy to keep.
	OnData(c *Conn, data []byte) int
	// OnEOF reports that the peer shut down its write side; no more input
	// follows. The connection stays open for writing.
	OnEOF(c *Conn)
	// OnDrain reports that the output queue, after having been over the
	// high-water mark, fell to the low-water mark: resume the producer.
	OnDrain(c *Conn)
	// OnTimeout reports that the deadline set with SetDeadline/SetTimeout
	// passed.
	OnTimeout(c *Conn)
	// OnClose is called once, after the descriptor was closed. err is nil
	// for a local close, the failure otherwise (for a dial: why it failed).
	OnClose(c *Conn, err error)
}

// Conn is a non-blocking TCP connection owned by one loop. All its methods
// run on that loop unless documented otherwise.
type Conn struct {
	fd     int
	loop   *Loop
	h      Handler
	ln     *Listener // nil for dialed conns
	remote netip.AddrPort

	in     []byte
	out    outQueue
	hi, lo int
	timer  *Timer
	// deadline is when OnTimeout fires, lastOut the last time output made
	// progress, created when the conn was accepted or dialed: Loop.Clock
	// readings (0: none), smaller than time.Time for the many idle
	// connections.
	deadline, lastOut, created int64

	interest                                                                                          uint8 // current epoll interest: bit 1 read, bit 2 write
	connecting, paused, eof, closing, lingering, closed, wrShut, shutDone, wasFull, kicked, wantEmpty bool

	// tls is the TLS state (StartTLS, StartTLSClient; tls.go); nil for a
	// plain connection, whose paths test only that.
	tls *tlsConn
	// secure: the inner end of a Pair for a client connection that runs
	// TLS (TLS reports true).
	secure bool
	// pipe is a Pair's end (pair.go); nil for a socket. A pipe has no
	// descriptor (fd -1) and is not polled.
	pipe *pipeEnd

	// Ctx is free for the handler's use.
	Ctx any
}

const (
	wantRead  = 1
	wantWrite = 2
)

func newConn(l *Loop, fd int, h Handler) *Conn {
	return &Conn{fd: fd, loop: l, h: h, hi: l.eng.cfg.HighWater, lo: l.eng.cfg.LowWater, created: l.Clock()}
}

// Loop returns the connection's loop. Safe from any goroutine.
func (c *Conn) Loop() *Loop { return c.loop }

// Fd returns the descriptor (for socket options). Runs on the loop.
func (c *Conn) Fd() int { return c.fd }

// RemoteAddr returns the peer address. Runs on the loop.
func (c *Conn) RemoteAddr() netip.AddrPort { return c.remote }

// LocalAddr returns the local address (one getsockname call). Runs on the loop.
func (c *Conn) LocalAddr() netip.AddrPort {
	if c.pipe != nil {
		return c.pipe.local
	}
	return localAddrFd(c.fd)
}

// SetHandler replaces the connection's handler (a hand-off between roles).
func (c *Conn) SetHandler(h Handler) { c.h = h }

// Handler returns the connection's handler.
func (c *Conn) Handler() Handler { return c.h }

// Closed reports whether the descriptor is closed.
func (c *Conn) Closed() bool { return c.closed }

// Closing reports whether Close was called (output may still be flushing).
func (c *Conn) Closing() bool { return c.closing || c.closed }

// EOF reports whether the peer shut down its write side.
func (c *Conn) EOF() bool { return c.eof }

// Connecting reports whether a dial is still in progress.
func (c *Conn) Connecting() bool { return c.connecting }

// Buffered returns the bytes of memory queued for output (file regions
// queued with SendFile are not counted; on a TLS connection, plaintext
// waiting for the handshake or behind a file is).
func (c *Conn) Buffered() int {
	if c.tls != nil {
		return c.out.mem + c.tls.pendMem
	}
	return c.out.mem
}

// LastWrite returns when queued output last made progress (zero if it
// never had to queue).
func (c *Conn) LastWrite() time.Time { return c.loop.ClockTime(c.lastOut) }

// Pending reports whether any output (memory or file) is still queued.
func (c *Conn) Pending() bool { return !c.out.empty() || c.tls != nil && len(c.tls.pend) > 0 }

// drained reports whether every byte queued was handed to the kernel (and
// a TLS handshake is over).
func (c *Conn) drained() bool { return c.out.empty() && (c.tls == nil || c.tls.drained()) }

// NotifyEmpty makes OnDrain fire once the output queue (memory and file
// regions) is completely sent; if it is empty already, OnDrain follows the
// current callback.
func (c *Conn) NotifyEmpty() {
	if c.closed {
		return
	}
	if c.drained() {
		c.loop.later(func() {
			if !c.closed {
				c.h.OnDrain(c)
			}
		})
		return
	}
	c.wantEmpty = true
}

// Full reports whether queued output is over the high-water mark: a producer
// should pause until OnDrain.
func (c *Conn) Full() bool { return c.Buffered() > c.hi }

// SetWatermarks sets the connection's high and low output marks.
func (c *Conn) SetWatermarks(high, low int) {
	if high > 0 {
		c.hi = high
	}
	if low >= 0 && low <= c.hi {
		c.lo = low
	}
}

// Quiet reports whether the peer has sent nothing that was not handled:
// no unconsumed input, no EOF, nothing held by TLS, and nothing waiting in
// the socket, which is asked (recv with MSG_PEEK and MSG_DONTWAIT, one
// system call) since bytes that came after the last poll are in no event
// yet. spoke reports that application bytes are waiting (not only an EOF
// or a close). On a TLS connection, records not yet decrypted may carry no
// application data at all (session tickets after a handshake, an alert):
// they make it not quiet, never spoke. A pool asks it before it sends a new
// request on an idle connection: any byte there arrived unasked (a peer
// that sent more than its reply) and would be taken for the next reply.
// Runs on the loop.
func (c *Conn) Quiet() (quiet, spoke bool) {
	if c.closed || c.closing || c.eof || c.connecting {
		return false, false
	}
	if len(c.in) > 0 {
		return false, true
	}
	if t := c.tls; t != nil && (len(t.raw) > 0 || t.more || t.rawEOF) {
		return false, false
	}
	if c.pipe != nil {
		return !c.pipe.eof, false // input would be in c.in
	}
	quiet, spoke = peekFd(c.fd)
	return quiet, spoke && c.tls == nil
}

// AckNow acknowledges what was received at once (TCP_QUICKACK), instead
// of the delayed ACK that would ride on the next bytes sent: a peer whose
// next segment waits for that ACK (Nagle) sends it now. Runs on the loop.
func (c *Conn) AckNow() {
	if !c.closed && c.pipe == nil {
		quickAckFd(c.fd)
	}
}

// Inbound returns the bytes buffered but not yet consumed (a view; copy to keep).
func (c *Conn) Inbound() []byte { return c.in }

// PauseRead stops reading input until ResumeRead; bytes stay in the kernel
// so TCP flow control slows the peer.
func (c *Conn) PauseRead() {
	if c.paused || c.closed {
		return
	}
	c.paused = true
	c.updateInterest()
}

// ResumeRead undoes PauseRead and redelivers buffered input.
func (c *Conn) ResumeRead() {
	if !c.paused || c.closed {
		return
	}
	c.paused = false
	c.updateInterest()
	c.Kick()
}

// Paused reports whether reading is paused.
func (c *Conn) Paused() bool { return c.paused }

// Kick redelivers buffered input to OnData after the current callback, if
// there is any and reading is not paused. Called from OnData, it covers the
// bytes that call leaves unconsumed.
func (c *Conn) Kick() {
	// Inside OnData the unconsumed rest is not in c.in yet (deliver keeps
	// it after the call returns), so an empty c.in proves nothing here:
	// redeliver checks again once it runs.
	if c.kicked || c.closed {
		return
	}
	c.kicked = true
	c.loop.deferred = append(c.loop.deferred, deferredTask{kick: c})
}

func (c *Conn) redeliver() {
	c.kicked = false
	if c.pipe != nil {
		c.pipeRead()
		return
	}
	if c.closed || c.closing || c.paused {
		return
	}
	if len(c.in) > 0 {
		c.deliver(c.in, false)
	}
	if c.tls != nil {
		c.tlsResume() // records not decrypted yet
	}
}

// SetTimeout sets the deadline to now+d; d <= 0 clears it.
func (c *Conn) SetTimeout(d time.Duration) {
	if d <= 0 {
		c.deadline = 0
		return
	}
	c.setDeadline(c.loop.Clock() + int64(d))
}

// SetDeadline makes OnTimeout fire at t; the zero time clears it.
func (c *Conn) SetDeadline(t time.Time) {
	if t.IsZero() {
		c.deadline = 0
		return
	}
	c.setDeadline(c.loop.eng.clock(t))
}

// setDeadline makes OnTimeout fire at when (a Loop.Clock reading). The
// connection's one timer is moved only when it would fire too late: one
// that fires early finds the deadline later and waits again (onTimer).
func (c *Conn) setDeadline(when int64) {
	c.deadline = when
	if c.closed {
		return
	}
	if c.timer == nil {
		c.timer = &Timer{fn: c.onTimer, index: -1, loop: c.loop}
	}
	if c.timer.index < 0 || c.timer.when > when {
		c.timer.resetAt(when)
	}
}

func (c *Conn) onTimer() {
	if c.closed || c.deadline == 0 {
		return
	}
	if c.deadline > c.loop.Clock() {
		c.timer.resetAt(c.deadline)
		return
	}
	c.deadline = 0
	switch {
	case c.connecting || c.tls != nil && c.tls.client && !c.tls.ready():
		c.destroy(ErrConnectTimeout)
	case c.closing:
		c.destroy(ErrTimeout)
	default:
		c.h.OnTimeout(c)
	}
}

// Write queues p for output, writing at once what the socket takes. The
// bytes are copied if they cannot be sent now, so p may be reused after the
// call. It returns ErrClosed after Close or a write failure.
func (c *Conn) Write(p []byte) error {
	if c.closed || c.closing {
		return ErrClosed
	}
	if len(p) == 0 {
		return nil
	}
	if c.tls != nil {
		return c.tlsWrite(p, nil)
	}
	return c.writeRaw(p)
}

// writeRaw is Write below TLS.
func (c *Conn) writeRaw(p []byte) error {
	if c.pipe != nil {
		if c.pipe.gone {
			c.destroy(ErrPeerClosed) // a socket's ECONNRESET
			return ErrPeerClosed
		}
		if c.shutDone {
			return ErrClosed // a socket's EPIPE after its own FIN
		}
	}
	if c.out.empty() && !c.connecting {
		n, err := c.sendNow(p)
		if err != nil {
			c.destroy(err)
			return err
		}
		p = p[n:]
		if len(p) == 0 {
			return nil
		}
	}
	c.out.appendBytes(c.loop, p)
	c.afterQueue()
	return nil
}

// sendNow hands p to the kernel (a pair's end: to its peer's input) as
// far as it takes it, and returns the bytes taken.
func (c *Conn) sendNow(p []byte) (int, error) {
	if c.pipe != nil {
		return c.pipeSend(p)
	}
	if !c.loop.more {
		return writeFd(c.fd, p)
	}
	n, err := writeMoreFd(c.fd, p)
	if k := len(c.loop.corked); n > 0 && (k == 0 || c.loop.corked[k-1] != c) {
		c.loop.corked = append(c.loop.corked, c)
	}
	return n, err
}

// Write2 queues a then b with one writev when the queue is empty.
func (c *Conn) Write2(a, b []byte) error {
	if c.closed || c.closing {
		return ErrClosed
	}
	if len(b) == 0 {
		return c.Write(a)
	}
	if len(a) == 0 {
		return c.Write(b)
	}
	if c.tls != nil {
		return c.tlsWrite(a, b)
	}
	if c.pipe != nil {
		if err := c.writeRaw(a); err != nil {
			return err
		}
		return c.writeRaw(b)
	}
	if c.out.empty() && !c.connecting {
		iov := [2][]byte{a, b}
		n, err := writevFd(c.fd, iov[:])
		if err != nil {
			c.destroy(err)
			return err
		}
		if n >= len(a) {
			b = b[n-len(a):]
			a = nil
		} else {
			a = a[n:]
		}
		if len(a) == 0 && len(b) == 0 {
			return nil
		}
	}
	c.out.appendBytes(c.loop, a)
	c.out.appendBytes(c.loop, b)
	c.afterQueue()
	return nil
}

// SendFile queues n bytes of f from off, sent with sendfile(2) after the
// bytes queued before it. If own is set, f is closed once sent or dropped.
func (c *Conn) SendFile(f *os.File, off, n int64, own bool) error {
	var owner io.Closer
	if own {
		owner = f
	}
	return c.SendFileOwned(f, off, n, owner)
}

// SendFileOwned is SendFile with an owner (nil: none) whose Close is
// called instead of f's once the region and everything queued before it
// is sent or dropped: a caller that counts the bytes of its files learns
// when one is gone.
func (c *Conn) SendFileOwned(f *os.File, off, n int64, owner io.Closer) error {
	if c.closed || c.closing {
		if owner != nil {
			owner.Close()
		}
		return ErrClosed
	}
	if n <= 0 && owner == nil {
		return nil
	}
	if c.tls != nil {
		return c.tlsSendFile(f, off, n, owner) // read and encrypted: no sendfile(2)
	}
	if c.pipe != nil && (c.pipe.gone || c.shutDone) {
		if owner != nil {
			owner.Close()
		}
		return c.writeRaw(nil) // its error, as a write's
	}
	c.out.appendFile(f, off, n, owner)
	if !c.connecting && c.out.head == len(c.out.segs)-1 {
		c.flush(false)
		if c.closed {
			return ErrClosed
		}
	}
	c.updateInterest()
	return nil
}

func (c *Conn) afterQueue() {
	if c.Full() {
		c.wasFull = true
	}
	c.updateInterest()
}

// CloseWrite shuts down the write side (sends FIN) once queued output is
// flushed; reading goes on. On a TLS connection close_notify precedes the
// FIN.
func (c *Conn) CloseWrite() {
	if c.closed || c.wrShut {
		return
	}
	c.wrShut = true
	if c.tls != nil {
		c.tls.closeNotify() // now, or once the handshake and pending output are done
		if c.closed {
			return
		}
	}
	if c.drained() && !c.connecting {
		c.shutdownWrite()
	}
}

func (c *Conn) shutdownWrite() {
	if !c.shutDone {
		c.shutDone = true
		if c.pipe != nil {
			c.pipeHangUp(false)
			return
		}
		shutdownWriteFd(c.fd)
	}
}

// Close stops reading, flushes every queued byte, then closes. An accepted
// connection whose peer has not finished sending lingers briefly, discarding
// input, so the kernel does not reset the peer before it read the reply.
// OnClose follows (err nil, or the write failure). A TLS connection sends
// close_notify after its output; one still in its handshake closes at once
// if nothing was queued, else once the handshake and that output are done.
func (c *Conn) Close() {
	if c.closed || c.closing {
		return
	}
	c.closing = true
	c.in = nil
	if c.pipe != nil && c.pipe.gone {
		c.destroy(nil) // its peer is gone: what it queued cannot go
		return
	}
	if c.tls != nil {
		c.tlsClosing()
		if c.closed {
			return
		}
	}
	if c.drained() && !c.connecting {
		c.finishClose()
		return
	}
	if c.deadline == 0 {
		c.SetTimeout(c.loop.eng.cfg.LingerTimeout * 15)
	}
	c.updateInterest()
}

func (c *Conn) finishClose() {
	if c.ln != nil && !c.eof && !c.lingering {
		c.lingering = true
		c.shutdownWrite()
		c.SetTimeout(c.loop.eng.cfg.LingerTimeout)
		c.updateInterest()
		return
	}
	c.destroy(nil)
}

// Abort closes at once, dropping queued output. OnClose gets err. A
// pair's other end hears it as a socket's reset: closed with
// ErrPeerClosed at once, its unread input dropped (pipeHangUp).
func (c *Conn) Abort(err error) {
	if c.pipe != nil && !c.closed {
		c.pipe.reset = true
	}
	c.destroy(err)
}

func (c *Conn) destroy(err error) {
	if c.closed {
		return
	}
	c.closed = true
	l := c.loop
	// No EPOLL_CTL_DEL: closing the descriptor (never duplicated) takes it
	// out of the epoll set, one system call fewer per connection.
	c.interest = 0
	if c.pipe != nil {
		c.pipeHangUp(true)
		delete(l.pipes, c)
	} else {
		l.unregister(c.fd)
		closeFd(c.fd)
	}
	c.out.release(l)
	if c.tls != nil {
		c.tls.release()
	}
	c.in = nil
	if c.timer != nil {
		c.timer.Stop()
	}
	l.conns--
	l.eng.conns.Add(-1)
	if c.ln != nil {
		c.ln.connClosed(l)
	}
	h := c.h
	l.later(func() { h.OnClose(c, err) })
}
