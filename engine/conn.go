//go:build linux

package engine

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
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
	sa, err := unix.Getsockname(c.fd)
	if err != nil {
		return netip.AddrPort{}
	}
	return sockaddrToAddrPort(sa)
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
	var b [1]byte
	n, err := sockIO(unix.SYS_RECVFROM, c.fd, b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	return err == unix.EAGAIN, err == nil && n > 0 && c.tls == nil
}

// AckNow acknowledges what was received at once (TCP_QUICKACK), instead
// of the delayed ACK that would ride on the next bytes sent: a peer whose
// next segment waits for that ACK (Nagle) sends it now. Runs on the loop.
func (c *Conn) AckNow() {
	if !c.closed {
		unix.SetsockoptInt(c.fd, unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
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
	if c.out.empty() && !c.connecting {
		var n int
		var err error
		if c.loop.more {
			n, err = writeMoreFd(c.fd, p)
			if k := len(c.loop.corked); n > 0 && (k == 0 || c.loop.corked[k-1] != c) {
				c.loop.corked = append(c.loop.corked, c)
			}
		} else {
			n, err = writeFd(c.fd, p)
		}
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
		unix.Shutdown(c.fd, unix.SHUT_WR)
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

// Abort closes at once, dropping queued output. OnClose gets err.
func (c *Conn) Abort(err error) { c.destroy(err) }

func (c *Conn) destroy(err error) {
	if c.closed {
		return
	}
	c.closed = true
	l := c.loop
	// No EPOLL_CTL_DEL: closing the descriptor (never duplicated) takes it
	// out of the epoll set, one system call fewer per connection.
	c.interest = 0
	l.unregister(c.fd)
	unix.Close(c.fd)
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

func (c *Conn) updateInterest() {
	if c.closed {
		return
	}
	var want uint8
	if c.connecting || !c.out.empty() {
		want |= wantWrite
	}
	// A lingering conn reads (and discards) even if it was paused: the
	// peer's EOF is what lets it close early.
	read := c.lingering || !c.paused && !c.eof && !c.closing
	if t := c.tls; t != nil && !c.lingering {
		// Nothing to read after the peer's FIN; a handshake reads even
		// when paused or closing.
		read = read && !t.rawEOF || t.handshaking()
	}
	if read {
		want |= wantRead
	}
	if want == c.interest {
		return
	}
	p := c.loop.poller
	var ev uint32
	if want&wantRead != 0 {
		ev |= evRead
	}
	if want&wantWrite != 0 {
		ev |= evWrite
	}
	var err error
	switch {
	case c.interest == 0:
		err = p.add(c.fd, ev)
	case want == 0:
		err = p.del(c.fd)
	default:
		err = p.mod(c.fd, ev)
	}
	if err != nil {
		c.interest = 0
		c.destroy(err)
		return
	}
	c.interest = want
}

func (c *Conn) onEvent(ev uint32) {
	if c.connecting {
		c.finishConnect(ev)
		return
	}
	errEv := ev&evErr != 0
	if ev&evWrite != 0 || (errEv && !c.out.empty()) {
		c.flush(true)
		if c.closed {
			return
		}
	}
	if c.interest&wantRead != 0 && (ev&evRead != 0 || errEv) {
		c.read(ev)
	}
}

// read reads once. ev is the poll event: with EPOLLRDHUP and a short read,
// the peer's FIN is queued behind the data, so the EOF is delivered right
// after it without another recv(2), and what the handler writes while it
// handles these last bytes goes out with MSG_MORE: if it then half-closes
// or closes that conn (a relay passing the EOF on), the FIN leaves in the
// same segment as the bytes, as HAProxy sends it. Conns still open when the
// event is done are pushed (Loop.uncork).
func (c *Conn) read(ev uint32) {
	if c.tls != nil && !c.lingering {
		c.tlsRead()
		return
	}
	l := c.loop
	var buf []byte
	if len(c.in) == 0 || c.lingering {
		buf = l.readBuf
	} else {
		if cap(c.in)-len(c.in) < 4096 {
			n := make([]byte, len(c.in), 2*cap(c.in)+4096)
			copy(n, c.in)
			c.in = n
		}
		buf = c.in[len(c.in):cap(c.in)]
	}
	n, err := readFd(c.fd, buf)
	if err == unix.EAGAIN {
		return
	}
	if err != nil {
		if c.lingering {
			c.destroy(nil)
		} else {
			c.destroy(err)
		}
		return
	}
	if n == 0 {
		c.eof = true
		if c.lingering {
			c.destroy(nil)
			return
		}
		c.h.OnEOF(c)
		// After the handler, which mostly closes the connection: then no
		// EPOLL_CTL call is needed to stop reading.
		c.updateInterest()
		return
	}
	if c.lingering || c.closing {
		return
	}
	final := ev&evRdHup != 0 && n < len(buf)
	l.more = final
	if len(c.in) == 0 {
		c.deliver(l.readBuf[:n], true)
	} else {
		c.in = c.in[:len(c.in)+n]
		c.deliver(c.in, false)
	}
	l.more = false
	if final && !c.closed && !c.closing {
		// After what OnData deferred (a Kick's redelivery first), as if it
		// were the next event.
		l.deferred = append(l.deferred, deferredTask{eof: c})
	}
}

// finalEOF delivers the EOF a read with EPOLLRDHUP announced, unless the
// handler paused reading meanwhile (it then comes with the next read).
func (c *Conn) finalEOF() {
	if c.closed || c.closing || c.paused || c.eof || c.lingering || c.interest&wantRead == 0 {
		return
	}
	if c.kicked { // input to redeliver first (a Kick made after ours)
		c.loop.deferred = append(c.loop.deferred, deferredTask{eof: c})
		return
	}
	c.eof = true
	c.h.OnEOF(c)
	c.updateInterest()
}

// deliver hands data to OnData and keeps what it did not consume.
func (c *Conn) deliver(data []byte, shared bool) {
	used := c.h.OnData(c, data)
	if c.closed || c.closing {
		c.in = nil
		return
	}
	if used < 0 {
		used = 0
	} else if used > len(data) {
		used = len(data)
	}
	rest := data[used:]
	if shared {
		if len(rest) > 0 {
			c.in = append(make([]byte, 0, max(len(rest), 4096)), rest...)
		}
	} else {
		n := copy(c.in, rest)
		c.in = c.in[:n]
		if n == 0 {
			c.in = nil // idle connections hold no input buffer
		}
	}
	if len(c.in) > c.loop.eng.cfg.MaxInbound {
		c.destroy(ErrInboundOverflow)
	}
}

// flush writes queued output until the socket is full or the queue empty.
// notify allows OnDrain (not when called from inside a handler's own call).
func (c *Conn) flush(notify bool) {
	progress, err := c.out.flush(c.loop, c.fd)
	if err == nil && c.tls != nil && c.tls.ready() && len(c.tls.pend) > 0 {
		// Encrypt what waits (a file, output behind it) as the queue drains.
		var p bool
		p, err = c.tlsPumpFlush()
		progress = progress || p
	}
	if err != nil {
		c.destroy(err)
		return
	}
	if progress {
		c.lastOut = c.loop.Clock()
	}
	if c.closing && progress {
		c.SetTimeout(c.loop.eng.cfg.LingerTimeout * 15)
	}
	if c.drained() {
		if c.closing {
			c.finishClose()
			return
		}
		if c.wrShut {
			c.shutdownWrite()
		}
	}
	c.updateInterest()
	if !notify || c.closed {
		return
	}
	if c.wasFull && c.Buffered() <= c.lo || c.wantEmpty && c.drained() {
		c.wasFull = false
		if c.drained() {
			c.wantEmpty = false
		}
		c.h.OnDrain(c)
	}
}

// finishConnect completes a dial on its first event: writable without an
// error means connected (no SO_ERROR query then, one system call fewer).
func (c *Conn) finishConnect(ev uint32) {
	if ev&evErr != 0 || ev&evWrite == 0 {
		soerr, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err == nil && soerr != 0 {
			err = unix.Errno(soerr)
		}
		if err != nil {
			c.destroy(err)
			return
		}
	}
	c.connecting = false
	if c.tls == nil {
		c.deadline = 0 // the dial timeout covered the connect only
	}
	if c.closing {
		// Closed while connecting: send what was queued, then close; the
		// handler gave the connection up, so no OnOpen.
		if c.out.empty() {
			c.finishClose()
		} else {
			c.updateInterest()
		}
		return
	}
	c.updateInterest()
	if c.tls != nil && !c.tls.ready() {
		// OnOpen follows the handshake (tls.go); send the ClientHello.
		if !c.closed && !c.out.empty() {
			c.flush(false)
		}
		return
	}
	c.h.OnOpen(c)
	if !c.closed && !c.out.empty() {
		c.flush(true)
	}
}

// readFd reads with recv(2) and writeFd writes with send(2): on a socket
// they skip the VFS layer read(2) and write(2) go through (HAProxy and nginx
// use them too), and MSG_NOSIGNAL spares the thread a SIGPIPE when the peer
// is gone. Every engine conn is a non-blocking socket, so these and writev
// are raw system calls: they never block, and the runtime's entersyscall and
// exitsyscall bookkeeping around each (about 1.5% of the CPU per SMTP
// message, bench/smtp.sh) buys nothing on a loop locked to its thread.
func readFd(fd int, p []byte) (int, error) {
	for {
		n, err := sockIO(unix.SYS_RECVFROM, fd, p, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		return n, nil
	}
}

func writeFd(fd int, p []byte) (int, error) { return sendFd(fd, p, unix.MSG_NOSIGNAL) }

// writeMoreFd is writeFd with MSG_MORE: the kernel holds a partial segment
// for what follows (a FIN, more bytes) until a send without it, a shutdown,
// a close or uncorkFd.
func writeMoreFd(fd int, p []byte) (int, error) {
	return sendFd(fd, p, unix.MSG_NOSIGNAL|unix.MSG_MORE)
}

// sendFd is send(2) with flags; a full socket is 0 bytes written.
func sendFd(fd int, p []byte, flags uintptr) (int, error) {
	for {
		n, err := sockIO(unix.SYS_SENDTO, fd, p, flags)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		return n, nil
	}
}

// uncorkFd sends what MSG_MORE held back: clearing TCP_CORK (never set
// here) pushes the pending segments and changes nothing else.
func uncorkFd(fd int) {
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_CORK, 0)
}

// sockIO is recvfrom(2) or sendto(2) on fd with no address.
func sockIO(trap uintptr, fd int, p []byte, flags uintptr) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	r, _, e := unix.RawSyscall6(trap, uintptr(fd), uintptr(ptr), uintptr(len(p)), flags, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// maxIov bounds one writev: the output queue gathers at most this many
// segments.
const maxIov = 16

func writevFd(fd int, iov [][]byte) (int, error) {
	var vec [maxIov]unix.Iovec
	n := 0
	for _, b := range iov {
		if len(b) == 0 || n == maxIov {
			continue
		}
		vec[n].Base = &b[0]
		vec[n].SetLen(len(b))
		n++
	}
	if n == 0 {
		return 0, nil
	}
	for {
		r, _, e := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&vec[0])), uintptr(n))
		if e == unix.EINTR {
			continue
		}
		if e == unix.EAGAIN {
			return 0, nil
		}
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	}
}
