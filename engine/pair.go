//go:build linux

package engine

import (
	"errors"
	"io"
	"net/netip"
)

// PairInfo is what the inner end of a Pair says of the client whose
// exchange it carries.
type PairInfo struct {
	// Remote and Local are the client connection's addresses
	// (RemoteAddr, LocalAddr).
	Remote, Local netip.AddrPort
	// Secure: the client's connection runs TLS (TLS reports true).
	Secure bool
	// Proto names the protocol the exchange came in ("HTTP/2.0"): Proto
	// reports it, for logs.
	Proto string
}

// Pair makes a connected pair of in-memory connections on loop l: inner,
// whose handler accept returns as for a client that connected as info
// says, and outer, whose handler is h. A codec that carries several
// exchanges on one client connection (HTTP/2) gives each to a role
// through a pair: the role reads and writes inner as it would a client,
// the codec outer. They behave as the two ends of a socket (output
// queues, watermarks and OnDrain, half-close and EOF, SendFile, timers),
// with no descriptor and no system call: bytes written to one end wait,
// up to pipeBuffer, in the other's input, which its handler gets after
// the current event. Fd is a negative number of each end's own (a name,
// not a descriptor). Neither counts against a listener's or the engine's
// client cap: the client's connection does. outer's OnOpen comes first,
// then inner's. accept returning nil closes both, calls neither handler,
// and makes Pair return an error. Runs on the loop.
func (l *Loop) Pair(info PairInfo, accept func(*Conn) Handler, h Handler) (inner, outer *Conn, err error) {
	outer = l.pipeConn(info, h)
	inner = l.pipeConn(info, nil)
	inner.secure = info.Secure
	inner.pipe.proto = info.Proto
	inner.pipe.peer, outer.pipe.peer = outer, inner
	ih := accept(inner)
	if ih == nil {
		// Neither handler hears of it: the caller learns from the error.
		inner.h, outer.h = nopHandler{}, nopHandler{}
		inner.destroy(nil)
		outer.destroy(nil)
		return nil, nil, errPairRefused
	}
	inner.h = ih
	h.OnOpen(outer)
	if !inner.closed {
		ih.OnOpen(inner)
	}
	return inner, outer, nil
}

// DialPair makes a pair as Pair does, for a connection a role dials
// rather than accepts (an HTTP/2 stream to a backend): inner's handler is
// h, outer's is oh, inner's remote address is info.Remote, and no OnOpen
// is called. The one that makes the pair calls Open on inner once what it
// stands for is up (the role then writes its request), or aborts it
// (the role's OnClose hears that the dial failed). Runs on the loop.
func (l *Loop) DialPair(info PairInfo, h, oh Handler) (inner, outer *Conn) {
	outer = l.pipeConn(info, oh)
	inner = l.pipeConn(info, h)
	inner.secure = info.Secure
	inner.pipe.proto = info.Proto
	inner.pipe.peer, outer.pipe.peer = outer, inner
	inner.pipe.unopened, outer.pipe.unopened = true, true
	return inner, outer
}

// Open calls the OnOpen of a pair's end made by DialPair, once; nothing
// for any other connection.
func (c *Conn) Open() {
	if c.pipe == nil || !c.pipe.unopened || c.closed {
		return
	}
	c.pipe.unopened = false
	c.h.OnOpen(c)
}

// PeerClosed reports whether the other side shut down its write side or
// closed, as far as the connection knows now: at once for a Pair's end
// (EOF may come only after its input is read), at EOF for a socket.
func (c *Conn) PeerClosed() bool {
	if c.pipe != nil {
		return c.pipe.eof
	}
	return c.eof
}

// Proto is the protocol a Pair's inner end carries an exchange of
// (PairInfo.Proto); "" for a socket.
func (c *Conn) Proto() string {
	if c.pipe == nil {
		return ""
	}
	return c.pipe.proto
}

var errPairRefused = errors.New("engine: pair refused")

// ErrPeerClosed is a write's error on a pair's end whose other end is
// closed (a socket's ECONNRESET).
var ErrPeerClosed = errors.New("engine: the other end of the pair is closed")

// pipeBuffer is what one end of a pair holds unread, as a socket's
// receive buffer: past it, the writer's output queues (and Full, OnDrain
// apply).
const pipeBuffer = 64 << 10

// pipeEnd is a pair's end: its peer, and what the peer did to it.
type pipeEnd struct {
	peer *Conn
	// eof: the peer shut down its write side or closed; EOF comes once
	// the input is consumed. gone: the peer is closed, writes fail.
	eof, gone bool
	// held is the input the handler left unconsumed at its last OnData:
	// as a socket's, it waits in the connection's buffer, apart from the
	// pipeBuffer the peer may fill (room).
	held int
	// local is LocalAddr: the client connection's; proto is Proto.
	local netip.AddrPort
	proto string
	// unopened: made by DialPair, its OnOpen not called yet (Open);
	// reset: it was aborted, which its peer hears as a socket's reset.
	unopened, reset bool
}

// pipeKeep is the largest input buffer a pair's end keeps once its
// handler consumed it all, for the next write (as a socket reuses its
// loop's read buffer); a larger one goes, an idle end holds little.
const pipeKeep = 4 << 10

// room is what the peer may still write into c's input.
func (c *Conn) room() int { return pipeBuffer - (len(c.in) - c.pipe.held) }

