//go:build linux

package engine

// A connection's side of the loop: what its readiness events do (read,
// deliver to the handler, flush, finish a dial) and the interest it keeps
// in the poller. The handler's calls are in conn.go; the system calls in
// sys_linux.go.

// updateInterest tells the poller what c waits for now: writable while a
// dial is pending or output is queued, readable unless paused, at EOF or
// closing (a lingering connection reads to discard).
func (c *Conn) updateInterest() {
	if c.closed || c.pipe != nil {
		return // a pair's end is not polled: its peer's writes kick it
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
	if err == errAgain {
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
	var progress bool
	var err error
	if c.pipe != nil {
		progress, err = c.out.flushPipe(c.loop, c)
	} else {
		progress, err = c.out.flush(c.loop, c.fd)
	}
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
		if err := connectErrFd(c.fd); err != nil {
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
