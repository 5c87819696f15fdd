package proxy

import (
	"slices"
	"strconv"
	"time"

	"github.com/plb/plb/engine"
	"github.com/plb/plb/http"
)

// fetchState is a fetch connection's state.
type fetchState uint8

// Fetch connection states.
const (
	fcConnecting fetchState = iota
	fcIdle
	fcHead // request sent, reading the response head
	fcBody // forwarding the body
	fcDone // closing
)

// fetchConn is one connection fetching reproxied URLs. Every method runs
// on its loop.
type fetchConn struct {
	m      *Reproxy
	h      *reproxyHost
	conn   *engine.Conn
	cl     *client
	state  fetchState
	reused bool // it served a request before
	got    bool // a response byte arrived

	parser http.Parser
	resp   http.ResponseHead
	bodyRelay
	keepAlive bool
	clientKA  bool
	kaTimeout int
	scratch   []byte
}

// start sends cl's request for u.
func (fc *fetchConn) start(cl *client, u *reproxyURL) {
	fc.cl = cl
	cl.rp.fetch = fc
	fc.state = fcHead
	fc.got = false
	fc.parser.Reset()
	req := cl.rp.request()
	b := fc.scratch[:0]
	if cl.isHEAD {
		b = append(b, "HEAD "...)
	} else {
		b = append(b, "GET "...)
	}
	b = append(b, u.Path...)
	b = append(b, " HTTP/1.0\r\nConnection: keep-alive\r\n"...)
	if rg := req.Get("Range"); len(rg) > 0 {
		b = appendField(b, []byte("Range"), rg)
	}
	if host := reqHost(req); len(host) > 0 {
		b = appendField(b, []byte("Host"), host)
	}
	b = append(b, "\r\n"...)
	fc.scratch = b
	to := cl.st.Svc.BackendTimeout
	if to <= 0 {
		to = 60 * time.Second
	}
	fc.conn.SetTimeout(to)
	fc.conn.ResumeRead()
	fc.conn.Write(b) // a failure closes the connection: OnClose goes on
}

// detach ends the connection's tie to its client.
func (fc *fetchConn) detach() *client {
	cl := fc.cl
	if cl != nil {
		cl.rp.fetch = nil
		fc.cl = nil
	}
	return cl
}

func (fc *fetchConn) OnOpen(c *engine.Conn) {
	h := fc.h
	h.connecting--
	h.counts.connecting.Add(-1)
	h.open++
	c.SetTimeout(0)
	fc.m.bored(fc)
}

func (fc *fetchConn) OnData(c *engine.Conn, data []byte) int {
	cl := fc.cl
	n := fc.onData(c, data)
	if cl != nil {
		cl.flush()
	}
	return n
}

func (fc *fetchConn) onData(c *engine.Conn, data []byte) int {
	if fc.state != fcHead && fc.state != fcBody {
		// Idle: a server must not talk unasked.
		fc.state = fcDone
		c.Close()
		return len(data)
	}
	if fc.cl == nil {
		fc.state = fcDone
		c.Abort(errClientGone)
		return len(data)
	}
	if fc.state == fcHead {
		return fc.readHead(data)
	}
	return fc.forward(data)
}

// acceptable reports whether r may be given to the client: 2xx or 416,
// of the expected size when one was given (for a 206 or 416, the complete
// length its Content-Range states).
func acceptable(r *http.ResponseHead, expected int64) bool {
	if !(r.Status >= 200 && r.Status <= 299 || r.Status == 416) {
		return false
	}
	if expected <= 0 {
		return true
	}
	if r.Status == 206 || r.Status == 416 {
		n, ok := contentRangeTotal(r.Get("Content-Range"))
		return ok && n == expected
	}
	return r.ContentLength == expected
}

// readHead reads the response head; the client is there (onData).
func (fc *fetchConn) readHead(data []byte) int {
	cl := fc.cl
	c := fc.conn
	fc.got = true
	if len(data) == 0 {
		return 0
	}
	n, err := fc.parser.ParseResponse(data, &fc.resp)
	if err != nil {
		fc.failURL(errBadResponse)
		return len(data)
	}
	if n == 0 {
		return 0
	}
	r := &fc.resp
	if r.Status >= 100 && r.Status < 200 && r.Status != 101 {
		fc.parser.Reset() // interim: read the final response
		return n + fc.readHead(data[n:])
	}
	if !acceptable(r, cl.rp.expected) {
		fc.failURL(errBadResponse)
		return len(data)
	}
	fc.mode = r.BodyMode(cl.isHEAD)
	fc.left = r.ContentLength
	fc.chunks.Reset()
	fc.dechunk = false
	fc.keepAlive = r.KeepAlive(cl.isHEAD)
	fc.kaTimeout = r.KeepAliveTimeout
	ka := cl.reproxyKeepAlive()
	switch fc.mode {
	case http.BodyChunked:
		if cl.minor == 0 {
			fc.dechunk, ka = true, false
		}
	case http.BodyUntilClose:
		ka = false
	}
	fc.clientKA = ka
	cl.write(cl.reproxyURLHead(r, fc.mode == http.BodyChunked && !fc.dechunk, ka))
	fc.state = fcBody
	c.SetTimeout(cl.st.Svc.IdleTimeout)
	if fc.mode == http.BodyNone || fc.mode == http.BodyLength && fc.left == 0 {
		if n < len(data) || fc.mode == http.BodyNone {
			// Bytes after the response are never the next one; and
			// after one with no body by rule (HEAD, 204, 304) a body
			// sent anyway may still be on its way: not reused.
			fc.keepAlive = false
		}
		fc.finish()
		return n
	}
	return n + fc.forward(data[n:])
}

