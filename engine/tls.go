//go:build linux

package engine

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// TLS on engine connections.
//
// The handshake is CPU-heavy (key exchange, signatures), so it runs on its
// own goroutine, off the loop, over a pipe the loop feeds: raw bytes the
// loop reads are pushed to it, and what the handshake writes is handed back
// to the loop by a Run task. Once the handshake is complete the record
// layer runs on the loop itself: crypto/tls treats a net.Error whose
// Temporary() is true as non-sticky on its read path, so tls.Conn.Read is
// called on the loop over the bytes of the current read and returns
// errWouldBlock when they run out; tls.Conn.Write encrypts into the
// connection's output queue. Handlers see plaintext in OnData and their
// Write, Write2 and SendFile are encrypted; SendFile reads the file and
// encrypts it (no sendfile(2) through TLS), bounded by the high-water mark.
// See docs/tls.md.

// ErrTLSHandshakeTimeout closes a connection whose TLS handshake did not
// complete within tlsHandshakeTimeout.
var ErrTLSHandshakeTimeout = errors.New("engine: TLS handshake timeout")

const (
	// tlsHandshakeTimeout bounds a handshake (the handler's own timeouts
	// apply as well).
	tlsHandshakeTimeout = 30 * time.Second
	// tlsMaxPlain is the plaintext of one TLS record: Write2 joins its two
	// parts into one record up to this size.
	tlsMaxPlain = 16 << 10
)

// wouldBlock is what the record layer's reads return when the bytes read
// from the socket are used up: a temporary net.Error, which crypto/tls does
// not keep as the connection's error.
type wouldBlock struct{}

func (wouldBlock) Error() string   { return "engine: would block" }
func (wouldBlock) Timeout() bool   { return false }
func (wouldBlock) Temporary() bool { return true }

// tlsConn is a Conn's TLS state. It is also the net.Conn crypto/tls reads
// and writes: through the handshake pipe while hs is set, on the loop after.
type tlsConn struct {
	c      *Conn
	tc     *tls.Conn
	client bool
	// notTLS answers a client whose first bytes are no TLS record (nil:
	// none); StartTLS.
	notTLS func(first []byte) []byte
	// dead: the handshake failed or was abandoned (Close); nothing more
	// is encrypted.
	dead    bool
	started bool          // the handshake goroutine was started
	hs      *tlsHandshake // the pipe; nil once the handshake completed (ready)
	timer   *Timer        // the handshake timeout
	local   net.Addr
	remote  net.Addr

	// raw holds input read from the socket and not yet taken by
	// crypto/tls: a view of the loop's read buffer during one read, copied
	// to memory of its own when the read leaves some over.
	raw      []byte
	rawOwned bool
	rawEOF   bool // the peer's FIN was read
	// recLeft is what remains to hand to crypto/tls of the record it is
	// reading: Read hands over whole records only, one at a time, so that
	// crypto/tls never holds a partial one and more tells exactly whether
	// a call could return anything (a call that would block costs an
	// allocation inside crypto/tls).
	recLeft int
	// more: crypto/tls may hold plaintext or records not returned yet.
	more bool

	// cork queues what crypto/tls writes instead of writing it at once,
	// so that the records of one Write leave in one writev.
	cork bool
	// pend is output behind the handshake, or behind a file being
	// encrypted: plaintext and file regions, in order. pendMem counts its
	// bytes of memory.
	pend     []tlsPending
	pendMem  int
	notified bool // close_notify queued
}

// tlsPending is plaintext (b) or a file region waiting to be encrypted.
type tlsPending struct {
	b     []byte
	f     *os.File
	off   int64
	n     int64
	owner io.Closer // closed once sent or dropped (SendFileOwned)
}

