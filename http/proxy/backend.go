package proxy

import (
	"crypto/tls"
	"errors"
	"time"

	"github.com/plb/plb/engine"
	"github.com/plb/plb/health"
	"github.com/plb/plb/http"
	"github.com/plb/plb/http/handoff"
	"github.com/plb/plb/pool"
)

// Backend states.
const (
	beConnecting = iota
	beVerifying  // OPTIONS probe sent
	beReady      // connected (verified), waiting for a client to attach
	beHead       // request sent, reading the response head
	beBody       // forwarding the response body
	beTunnel     // upgraded
	beIdle       // in the idle list
)

var (
	errBadResponse = errors.New("proxy: malformed backend response")
	errVerify      = errors.New("proxy: backend failed verification")
)

// backend is one connection to a node. Every method runs on its loop.
type backend struct {
	svc    *Service
	conn   *engine.Conn
	node   *pool.Node
	pool   *pool.Pool
	client *client
	state  int
	reused bool
	ahead  bool // dialed for connect_ahead, not for a client
	// pending: connecting or verifying, counted in Stats.Connecting.
	pending bool
	uses    int

	parser http.Parser
	resp   http.ResponseHead
	bodyRelay
	keepAlive bool // backend may be reused after this response
	clientKA  bool // client keeps the connection after this response
	kaTimeout int
	got       bool // any response byte arrived
	scratch   []byte
	// tls is the backend_ssl config the connection was dialed with (nil:
	// plain); an idle connection of another one is not reused.
	tls *tls.Config
}

// backendTLSFor is the TLS config for a connection to node: without a
// configured server name, the node's IP is what its certificate must name.
func backendTLSFor(tc *tls.Config, node *pool.Node) *tls.Config {
	if tc.ServerName != "" || tc.InsecureSkipVerify {
		return tc
	}
	c := tc.Clone()
	c.ServerName = node.Addr.Addr().String()
	return c
}

func dialBackend(svc *Service, st *Settings, l *engine.Loop, node *pool.Node) (*backend, error) {
	be := &backend{svc: svc, node: node, pool: st.Pool}
	node.Attempts.Add(1)
	node.LastAttempt.Store(l.Now().Unix())
	timeout := st.Svc.ConnectTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	c, err := l.Dial(node.Addr, be, timeout)
	if err != nil {
		return nil, err
	}
	if tc := st.BackendTLS; tc != nil {
		// backend_ssl: OnOpen follows the handshake, a failed one counts
		// as a failed connect (the next node is tried).
		be.tls = tc
		c.StartTLSClient(backendTLSFor(tc, node))
	}
	be.conn = c
	be.pending = true
	svc.backendOpened(l)
	svc.Stats.Backends.Add(1)
	svc.Stats.Connecting.Add(1)
	return be, nil
}

func (be *backend) OnOpen(c *engine.Conn) {
	be.node.Connects.Add(1)
	be.node.LastConnect.Store(c.Loop().Now().Unix())
	// A connect alone does not reset the failure run: a node that accepts
	// and then times out or answers garbage must still go down.
	cl := be.client
	if cl == nil && !be.ahead {
		c.Close()
		return
	}
	st := be.svc.Settings()
	if cl != nil {
		st = cl.st
	}
	c.SetWatermarks(int(max(st.Svc.BufferSize, 64<<10)), -1)
	if st.Svc.VerifyBackend && !be.node.NoVerify(c.Loop().Now()) {
		be.state = beVerifying
		path := st.Svc.VerifyBackendPath
		if path == "" {
			path = "*"
		}
		c.Write([]byte("OPTIONS " + path + " HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"))
		c.SetTimeout(60 * time.Second)
		return
	}
	be.state = beReady
	be.ready()
	if cl == nil {
		be.svc.aheadDone(be)
		be.svc.putIdle(be, st)
		return
	}
	cl.attach(be)
}

// startRequest writes the client's request head and arms the response
// timeout.
func (be *backend) startRequest(cl *client) {
	be.state = beHead
	be.uses++
	be.got = false
	be.parser.Reset()
	be.node.Active.Add(1)
	be.conn.Write(cl.rs.head)
	to := cl.st.Svc.BackendTimeout
	if to <= 0 {
		to = 60 * time.Second
	}
	be.conn.SetTimeout(to)
	be.conn.ResumeRead()
}

func (be *backend) OnData(c *engine.Conn, data []byte) int {
	cl := be.client
	n := be.onData(c, data)
	if cl != nil {
		cl.flush() // one write for what this read produced
	}
	return n
}