// forward relays body bytes to the client, who is there (onData).
func (fc *fetchConn) forward(data []byte) int {
	cl := fc.cl
	c := fc.conn
	if len(data) == 0 {
		return 0
	}
	used, done, err := fc.relay(cl, data)
	if err != nil {
		fc.abortClient(err)
		return len(data)
	}
	if done {
		if used < len(data) {
			fc.keepAlive = false // bytes past the response: never the next one
		}
		fc.finish()
		return len(data)
	}
	c.SetTimeout(cl.st.Svc.IdleTimeout)
	if c.Closing() {
		return used
	}
	if lim := cl.st.Svc.BufferSizeReproxyURL; lim > 0 && cl.rs != nil && int64(cl.conn.Buffered()+len(cl.rs.pend)) > lim {
		// buffer_size_reproxy_url: hold the (event-based, cheap to keep
		// waiting) server rather than buffer for a slow client.
		c.PauseRead()
		cl.conn.NotifyEmpty() // the client's OnDrain resumes it
	} else if cl.conn.Full() {
		c.PauseRead() // the client's OnDrain resumes it
	}
	return used
}

// finish ends a fetched response: the connection serves the next client
// or idles, the client goes on.
func (fc *fetchConn) finish() {
	cl := fc.detach()
	ka := fc.clientKA
	cl.flush()
	if fc.keepAlive && !fc.conn.Closing() {
		fc.m.bored(fc)
	} else {
		fc.state = fcDone
		fc.conn.Close()
	}
	cl.responseDone(ka)
}

// failURL drops a connection whose response cannot be used (bad, not
// 2xx, not the expected size): the client tries its next URL.
func (fc *fetchConn) failURL(err error) {
	cl := fc.detach()
	fc.state = fcDone
	fc.conn.Abort(err)
	if cl != nil {
		cl.reproxyNext()
	}
}

// retryOrNext: the connection ended before a response. A kept-alive one
// the server had closed is retried once on a fresh connection; otherwise
// the client tries its next URL.
func (fc *fetchConn) retryOrNext(cl *client) {
	rp := cl.rp
	if fc.reused && !fc.got && !rp.retried && !cl.conn.Closing() {
		rp.retried = true
		fc.m.request(cl.conn.Loop(), cl, &rp.urls[rp.cur])
		return
	}
	cl.reproxyNext()
}

// abortClient ends a response cut in its body: the client must see a
// broken response, never a complete looking one.
func (fc *fetchConn) abortClient(err error) {
	cl := fc.detach()
	fc.state = fcDone
	fc.conn.Abort(err)
	if cl != nil {
		cl.setState(clClosing)
		cl.conn.Abort(err)
	}
}

func (fc *fetchConn) OnEOF(c *engine.Conn) {
	switch fc.state {
	case fcBody:
		if fc.mode == http.BodyUntilClose {
			fc.keepAlive = false
			fc.finish()
			return
		}
		fc.abortClient(errBadResponse)
	case fcHead:
		cl := fc.detach()
		fc.state = fcDone
		c.Abort(errBadResponse)
		if cl != nil {
			fc.retryOrNext(cl)
		}
	default:
		fc.state = fcDone
		c.Close()
	}
}

func (fc *fetchConn) OnDrain(c *engine.Conn) {}

func (fc *fetchConn) OnTimeout(c *engine.Conn) {
	switch fc.state {
	case fcHead:
		fc.failURL(engine.ErrTimeout)
	case fcBody:
		fc.abortClient(engine.ErrTimeout)
	default:
		fc.state = fcDone
		c.Close()
	}
}

func (fc *fetchConn) OnClose(c *engine.Conn, err error) {
	h := fc.h
	l := c.Loop()
	h.counts.conns.Add(-1)
	if fc.state == fcConnecting {
		h.connecting--
		h.counts.connecting.Add(-1)
		fc.state = fcDone
		fc.m.connectFailed(l, h)
		fc.m.spawn(l, h)
		fc.m.gc(l, h)
		return
	}
	h.open--
	if i := slices.Index(h.idle, fc); i >= 0 {
		h.idle = slices.Delete(h.idle, i, i+1)
		h.counts.idle.Add(-1)
	}
	state := fc.state
	fc.state = fcDone
	if cl := fc.detach(); cl != nil {
		if state == fcHead {
			fc.retryOrNext(cl)
		} else {
			cl.setState(clClosing)
			cl.conn.Abort(err)
		}
	}
	fc.m.spawn(l, h) // a place under the cap may have freed up
	fc.m.gc(l, h)
}

// DrainIdle closes the connection if it is idle (graceful shutdown). Runs
// on the loop.
func (fc *fetchConn) DrainIdle(c *engine.Conn) {
	if fc.state == fcIdle {
		c.Close() // OnClose takes it off the idle list
	}
}

// Describe implements engine.Describer: a reproxy fetch connection is a
// Perlbal::BackendHTTP of no service. Runs on the loop.
func (fc *fetchConn) Describe(c *engine.Conn) engine.ConnInfo {
	state := "closed"
	switch fc.state {
	case fcConnecting:
		state = "connecting"
	case fcIdle:
		state = "bored"
	case fcHead:
		state = "wait_res"
	case fcBody:
		state = "xfer_res"
	}
	d := make([]byte, 0, 64)
	if la := c.LocalAddr(); la.IsValid() {
		d = append(d, ": localport="...)
		d = strconv.AppendUint(d, uint64(la.Port()), 10)
	}
	if fc.cl != nil {
		d = append(d, "; client="...)
		d = strconv.AppendInt(d, int64(fc.cl.conn.Fd()), 10)
	}
	d = append(d, "; reproxy; "...)
	d = append(d, state...)
	return engine.ConnInfo{Class: "Perlbal::BackendHTTP", State: state, Detail: string(d)}
}