// tlsHandshake is the pipe between the loop and the handshake goroutine.
type tlsHandshake struct {
	mu   sync.Mutex
	cond sync.Cond
	in   []byte // read by the loop, not yet by the handshake
	// recLeft is what remains of the record being handed to crypto/tls:
	// as after the handshake, Read never hands over bytes of the next
	// record, so that when the handshake ends crypto/tls holds nothing
	// beyond it and in starts at a record boundary.
	recLeft int
	eof     bool   // the peer's FIN: reads end after in
	closed  bool   // the connection is gone: reads and writes fail
	out     []byte // written by the handshake, not yet by the loop
	posted  bool   // a poll task is queued on the loop
	done    bool   // the handshake returned, with err
	err     error
}

// StartTLS makes c a TLS server connection with cfg: the handler sees
// plaintext in OnData and what it writes is encrypted. Call it from the
// listener's OnAccept, before any byte is read or written, or later for a
// STARTTLS: output queued before the call still goes out in clear, and
// input the handler has not consumed must be dropped by it (a client's
// bytes sent in clear after STARTTLS are never TLS records). A handshake
// that fails closes the connection (OnClose gets the error); output the
// handler queues before it completes waits for it. notTLS, when not nil,
// is asked for a reply to a client whose first five bytes are no TLS
// record header (a plain request sent to a TLS port; the protocol's own
// words, written in clear before the close); nil closes such a client
// without a word. Runs on the loop.
func (c *Conn) StartTLS(cfg *tls.Config, notTLS func(first []byte) []byte) {
	c.startTLS(cfg, false)
	if c.tls != nil {
		c.tls.notTLS = notTLS
	}
}

// StartTLSClient makes c a TLS client connection with cfg (its ServerName
// or InsecureSkipVerify must be set): call it right after Dial. OnOpen
// follows once the handshake completed; a handshake that fails or does not
// complete within the dial's timeout counts as a failed connect (OnClose
// with the error, no OnOpen). Runs on the loop.
func (c *Conn) StartTLSClient(cfg *tls.Config) { c.startTLS(cfg, true) }

func (c *Conn) startTLS(cfg *tls.Config, client bool) {
	if c.tls != nil || c.closed || c.closing {
		return
	}
	t := &tlsConn{c: c, client: client, hs: &tlsHandshake{}}
	t.hs.cond.L = &t.hs.mu
	t.remote = net.TCPAddrFromAddrPort(c.remote)
	t.local = net.TCPAddrFromAddrPort(c.LocalAddr())
	if client {
		t.tc = tls.Client(t, cfg)
	} else {
		t.tc = tls.Server(t, cfg)
	}
	c.tls = t
	t.timer = c.loop.AfterFunc(tlsHandshakeTimeout, t.handshakeTimeout)
	if client {
		t.start() // the client speaks first
	}
}

// TLS reports whether c runs TLS (StartTLS or StartTLSClient), or is the
// inner end of a Pair for a client connection that does. Runs on the
// loop.
func (c *Conn) TLS() bool { return c.tls != nil || c.secure }

// TLSConnectionState returns the TLS parameters once the handshake has
// completed; ok is false before, and without TLS. Runs on the loop.
func (c *Conn) TLSConnectionState() (st tls.ConnectionState, ok bool) {
	if c.tls == nil || !c.tls.ready() {
		return st, false
	}
	return c.tls.tc.ConnectionState(), true
}

// ready reports whether the handshake completed: the record layer runs on
// the loop.
func (t *tlsConn) ready() bool { return t.hs == nil }

func (t *tlsConn) start() {
	t.started = true
	go t.handshake(t.hs)
}

// handshake runs on its own goroutine: it must touch nothing but the pipe
// and t.tc (which the loop leaves alone until it learns the outcome).
func (t *tlsConn) handshake(h *tlsHandshake) {
	err := t.tc.Handshake()
	h.mu.Lock()
	h.done, h.err = true, err
	post := !h.posted && !h.closed
	h.posted = true
	h.mu.Unlock()
	if post {
		t.c.loop.Run(t.poll)
	}
}