func (be *backend) onData(c *engine.Conn, data []byte) int {
	switch be.state {
	case beVerifying:
		return be.readVerify(data)
	case beHead:
		return be.readHead(data)
	case beBody:
		return be.forward(data)
	case beTunnel:
		if cl := be.client; cl != nil {
			cl.conn.Write(data)
			cl.countOut(int64(len(data)))
			if cl.conn.Full() {
				c.PauseRead()
			}
			c.SetTimeout(cl.st.Svc.IdleTimeout)
			cl.conn.SetTimeout(cl.st.Svc.IdleTimeout)
		}
		return len(data)
	}
	// Idle or ready: a backend must not talk unasked.
	be.svc.dropIdle(be)
	c.Close()
	return len(data)
}

func (be *backend) readVerify(data []byte) int {
	c := be.conn
	n, err := be.parser.ParseResponse(data, &be.resp)
	if err != nil {
		be.verifyFailed()
		return len(data)
	}
	if n == 0 {
		return 0
	}
	r := &be.resp
	body := r.ContentLength
	ok := r.Status >= 200 && r.Status < 300 && !r.ConnClose && (r.Minor >= 1 || r.ConnKeepAlive)
	if !ok || r.Chunked || body < 0 && r.BodyMode(false) == http.BodyUntilClose {
		be.verifyFailed()
		return len(data)
	}
	if body > 0 {
		// Drain a small body with the head.
		if int64(len(data)-n) < body {
			if body > 64<<10 {
				be.verifyFailed()
				return len(data)
			}
			return 0 // wait for the whole thing
		}
		n += int(body)
	}
	be.node.Verifies.Add(1)
	be.parser.Reset()
	be.state = beReady
	be.ready()
	c.SetTimeout(0)
	if cl := be.client; cl != nil {
		cl.attach(be)
	} else if be.ahead {
		be.svc.aheadDone(be)
		be.svc.putIdle(be, be.svc.Settings())
	} else {
		c.Close()
	}
	return n
}

func (be *backend) verifyFailed() {
	now := be.conn.Loop().Now()
	be.node.SetNoVerify(now, 60*time.Second)
	cl := be.client
	be.client = nil
	be.conn.Abort(errVerify)
	if cl != nil {
		cl.backendFailed(be, errVerify)
	}
}

func (be *backend) readHead(data []byte) int {
	cl := be.client
	c := be.conn
	if cl == nil {
		c.Abort(errClientGone)
		return len(data)
	}
	be.got = true
	n, err := be.parser.ParseResponse(data, &be.resp)
	if err != nil {
		be.abortWith(502, "bad response from backend", err)
		return len(data)
	}
	if n == 0 {
		return 0
	}
	r := &be.resp
	now := c.Loop().Now()
	if r.Status >= 100 && r.Status < 200 && r.Status != 101 {
		// Interim response: pass 100 Continue on to 1.1 clients, then wait
		// for the final one.
		if cl.minor >= 1 {
			cl.conn.Write(data[:n])
		}
		be.parser.Reset()
		return n
	}
	be.node.RecordResponse(r.Status, now)
	be.node.Succeed()
	if cl.st.Svc.EnableReproxy {
		if used, ok := be.reproxyResponse(cl, data, n); ok {
			return used // served from a file, URLs or another service (reproxy.go)
		}
	}
	cl.svc.Stats.Responses.Add(1)
	if r.Status/100 < len(cl.svc.Stats.Status) {
		cl.svc.Stats.Status[r.Status/100].Add(1)
	}
	st := cl.st
	if r.Status >= 500 && st.Svc.EnableErrorRetries && cl.retries < len(st.Svc.ErrorRetrySchedule) &&
		cl.idempotent {
		be.retryAfterError()
		return len(data)
	}
	be.mode = r.BodyMode(cl.isHEAD)
	be.left = r.ContentLength
	be.kaTimeout = r.KeepAliveTimeout
	be.keepAlive = st.Svc.PersistBackend && r.KeepAlive(cl.isHEAD) &&
		(st.Svc.MaxBackendUses <= 0 || be.uses < st.Svc.MaxBackendUses)
	be.chunks.Reset()
	be.rechunk, be.dechunk = false, false
	ka := cl.wantKA
	if r.Status == 101 && cl.upgrade {
		be.mode = http.BodyNone
		ka = false
	}
	switch be.mode {
	case http.BodyChunked:
		if cl.minor == 0 {
			be.dechunk, ka = true, false
		}
	case http.BodyUntilClose:
		if cl.minor >= 1 && ka && r.Get("Transfer-Encoding") == nil {
			be.rechunk = true
		} else {
			ka = false
		}
	}
	be.clientKA = ka
	var edits *handoff.Rules
	var code int
	var pre []byte
	if cl.plug != nil {
		edits, code, pre = be.responseHooks(cl, r)
	}
	be.scratch = appendClientResponseEx(be.scratch[:0], r, cl.minor, be, st, edits, code)
	if cl.alog != nil {
		status := r.Status
		if code != 0 {
			status = code
		}
		cl.logStatus(status, len(be.scratch)) // the rest sent is body
	}
	if len(pre) > 0 && !cl.isHEAD && be.mode != http.BodyNone {
		be.scratch = be.appendPrepended(be.scratch, pre)
	}
	if be.mode == http.BodyChunked {
		be.held = append(be.held[:0], be.scratch...)
	} else {
		be.held = be.held[:0]
		cl.write(be.scratch)
	}
	c.SetTimeout(st.Svc.IdleTimeout)
	if r.Status == 101 && cl.upgrade {
		be.state = beTunnel
		cl.setState(clTunnel)
		be.keepAlive = false
		cl.flush()
		cl.conn.ResumeRead()
		cl.conn.Kick()
		if rest := data[n:]; len(rest) > 0 {
			be.OnData(c, rest)
		}
		return len(data)
	}
	be.state = beBody
	if be.mode == http.BodyNone || be.mode == http.BodyLength && be.left == 0 {
		cl.flush()
		be.finish()
		return n
	}
	return n + be.forward(data[n:])
}

