package smtp

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
	"github.com/plb/plb/health"
	"github.com/plb/plb/pool"
	"github.com/plb/plb/smtp/proxyproto"
	"github.com/plb/plb/smtp/reply"
)

// upstream is one backend attempt of a session: its connection's handler.
type upstream struct {
	s      *session
	node   *pool.Node
	pool   *pool.Pool // node's, told of the take and the release
	conn   *engine.Conn
	state  upState
	dialed time.Time
	// released: the node was released (pool.Release) already.
	released bool
}

func (u *upstream) OnOpen(c *engine.Conn) {
	s := u.s
	now := c.Loop().Now()
	s.connDur = now.Sub(u.dialed)
	u.node.Connects.Add(1)
	u.node.LastConnect.Store(now.Unix())
	st := s.st
	switch fwd := st.Svc.ClientIPForwarding; fwd {
	case config.ForwardProxyV1, config.ForwardProxyV2:
		appendHeader := proxyproto.AppendV2
		if fwd == config.ForwardProxyV1 {
			appendHeader = proxyproto.AppendV1
		}
		s.scratch = appendHeader(s.scratch[:0], s.client.RemoteAddr(), s.client.LocalAddr())
		c.Write(s.scratch)
	}
	if !st.isSMTP() {
		s.commit(u, nil)
		return
	}
	u.state = upBanner
	c.SetTimeout(st.Svc.BannerTimeout)
}

func (u *upstream) OnData(c *engine.Conn, data []byte) int {
	s := u.s
	switch u.state {
	case upRelay:
		if s.inspect {
			return u.serverReplies(c, data)
		}
		if err := s.client.Write(data); err != nil {
			return len(data)
		}
		s.bytesOut += int64(len(data))
		s.svc.Stats.BytesOut.Add(int64(len(data)))
		if s.serverTurn {
			s.serverTurn = false
			s.client.SetTimeout(s.st.Svc.ClientTimeout)
		}
		if s.client.Full() {
			c.PauseRead() // until the client drains (session.OnDrain)
		}
		return len(data)
	case upBanner, upEHLO, upXClient:
		code, n, err := reply.Parse(data)
		if err != nil {
			u.fail(fmt.Errorf("%s: %w", u.phase(), err))
			return len(data)
		}
		if n == 0 {
			return 0
		}
		return u.reply(c, code, data, n)
	}
	return len(data)
}

// phase names what the attempt waits for, in failure reasons.
func (u *upstream) phase() string {
	switch u.state {
	case upEHLO:
		return "EHLO reply"
	case upXClient:
		return "XCLIENT reply"
	}
	return "greeting"
}

// reply handles a complete reply (data[:n]) before the splice: the
// greeting, then with xclient the EHLO and XCLIENT replies. It returns
// the bytes consumed.
func (u *upstream) reply(c *engine.Conn, code int, data []byte, n int) int {
	s := u.s
	switch u.state {
	case upBanner:
		if code/100 != 2 {
			u.fail(fmt.Errorf("greeting %d", code))
			return len(data)
		}
		if s.st.Svc.ClientIPForwarding != config.ForwardXClient {
			s.commit(u, data) // the greeting, and anything after it
			return len(data)
		}
		u.state = upEHLO
		s.scratch = append(append(append(s.scratch[:0], "EHLO "...), s.st.Hostname...), "\r\n"...)
		c.Write(s.scratch)
		return n
	case upEHLO:
		if code/100 != 2 {
			u.fail(fmt.Errorf("EHLO %d", code))
			return len(data)
		}
		if !reply.HasExtension(data[:n], []byte("XCLIENT")) {
			// Relaying without it would show every client as plb's own
			// address to the backend (which may trust it): refuse.
			u.fail(errXClientNotOffered)
			return len(data)
		}
		u.state = upXClient
		s.scratch = AppendXClient(s.scratch[:0], s.client.RemoteAddr())
		c.Write(s.scratch)
		return n
	case upXClient:
		// Postfix resets the session and greets again with 220: that is
		// the greeting the client gets.
		if code != 220 {
			u.fail(fmt.Errorf("XCLIENT %d", code))
			return len(data)
		}
		s.commit(u, data)
		return len(data)
	}
	return len(data)
}

// AppendXClient appends the XCLIENT command for a client at addr:
// "XCLIENT NAME=[UNAVAILABLE] ADDR=a PORT=p\r\n", IPv6 addresses written
// "IPV6:addr" (Postfix's XCLIENT_README). plb does no reverse lookup, so
// NAME says so (as nginx without a resolver); without NAME the backend
// would keep plb's own name for the client.
func AppendXClient(dst []byte, addr netip.AddrPort) []byte {
	a := addr.Addr().Unmap()
	dst = append(dst, "XCLIENT NAME=[UNAVAILABLE] ADDR="...)
	if a.Is6() {
		dst = append(dst, "IPV6:"...)
		a = a.WithZone("")
	}
	dst = a.AppendTo(dst)
	dst = append(dst, " PORT="...)
	dst = strconv.AppendUint(dst, uint64(addr.Port()), 10)
	return append(dst, "\r\n"...)
}

func (u *upstream) OnEOF(c *engine.Conn) {
	s := u.s
	switch u.state {
	case upRelay:
		s.serverEOF = true
		if s.term == "" {
			s.term = termServerClosed
		}
		if s.st.isSMTP() {
			// An SMTP server that shuts down is done (after 221, or 421):
			// the client gets what was sent, then the close.
			s.finish(s.term)
			return
		}
		s.client.CloseWrite()
		s.maybeDone()
	case upBanner, upEHLO, upXClient:
		u.fail(fmt.Errorf("%s: connection closed", u.phase()))
	}
}

func (u *upstream) OnDrain(c *engine.Conn) {
	if u.state == upRelay {
		u.s.client.ResumeRead()
	}
}

func (u *upstream) OnTimeout(c *engine.Conn) {
	switch u.state {
	case upBanner, upEHLO, upXClient:
		u.fail(fmt.Errorf("%s: timeout", u.phase()))
	}
}

func (u *upstream) OnClose(c *engine.Conn, err error) {
	s := u.s
	u.release()
	switch u.state {
	case upConnect:
		u.fail(err)
	case upBanner, upEHLO, upXClient:
		u.fail(fmt.Errorf("%s: %s", u.phase(), health.Describe(err)))
	case upRelay:
		u.state = upFailed
		if err != nil {
			s.finish(termServerError)
		} else {
			s.finish(termServerClosed)
		}
	}
}

// release takes the attempt off its node's active count, once.
func (u *upstream) release() {
	if !u.released {
		u.released = true
		u.pool.Release(u.node)
	}
}

// errXClientNotOffered fails a backend whose EHLO reply lacks XCLIENT.
var errXClientNotOffered = errors.New("XCLIENT not offered")

// fail gives up this attempt (a failure of its node, err saying why) and
// tries the next.
func (u *upstream) fail(err error) {
	if u.state == upFailed {
		return
	}
	s := u.s
	u.state = upFailed
	u.release()
	if s.up == u {
		s.up = nil
	}
	if u.conn != nil {
		u.conn.Abort(nil) // a no-op once closed
	}
	if s.state != ssConnecting {
		return
	}
	s.nodeFailed(u.node, err)
	s.tryNext()
}