// push hands raw input (and the peer's FIN) to the handshake and returns
// how many bytes wait in the pipe.
func (h *tlsHandshake) push(p []byte, eof bool) int {
	h.mu.Lock()
	h.in = append(h.in, p...)
	h.eof = h.eof || eof
	n := len(h.in)
	h.mu.Unlock()
	h.cond.Signal()
	return n
}

func (h *tlsHandshake) close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.cond.Broadcast()
}

// Read is crypto/tls reading from the connection: from the pipe (blocking)
// during the handshake, from raw (never blocking) after it.
func (t *tlsConn) Read(p []byte) (int, error) {
	if h := t.hs; h != nil {
		h.mu.Lock()
		defer h.mu.Unlock()
		// Wait for a record header (or any byte of the record begun).
		for (h.recLeft == 0 && len(h.in) < 5 || len(h.in) == 0) && !h.eof && !h.closed {
			h.cond.Wait()
		}
		if h.closed {
			return 0, net.ErrClosed
		}
		if len(h.in) == 0 {
			return 0, io.EOF
		}
		if h.recLeft == 0 {
			h.recLeft = recordSize(h.in)
			if h.recLeft == 0 {
				h.recLeft = len(h.in) // a truncated header at EOF
			}
		}
		n := copy(p[:min(len(p), h.recLeft)], h.in)
		h.in = h.in[n:]
		h.recLeft -= n
		return n, nil
	}
	if t.recLeft == 0 {
		if k := recordLen(t.raw); k > 0 {
			t.recLeft = k
		} else if t.rawEOF && len(t.raw) > 0 {
			t.recLeft = len(t.raw) // a truncated record: crypto/tls reports it
		} else if t.rawEOF {
			return 0, io.EOF
		} else {
			return 0, wouldBlock{}
		}
	}
	n := copy(p, t.raw[:min(t.recLeft, len(t.raw))])
	if n == 0 {
		return 0, wouldBlock{} // the rest of the record is not here yet
	}
	t.raw = t.raw[n:]
	t.recLeft -= n
	return n, nil
}

// recordSize returns the length, header included, of the TLS record whose
// header starts p, or 0 if p does not hold the whole header.
func recordSize(p []byte) int {
	if len(p) < 5 {
		return 0
	}
	return 5 + (int(p[3])<<8 | int(p[4]))
}

// recordLen returns the length of the TLS record at the start of p, header
// included, or 0 if p does not hold all of it.
func recordLen(p []byte) int {
	if n := recordSize(p); n > 0 && len(p) >= n {
		return n
	}
	return 0
}

// readable reports whether a Read of crypto/tls can return something (or
// an EOF) without blocking.
func (t *tlsConn) readable() bool {
	return t.more || t.rawEOF || t.recLeft > 0 || recordLen(t.raw) > 0
}