// forward relays response body bytes to the client.
func (be *backend) forward(data []byte) int {
	cl := be.client
	if cl == nil {
		be.conn.Abort(errClientGone)
		return len(data)
	}
	if len(data) == 0 {
		return 0
	}
	used, done, err := be.relay(cl, data)
	if err != nil {
		be.abortWith(502, "bad chunked body from backend", err)
		return len(data)
	}
	if done {
		be.finish()
		if be.mode == http.BodyChunked {
			return used
		}
	}
	be.conn.SetTimeout(cl.st.Svc.IdleTimeout)
	if cl.conn.Full() && !be.conn.Closing() {
		be.conn.PauseRead() // spooling is off or failed: backpressure
	}
	return used
}

var (
	crlf      = []byte("\r\n")
	lastChunk = []byte("0\r\n\r\n")
)

// finish ends a response: release the backend, let the client go on.
func (be *backend) finish() {
	cl := be.client
	if cl != nil {
		cl.flush()
	}
	be.node.Active.Add(-1)
	be.client = nil
	if be.keepAlive && cl != nil && !be.conn.Closing() {
		be.svc.putIdle(be, cl.st)
	} else {
		be.conn.Close()
	}
	if cl != nil {
		cl.responseDone(be.clientKA)
	}
}

// retryAfterError drops a 5xx and re-queues the client per
// error_retry_schedule (enable_error_retries).
func (be *backend) retryAfterError() {
	cl := be.client
	be.node.Active.Add(-1)
	be.client = nil
	be.conn.Abort(nil)
	cl.be = nil
	delay := cl.st.Svc.ErrorRetrySchedule[cl.retries]
	cl.retries++
	cl.setState(clWait)
	cl.tried = cl.tried[:0]
	if cl.retryWait == nil {
		cl.retryWait = cl.conn.Loop().AfterFunc(delay, cl.retryNow)
	} else {
		cl.retryWait.Reset(delay)
	}
}

func (cl *client) retryNow() {
	if cl.conn.Closing() || cl.state != clWait {
		return
	}
	cl.connectBackend()
}

// abortWith ends a response that went wrong: an error page when nothing was
// sent to the client yet, otherwise a cut connection.
func (be *backend) abortWith(code int, msg string, err error) {
	cl := be.client
	be.client = nil
	if be.state >= beHead && be.state <= beTunnel {
		be.node.Active.Add(-1)
	}
	be.conn.Abort(err)
	if cl == nil {
		return
	}
	cl.be = nil
	if be.state == beHead || len(be.held) > 0 { // nothing sent to the client yet
		be.svc.nodeFailed(be.node, cl.st, err, be.conn.Loop().Now())
		switch code {
		case 502:
			cl.svc.Stats.Errors502.Add(1)
		case 504:
			cl.svc.Stats.Errors504.Add(1)
		}
		cl.fail(code, msg)
		return
	}
	// Mid-body: the client must see a broken response, never a complete
	// looking one.
	cl.setState(clClosing)
	cl.conn.Abort(err)
}