// pipeConn makes one end of a pair.
func (l *Loop) pipeConn(info PairInfo, h Handler) *Conn {
	c := newConn(l, -int(l.eng.pipeIDs.Add(1)), h)
	c.remote = info.Remote
	c.pipe = &pipeEnd{local: info.Local}
	l.conns++
	l.eng.conns.Add(1)
	if l.pipes == nil {
		l.pipes = map[*Conn]struct{}{}
	}
	l.pipes[c] = struct{}{}
	return c
}

// pipeSend puts what fits of p in the peer's input and has the peer read
// it after the current event; it returns the bytes taken.
func (c *Conn) pipeSend(p []byte) (int, error) {
	pe := c.pipe
	r := pe.peer
	if pe.gone || r == nil || r.closed {
		return 0, ErrPeerClosed
	}
	n := min(len(p), r.room())
	if n <= 0 {
		return 0, nil
	}
	r.in = append(r.in, p[:n]...)
	r.Kick()
	return n, nil
}

// pipeRead is a pair end's read: its input (what the peer wrote) to the
// handler once, then the EOF when the peer shut down and the input is
// consumed; the peer may then write what it queued. It runs as the
// deferred task of Kick, as a socket's read runs on its event.
func (c *Conn) pipeRead() {
	if c.closed || c.closing || c.paused {
		return
	}
	more := false // bytes came during OnData: read again
	if len(c.in) > 0 {
		data := c.in
		c.in, c.pipe.held = nil, 0 // bytes the peer writes during OnData land here
		used := min(max(c.h.OnData(c, data), 0), len(data))
		if c.closed || c.closing {
			c.in, c.pipe.held = nil, 0
			return
		}
		rest := data[used:]
		c.pipe.held = len(rest)
		if len(c.in) > 0 {
			c.in = append(rest[:len(rest):len(rest)], c.in...)
			more = true
			c.Kick()
		} else if len(rest) > 0 {
			c.in = data[:copy(data, rest)]
		} else if cap(data) <= pipeKeep {
			c.in = data[:0] // the next write lands here: no allocation per exchange
		}
		if len(rest) > c.loop.eng.cfg.MaxInbound {
			c.destroy(ErrInboundOverflow) // as deliver does for a socket
			return
		}
	}
	// As a socket's read returns 0 once its buffer is empty: the EOF
	// comes after the input was offered, consumed or not, and after what
	// the handler asked to have again (Kick).
	if !more && !c.kicked && c.pipe.eof && !c.eof && !c.paused && !c.closing && !c.closed {
		c.eof = true
		c.h.OnEOF(c)
		if c.closed {
			return
		}
	}
	if c.pipe.gone && !c.out.empty() {
		c.flush(true) // what it queued cannot go: a socket's reset (ErrPeerClosed)
		return
	}
	// Room in this end: what the peer queued goes on (its OnDrain may
	// follow, as after a socket's EPOLLOUT).
	if p := c.pipe.peer; p != nil && !p.closed && !p.out.empty() && c.room() > 0 {
		p.flush(true)
	}
}

// pipeHangUp tells the peer that c shut down its write side (EOF once the
// peer consumed its input), or closed (gone: its writes fail too). An
// Abort is a socket's reset: the peer closes at once with ErrPeerClosed
// (a role waiting for its backend's answer to a stream the client reset
// learns of it now, not when it writes; a half-close would have let it
// answer). A close is not: a peer that paused its reading gets what is
// in its input, then the EOF, when it reads again, as from a socket.
func (c *Conn) pipeHangUp(gone bool) {
	p := c.pipe.peer
	if p == nil || p.closed {
		return
	}
	p.pipe.eof = true
	if gone {
		p.pipe.gone = true
		c.pipe.peer = nil
		if p.closing {
			p.destroy(nil) // it was only waiting for its queue to go
			return
		}
		if c.pipe.reset && !c.loop.stopped.Load() {
			p.destroy(ErrPeerClosed)
			return
		}
	}
	p.Kick()
}

// flushPipe moves queued output into the peer's input, as much as it
// holds: bytes as they are, file regions read. It reports progress, and
// ErrPeerClosed when the peer is gone.
func (q *outQueue) flushPipe(l *Loop, c *Conn) (bool, error) {
	progress := false
	for !q.empty() {
		s := &q.segs[q.head]
		if s.f != nil {
			if s.n == 0 {
				q.pop(l)
				continue
			}
			p := c.pipe.peer
			if c.pipe.gone || p == nil || p.closed {
				return progress, ErrPeerClosed
			}
			room := int64(p.room())
			if room <= 0 {
				return progress, nil
			}
			// Not the loop's read buffer: a handler may be reading its
			// socket's input from it while it queues this file.
			if l.pipeBuf == nil {
				l.pipeBuf = make([]byte, 64<<10)
			}
			buf := l.pipeBuf[:min(int64(len(l.pipeBuf)), room, s.n)]
			n, err := s.f.ReadAt(buf, s.off)
			if n == 0 {
				if err == nil {
					return progress, nil
				}
				if err != io.EOF {
					return progress, err // as sendfile's error ends a socket
				}
				q.pop(l) // the file is shorter than promised: the rest dropped
				continue
			}
			if _, err := c.pipeSend(buf[:n]); err != nil {
				return progress, err
			}
			progress = true
			q.sentFile(l, int64(n))
			continue
		}
		n, err := c.pipeSend(s.b)
		if err != nil {
			return progress, err
		}
		if n == 0 {
			return progress, nil
		}
		progress = true
		q.sentBytes(l, n)
	}
	return progress, nil
}