// Write is crypto/tls writing to the connection: into the pipe during the
// handshake (the loop sends it), into the output queue after it.
func (t *tlsConn) Write(p []byte) (int, error) {
	if h := t.hs; h != nil {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return 0, net.ErrClosed
		}
		h.out = append(h.out, p...)
		post := !h.posted
		h.posted = true
		h.mu.Unlock()
		if post && !t.c.loop.Run(t.poll) {
			return 0, ErrStopped
		}
		return len(p), nil
	}
	c := t.c
	if c.closed {
		return 0, ErrClosed
	}
	if t.cork {
		c.out.appendBytes(c.loop, p)
		return len(p), nil
	}
	if err := c.writeRaw(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close, the addresses and the deadlines complete net.Conn; crypto/tls
// calls only SetWriteDeadline (around close_notify), a no-op here.
func (t *tlsConn) Close() error                     { return nil }
func (t *tlsConn) LocalAddr() net.Addr              { return t.local }
func (t *tlsConn) RemoteAddr() net.Addr             { return t.remote }
func (t *tlsConn) SetDeadline(time.Time) error      { return nil }
func (t *tlsConn) SetReadDeadline(time.Time) error  { return nil }
func (t *tlsConn) SetWriteDeadline(time.Time) error { return nil }

// poll runs on the loop: it sends what the handshake wrote and, once the
// handshake returned, switches the connection to the record layer.
func (t *tlsConn) poll() {
	h := t.hs
	if h == nil {
		return
	}
	h.mu.Lock()
	out := h.out
	h.out = nil
	h.posted = false
	done, err := h.done, h.err
	var rest []byte
	if done {
		rest = h.in
		h.in = nil
		t.recLeft = h.recLeft
	}
	h.mu.Unlock()
	c := t.c
	if c.closed || t.dead {
		return
	}
	if len(out) > 0 {
		if c.writeRaw(out) != nil {
			return
		}
	}
	if done {
		t.handshakeDone(err, rest)
	}
}

func (t *tlsConn) handshakeDone(err error, rest []byte) {
	c := t.c
	t.timer.Stop()
	if err != nil {
		t.dead = true
		var re tls.RecordHeaderError
		if !t.client && t.notTLS != nil && errors.As(err, &re) && re.Conn != nil {
			if reply := t.notTLS(re.RecordHeader[:]); reply != nil {
				c.writeRaw(reply)
			}
		}
		if !c.closed {
			c.destroy(fmt.Errorf("engine: TLS handshake: %w", err))
		}
		return
	}
	t.hs = nil
	t.more = true // the handshake may have read records beyond its own
	if len(rest) > 0 {
		t.raw, t.rawOwned = rest, true
	}
	if t.client && !c.closing { // closed meanwhile: given up, no OnOpen
		c.deadline = 0 // the dial's timeout covered connect and handshake
		c.h.OnOpen(c)
		if c.closed || c.closing {
			return
		}
	}
	if len(t.pend) > 0 {
		c.flush(true)
		if c.closed {
			return
		}
	} else if c.wrShut {
		t.closeNotify()
		c.flush(false)
		if c.closed {
			return
		}
	}
	if !c.paused && !c.closing {
		c.tlsInput()
	}
}

func (t *tlsConn) handshakeTimeout() {
	c := t.c
	if !t.ready() && !c.closed {
		c.destroy(ErrTLSHandshakeTimeout)
	}
}

// tlsRead reads the socket of a TLS connection: raw bytes go to the
// handshake, or through the record layer to OnData.
func (c *Conn) tlsRead() {
	t := c.tls
	l := c.loop
	n, err := readFd(c.fd, l.readBuf)
	if err == unix.EAGAIN {
		return
	}
	if err != nil {
		c.destroy(err)
		return
	}
	if n == 0 {
		t.rawEOF = true
		c.updateInterest()
		if h := t.hs; h != nil {
			h.push(nil, true)
			if !t.started {
				t.start() // fails at once: EOF before a ClientHello
			}
			return
		}
		if t.ready() {
			c.tlsInput()
		}
		return
	}
	if t.dead {
		return
	}
	if h := t.hs; h != nil {
		// Even after Close: output queued behind the handshake waits for it.
		if h.push(l.readBuf[:n], false) > l.eng.cfg.MaxInbound {
			c.destroy(fmt.Errorf("engine: TLS handshake: %w", ErrInboundOverflow))
			return
		}
		if !t.started {
			t.start()
		}
		return
	}
	if c.closing {
		return
	}
	if len(t.raw) > 0 {
		t.raw = append(t.raw, l.readBuf[:n]...)
	} else {
		t.raw, t.rawOwned = l.readBuf[:n], false
	}
	c.tlsInput()
}

// tlsInput decrypts the records available and delivers their plaintext to
// OnData, until the input runs out or the handler pauses or closes.
func (c *Conn) tlsInput() {
	t := c.tls
	l := c.loop
	blk := l.getBlock()
	buf := blk[:0]
	var rerr error
	for !c.paused && !c.closing && !c.closed && !c.eof && t.readable() {
		space := cap(buf) - len(buf)
		n, err := t.tc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			if _, ok := err.(wouldBlock); ok {
				t.more = false
			} else {
				rerr = err
			}
			break
		}
		// Less than asked: the record is drained, and crypto/tls held no
		// other (it is handed one at a time).
		t.more = n == space
		if len(buf) == cap(buf) {
			c.deliverPlain(buf)
			buf = buf[:0]
		}
	}
	if len(buf) > 0 && !c.closed && !c.closing {
		c.deliverPlain(buf)
	}
	l.putBlock(blk)
	if c.closed {
		return
	}
	if len(t.raw) == 0 {
		t.raw, t.rawOwned = nil, false
	} else if !t.rawOwned {
		// A view of the loop's read buffer: keep a copy.
		t.raw, t.rawOwned = append(make([]byte, 0, len(t.raw)), t.raw...), true
	}
	if rerr == nil || c.closing {
		return
	}
	if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
		// close_notify, or the peer's FIN without one: an EOF either way.
		if !c.eof {
			c.eof = true
			c.updateInterest()
			c.h.OnEOF(c)
		}
		return
	}
	c.destroy(fmt.Errorf("engine: TLS: %w", rerr))
}