func (be *backend) OnEOF(c *engine.Conn) {
	cl := be.client
	switch be.state {
	case beBody:
		if be.mode == http.BodyUntilClose {
			if be.rechunk && cl != nil {
				cl.write(lastChunk)
			}
			be.keepAlive = false
			be.finish()
			return
		}
		be.abortWith(502, "", errBadResponse)
	case beHead:
		if !be.got && cl != nil && be.reused && cl.bodySent == 0 {
			// A kept-alive connection the backend had closed: resend.
			be.node.Active.Add(-1)
			be.client = nil
			c.Abort(nil)
			cl.backendFailed(be, errBadResponse)
			return
		}
		be.abortWith(502, "backend closed the connection", errBadResponse)
	case beTunnel:
		if cl == nil {
			c.Close()
		} else if cl.conn.EOF() {
			be.endTunnel()
		} else {
			cl.conn.CloseWrite() // the client may go on sending
		}
	case beVerifying:
		be.verifyFailed()
	default:
		be.svc.dropIdle(be)
		c.Close()
	}
}

// endTunnel closes both sides of a tunnel once each has sent its EOF,
// after their queued bytes are flushed.
func (be *backend) endTunnel() {
	cl := be.client
	be.node.Active.Add(-1)
	be.client = nil
	cl.be = nil
	cl.setState(clClosing)
	cl.conn.Close()
	be.conn.Close()
}

func (be *backend) OnDrain(c *engine.Conn) {
	if cl := be.client; cl != nil && cl.conn.Paused() && (cl.state == clBody || cl.state == clTunnel) {
		cl.conn.ResumeRead()
	}
}

func (be *backend) OnTimeout(c *engine.Conn) {
	switch be.state {
	case beHead:
		be.abortWith(504, "backend timeout", engine.ErrTimeout)
	case beVerifying:
		be.verifyFailed()
	case beIdle:
		be.svc.dropIdle(be)
		c.Close()
	default:
		be.abortWith(504, "backend timeout", engine.ErrTimeout)
	}
}

func (be *backend) OnClose(c *engine.Conn, err error) {
	be.svc.Stats.Backends.Add(-1)
	defer be.svc.backendClosed(be) // a queued client may dial (queue.go)
	be.ready()
	if be.ahead {
		be.svc.aheadDone(be)
		if be.state == beConnecting {
			be.svc.nodeFailed(be.node, be.svc.Settings(), err, c.Loop().Now())
		}
	}
	if be.state == beIdle {
		be.svc.dropIdle(be)
	}
	cl := be.client
	if cl == nil {
		return
	}
	be.client = nil
	switch be.state {
	case beConnecting, beVerifying:
		// Connect failed or timed out: try the next node.
		if be.state == beConnecting {
			be.svc.nodeFailed(be.node, cl.st, err, c.Loop().Now())
		}
		cl.backendFailed(be, err)
	case beHead:
		be.node.Active.Add(-1)
		if !be.got && be.reused && cl.bodySent == 0 {
			cl.backendFailed(be, err)
			return
		}
		be.svc.nodeFailed(be.node, cl.st, err, c.Loop().Now())
		cl.be = nil
		cl.svc.Stats.Errors502.Add(1)
		cl.fail(502, "backend connection failed")
	case beBody, beTunnel:
		be.node.Active.Add(-1)
		cl.be = nil
		if len(be.held) > 0 { // nothing sent to the client yet
			be.svc.nodeFailed(be.node, cl.st, err, c.Loop().Now())
			cl.svc.Stats.Errors502.Add(1)
			cl.fail(502, "backend connection failed")
			return
		}
		cl.setState(clClosing)
		cl.conn.Abort(err)
	}
}

// clientGone is called when the client closed while be served it.
func (be *backend) clientGone() {
	if be.state == beHead || be.state == beBody || be.state == beTunnel {
		be.node.Active.Add(-1)
		be.state = beReady // counted off already
	}
	be.client = nil
	be.conn.Abort(errClientGone)
}

// nodeFailed counts a failure against a node (passive health): after
// server_retry in a row it is marked down, logged once with the reason.
func (s *Service) nodeFailed(n *pool.Node, st *Settings, err error, now time.Time) {
	if reason, down := health.Failed(n, st.ServerRetry, err, now); down {
		s.log.Warn("node down", "pool", st.Pool.Name, "node", n.Name, "reason", reason)
	}
}