// deliverPlain hands decrypted bytes to OnData behind any unconsumed input.
func (c *Conn) deliverPlain(p []byte) {
	if len(c.in) == 0 {
		c.deliver(p, true)
		return
	}
	c.in = append(c.in, p...)
	c.deliver(c.in, false)
}

// tlsResume goes on decrypting after ResumeRead or Kick.
func (c *Conn) tlsResume() {
	t := c.tls
	if !t.ready() || c.closed || c.closing || c.paused || c.eof {
		return
	}
	c.tlsInput()
}

// tlsWrite encrypts a then b (b may be nil), or queues them behind the
// handshake or a file being encrypted.
func (c *Conn) tlsWrite(a, b []byte) error {
	t := c.tls
	if t.dead || t.notified {
		return ErrClosed // after CloseWrite nothing more can be encrypted
	}
	if !t.ready() || len(t.pend) > 0 {
		t.queue(a)
		t.queue(b)
		c.afterQueue()
		return nil
	}
	wasEmpty := c.out.empty()
	t.cork = true
	var err error
	if len(b) > 0 && len(a)+len(b) <= tlsMaxPlain {
		// One record for both parts (a head and a small body).
		blk := c.loop.getBlock()
		blk = append(append(blk, a...), b...)
		_, err = t.tc.Write(blk)
		c.loop.putBlock(blk)
	} else {
		_, err = t.tc.Write(a)
		if err == nil && len(b) > 0 {
			_, err = t.tc.Write(b)
		}
	}
	if err != nil {
		t.cork = false
		c.destroy(err)
		return err
	}
	return c.tlsCommit(wasEmpty)
}

// tlsCommit ends a corked write: the records queued go out now if nothing
// was queued before them.
func (c *Conn) tlsCommit(wasEmpty bool) error {
	c.tls.cork = false
	if wasEmpty && !c.connecting && !c.out.empty() {
		if _, err := c.out.flush(c.loop, c.fd); err != nil {
			c.destroy(err)
			return err
		}
	}
	c.afterQueue()
	return nil
}

func (t *tlsConn) queue(p []byte) {
	if len(p) == 0 {
		return
	}
	if n := len(t.pend); n > 0 && t.pend[n-1].f == nil {
		t.pend[n-1].b = append(t.pend[n-1].b, p...)
	} else {
		t.pend = append(t.pend, tlsPending{b: append([]byte(nil), p...)})
	}
	t.pendMem += len(p)
}

// tlsSendFile queues a file region to be read and encrypted.
func (c *Conn) tlsSendFile(f *os.File, off, n int64, owner io.Closer) error {
	t := c.tls
	if t.dead {
		if owner != nil {
			owner.Close()
		}
		return ErrClosed
	}
	t.pend = append(t.pend, tlsPending{f: f, off: off, n: n, owner: owner})
	if t.ready() && len(t.pend) == 1 {
		c.flush(false)
		if c.closed {
			return ErrClosed
		}
	}
	c.updateInterest()
	return nil
}

// tlsPump encrypts pending output into the output queue until the queue
// passes the high-water mark; once nothing is pending it queues the
// close_notify a Close or CloseWrite asked for.
func (c *Conn) tlsPump() error {
	t := c.tls
	l := c.loop
	t.cork = true
	defer func() { t.cork = false }()
	for len(t.pend) > 0 && c.out.mem <= c.hi {
		p := &t.pend[0]
		if p.f == nil {
			_, err := t.tc.Write(p.b)
			t.pendMem -= len(p.b)
			t.popPend()
			if err != nil {
				return err
			}
			continue
		}
		if p.n <= 0 {
			t.popPend()
			continue
		}
		blk := l.getBlock()
		k := min(int64(cap(blk)), p.n)
		m, rerr := p.f.ReadAt(blk[:k], p.off)
		if m > 0 {
			if _, err := t.tc.Write(blk[:m]); err != nil {
				l.putBlock(blk)
				return err
			}
			p.off += int64(m)
			p.n -= int64(m)
		}
		l.putBlock(blk)
		if rerr != nil || m == 0 {
			t.popPend() // file shorter than promised: drop the rest, as sendfile does
		}
	}
	if c.closing || c.wrShut {
		t.closeNotify()
	}
	return nil
}

// tlsPumpFlush alternates pump and flush until the socket is full or
// nothing is pending.
func (c *Conn) tlsPumpFlush() (bool, error) {
	t := c.tls
	progress := false
	for len(t.pend) > 0 && c.out.mem <= c.hi {
		if err := c.tlsPump(); err != nil {
			return progress, err
		}
		p, err := c.out.flush(c.loop, c.fd)
		progress = progress || p
		if err != nil {
			return progress, err
		}
		if !c.out.empty() {
			break
		}
	}
	return progress, nil
}

func (t *tlsConn) popPend() {
	p := &t.pend[0]
	if p.owner != nil {
		p.owner.Close()
	}
	*p = tlsPending{}
	t.pend = t.pend[1:]
	if len(t.pend) == 0 {
		t.pend = nil
	}
}

// closeNotify sends (or queues, when output is queued or corked) the
// close_notify alert, once, when the handshake is over and nothing waits to
// be encrypted (else tlsPump sends it once pend is empty).
func (t *tlsConn) closeNotify() {
	if t.notified || !t.ready() || len(t.pend) > 0 {
		return
	}
	t.notified = true
	t.tc.CloseWrite()
}

// tlsClosing is Close on a TLS connection: a handshake in progress with
// nothing queued behind it is abandoned; otherwise close_notify follows the
// pending output (after the handshake).
func (c *Conn) tlsClosing() {
	t := c.tls
	if !t.ready() && len(t.pend) == 0 {
		t.dead = true
		t.hs.close()
		t.dropPend()
		return
	}
	t.closeNotify()
}

// handshaking reports whether the handshake still needs input (read even
// when closing or paused).
func (t *tlsConn) handshaking() bool { return !t.ready() && !t.dead && !t.rawEOF }

// drained reports whether nothing waits to be encrypted (and the
// handshake is over, one way or the other).
func (t *tlsConn) drained() bool { return (t.ready() || t.dead) && len(t.pend) == 0 }

func (t *tlsConn) dropPend() {
	for len(t.pend) > 0 {
		t.popPend()
	}
	t.pendMem = 0
}

// release frees everything on destroy.
func (t *tlsConn) release() {
	t.dead = true
	if t.hs != nil {
		t.hs.close()
	}
	if t.timer != nil {
		t.timer.Stop()
	}
	t.dropPend()
	t.raw = nil
}
