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

// beState is a backend connection's state.
type beState uint8

// Backend states, in the order of a connection's life.
const (
	beConnecting beState = iota
	beVerifying          // OPTIONS probe sent
	beReady              // connected (verified), waiting for a client to attach
	beHead               // request sent, reading the response head
	beBody               // forwarding the response body
	beTunnel             // upgraded
	beIdle               // in the idle list
)

// Timeouts of a backend connection.
const (
	// defaultConnectTimeout applies when connect_timeout is not set
	// (Perlbal: 5 s in "connecting").
	defaultConnectTimeout = 5 * time.Second
	// verifyTimeout bounds the answer to verify_backend's OPTIONS (Perlbal:
	// 60 s in "verifying_backend").
	verifyTimeout = 60 * time.Second
	// noVerifyFor suspends verify_backend on a node after a failed probe,
	// or one answered on a connection the node closes (Perlbal: 60 s).
	noVerifyFor = 60 * time.Second
	// defaultBackendTimeout applies when backend_timeout is not set.
	defaultBackendTimeout = 60 * time.Second
	// maxVerifyBody is the largest body of an OPTIONS answer read to keep
	// its connection.
	maxVerifyBody = 64 << 10
	// noReuseFor suspends the reuse of a node's connections after it sent
	// bytes nobody asked for.
	noReuseFor = 60 * time.Second
)

var (
	errBadResponse = errors.New("proxy: malformed backend response")
	errVerify      = errors.New("proxy: backend failed verification")
	errUnasked101  = errors.New("proxy: backend switched protocols unasked")
	errClosed      = errors.New("proxy: backend closed the connection")
)

// backend is one connection to a node. Every method runs on its loop.
type backend struct {
	svc    *Service
	conn   *engine.Conn
	node   *pool.Node
	pool   *pool.Pool
	client *client
	state  beState
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
	// interim: a 1xx went to the client, so the request is not resent.
	interim bool
	idleSeq uint64 // when it became idle, in its loop's order (idle_first)
	// cool: the last response had no body by rule (HEAD, 204, 304), where
	// a confused backend sends one anyway; coolUntil is when the idle
	// connection may be reused (idle.go).
	cool      bool
	coolUntil time.Time
	scratch   []byte
	// tls is the backend_ssl config the connection was dialed with (nil:
	// plain); an idle connection of another one is not reused. h2: the
	// connection is an exchange over HTTP/2 (backend_protocol h2, h2c).
	tls *tls.Config
	h2  bool
}

// dialBackend connects to node.
func dialBackend(svc *Service, st *Settings, l *engine.Loop, node *pool.Node) (*backend, error) {
	be := &backend{svc: svc, node: node, pool: st.Pool}
	node.Attempts.Add(1)
	node.LastAttempt.Store(l.Now().Unix())
	timeout := st.Svc.ConnectTimeout
	if timeout <= 0 {
		timeout = defaultConnectTimeout
	}
	if o := st.BackendH2; o != nil {
		// An exchange of streams over the node's HTTP/2 connections: a
		// pair whose OnOpen comes once a connection is up (a failed one
		// aborts it as a failed connect).
		var tc *tls.Config
		if st.Svc.BackendProtocol == "h2" {
			tc = st.BackendTLS
		}
		c, err := svc.h2Pool(l, o).Dial(node.Addr, tc, be)
		if err != nil {
			return nil, err
		}
		be.tls, be.h2 = st.BackendTLS, true
		return be.dialed(c, svc, l), nil
	}
	c, err := l.Dial(node.Addr, be, timeout)
	if err != nil {
		return nil, err
	}
	if tc := st.BackendTLS; tc != nil {
		// backend_ssl: OnOpen follows the handshake, a failed one counts
		// as a failed connect (the next node is tried).
		be.tls = tc
		c.StartTLSClient(health.NodeTLS(tc, node.Addr.Addr(), ""))
	}
	return be.dialed(c, svc, l), nil
}

// dialed counts be, whose connection c is on its way.
func (be *backend) dialed(c *engine.Conn, svc *Service, l *engine.Loop) *backend {
	be.conn = c
	be.pending = true
	svc.backendOpened(l)
	svc.Stats.Backends.Add(1)
	svc.Stats.Connecting.Add(1)
	return be
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
		c.SetTimeout(verifyTimeout)
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

// readVerify reads the answer to verify_backend's OPTIONS. Any complete
// HTTP answer proves that a web server, not the kernel's listen queue,
// took the connection (Perlbal wanted a keep-alive answer; nginx answers
// OPTIONS * with 400 and a close, python's http.server with 501). When
// the answer leaves the connection usable it serves the client; when it
// closes it (or says more than its answer), the node's connections go
// unverified for noVerifyFor (it proved itself, and would only close them
// again) and the client gets a fresh connection to the same node.
func (be *backend) readVerify(data []byte) int {
	c := be.conn
	n, err := be.parser.ParseResponse(data, &be.resp)
	if err != nil {
		be.verifyEnded(errVerify)
		return len(data)
	}
	if n == 0 {
		return 0
	}
	r := &be.resp
	if r.Status < 200 {
		// Interim: the final answer follows.
		return n + be.readVerify(data[n:])
	}
	be.node.Verifies.Add(1)
	mode := r.BodyMode(false)
	keep := r.KeepAlive(false) && (mode == http.BodyNone ||
		mode == http.BodyLength && r.ContentLength <= maxVerifyBody)
	if keep && mode == http.BodyLength {
		if int64(len(data)-n) < r.ContentLength {
			return 0 // wait for the whole body
		}
		n += int(r.ContentLength)
	}
	if keep && n < len(data) {
		be.spokeUnasked("bytes after the answer to OPTIONS")
	}
	if !keep || n < len(data) {
		be.verifyEnded(nil)
		return len(data)
	}
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

// verifyEnded closes a connection whose probe did not let it carry a
// request, and suspends verify_backend on the node for noVerifyFor, as
// Perlbal does after a failure. err nil: a web server answered but closes
// the connection; the client, if any, gets a fresh connection to the same
// node (unverified now). Otherwise the probe got no HTTP answer (garbage,
// a close or a timeout first) and the client tries again elsewhere.
func (be *backend) verifyEnded(err error) {
	be.node.SetNoVerify(be.conn.Loop().Now(), noVerifyFor)
	cl := be.client
	be.client = nil
	if err == nil {
		be.conn.Close()
	} else {
		be.conn.Abort(err)
	}
	switch {
	case cl == nil:
	case err == nil:
		cl.be = nil
		cl.retryOn(be.node)
	default:
		cl.backendFailed(be, err)
	}
}

// startRequest writes the client's request head (and a body held whole)
// and arms the response timeout.
func (be *backend) startRequest(cl *client) {
	be.state = beHead
	be.uses++
	be.got, be.interim, be.cool = false, false, false
	be.coolUntil = time.Time{}
	be.parser.Reset()
	be.pool.Take(be.node)
	if body := cl.rs.body; len(body) > 0 {
		be.conn.Write2(cl.rs.head, body)
	} else {
		be.conn.Write(cl.rs.head)
	}
	to := cl.st.Svc.BackendTimeout
	if to <= 0 {
		to = defaultBackendTimeout
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
	be.spokeUnasked("bytes on an idle connection")
	be.svc.dropIdle(be)
	c.Close()
	return len(data)
}

// spokeUnasked notes that be's node sent bytes nobody asked for (more than
// its response, or anything while idle), which a kept-alive connection
// would hand to the next client as its response: the node's connections
// are not reused for noReuseFor (each response then closes its
// connection), so that what cannot be seen in time (bytes still on their
// way when the next request goes out) cannot be repeated at will either.
// Runs on the loop.
func (be *backend) spokeUnasked(what string) {
	if be.node.SuspendReuse(be.conn.Loop().Now(), noReuseFor) {
		be.svc.log.Warn("backend sent bytes unasked; its connections are not reused for a while",
			"node", be.node.Name, "what", what, "for", noReuseFor)
	}
}

// readHead parses the backend's response head and decides, in this order,
// everything that depends on it before a byte goes to the client: 1xx,
// reproxy, error retries, reuse, hop-by-hop editing, plugins, framing. It
// stays one function because those decisions depend on each other's
// outcome in that order (the reuse rules in particular, see reusable).
func (be *backend) readHead(data []byte) int {
	cl := be.client
	c := be.conn
	if cl == nil {
		c.Abort(errClientGone)
		return len(data)
	}
	if len(data) == 0 {
		return 0
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
		// Interim response: pass it on to 1.1 clients (100 Continue, 103
		// Early Hints), then read the final one.
		if cl.minor >= 1 {
			cl.conn.Write(data[:n])
			be.interim = true
		}
		be.parser.Reset()
		return n + be.readHead(data[n:])
	}
	if r.Status == 101 && !cl.upgrade {
		// RFC 9110 15.2.2: only in answer to an Upgrade. What follows is
		// not HTTP; nothing of it may reach anyone.
		be.abortWith(502, "bad response from backend", errUnasked101)
		return len(data)
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
	// Only a request that can go out whole again: a body that streamed
	// is gone, and its head alone would leave the backend reading the
	// next request as that body.
	if r.Status >= 500 && st.Svc.EnableErrorRetries && int(cl.retries) < len(st.Svc.ErrorRetrySchedule) &&
		cl.idempotent && cl.bodySent == 0 {
		be.retryAfterError()
		return len(data)
	}
	be.mode = r.BodyMode(cl.isHEAD)
	be.left = r.ContentLength
	be.kaTimeout = r.KeepAliveTimeout
	be.keepAlive = st.Svc.PersistBackend && be.reusable(cl, r)
	be.chunks.Reset()
	be.rechunk, be.dechunk = false, false
	ka := cl.wantKA
	if ka && cl.svc.draining.Load() {
		// Draining: this response says close, unless the client's next
		// request is here already (pipelined), which is answered too.
		ka = !quiet(cl.conn)
	}
	if r.Status == 101 {
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
	be.scratch = appendClientResponseEx(be.scratch[:0], r, int(cl.minor), be, st, edits, code)
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
	if r.Status == 101 {
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
		if n < len(data) {
			be.keepAlive = false // bytes after a complete response (a body on HEAD, 204, 304)
			be.spokeUnasked("bytes after a response without a body")
		} else if be.mode == http.BodyNone && be.keepAlive {
			be.cooling()
		}
		cl.flush()
		be.finish()
		return n
	}
	return n + be.forward(data[n:])
}

// reusable reports whether the connection may carry another request after
// the response r to cl's request, as far as its head tells (RFC 9112 9.3):
//   - the backend keeps it open;
//   - the request went out whole before the response began: an early
//     answer (a 413 while the body still flows) leaves the backend reading
//     what plb sends next as that body, or the rest of the body as a
//     request of its own;
//   - no error answers a request that had a body: servers answer those
//     without reading the body (python's http.server answers a POST with
//     501 and reads the body that follows as the next request, whose
//     answer would go to the next client); the connection closes instead;
//   - a 204 carries no framing of a body (RFC 9110 8.6: it must not; one
//     that does may well send one);
//   - the node has not sent bytes unasked lately (spokeUnasked).
//
// Bytes left over once the response is framed are checked where it ends,
// and bytes that arrive later when the connection is taken again
// (takeIdle).
func (be *backend) reusable(cl *client, r *http.ResponseHead) bool {
	if !r.KeepAlive(cl.isHEAD) || !cl.bodyDone || be.conn.Pending() || be.node.ReuseSuspended(be.conn.Loop().Now()) {
		return false
	}
	if r.Status >= 400 && cl.bodyMode != http.BodyNone {
		return false
	}
	if r.Status == 204 && (r.ContentLength > 0 || r.Chunked || r.Get("Transfer-Encoding") != nil) {
		return false
	}
	st := cl.st
	return st.Svc.MaxBackendUses <= 0 || be.uses < st.Svc.MaxBackendUses
}

// cooling marks a connection whose response had no body by rule (HEAD,
// 204, 304): a backend that sends one anyway often writes it a moment
// later, and Nagle holds it until plb's ACK, which would otherwise ride
// on the next request. So plb acknowledges at once, and the connection is
// not reused for coolDown (idle.go), in which any such body arrives and
// closes it.
func (be *backend) cooling() {
	be.cool = true
	be.conn.AckNow()
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
		if used < len(data) {
			be.keepAlive = false // bytes past the framing: never the next response
			be.spokeUnasked("bytes past the end of a response")
		}
		be.finish()
		return len(data)
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
	be.pool.Release(be.node)
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
	be.pool.Release(be.node)
	be.client = nil
	be.conn.Abort(nil)
	cl.be = nil
	delay := cl.st.Svc.ErrorRetrySchedule[cl.retries]
	cl.retries++
	cl.setState(clWait)
	cl.rs.tried = cl.rs.tried[:0]
	if cl.rs.stuck(be.node) {
		// The client's own node failed it: the retries go where the
		// balance method says, and the answer sets that node's cookie.
		cl.rs.hasSticky = false
	}
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

// lost handles a connection that failed (closed, reset, timed out) while
// its request waited for the response head. Before any byte of a response
// the request is sent again on a fresh connection when that is safe
// (client.resend); otherwise the client gets code.
func (be *backend) lost(code int, msg string, err error) {
	cl := be.client
	if cl == nil || be.got || be.interim {
		be.abortWith(code, msg, err)
		return
	}
	if !cl.resend(be, be.closedUnderIt(code), err) {
		be.abortWith(code, msg, err)
	}
}

// closedUnderIt reports whether a failure that ends a request with code
// (before any response byte, or not) is a kept-alive connection closing
// under the request: likely its idle timeout crossed ours, and not the
// node's fault.
func (be *backend) closedUnderIt(code int) bool {
	return be.reused && !be.got && code != 504
}

// abortWith ends a response that went wrong: an error page when nothing was
// sent to the client yet, otherwise a cut connection.
func (be *backend) abortWith(code int, msg string, err error) {
	cl := be.client
	be.client = nil
	if be.state >= beHead && be.state <= beTunnel {
		be.pool.Release(be.node)
	}
	be.conn.Abort(err)
	if cl == nil {
		return
	}
	cl.be = nil
	if be.state == beHead || len(be.held) > 0 { // nothing sent to the client yet
		if !be.closedUnderIt(code) {
			be.svc.requestFailed(be.node, cl.st, err)
		}
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
		be.lost(502, "backend closed the connection", errClosed)
	case beTunnel:
		if cl == nil {
			c.Close()
		} else if cl.conn.EOF() {
			be.endTunnel()
		} else {
			cl.conn.CloseWrite() // the client may go on sending
		}
	case beVerifying:
		be.verifyEnded(errVerify)
	default:
		be.svc.dropIdle(be)
		c.Close()
	}
}

// endTunnel closes both sides of a tunnel once each has sent its EOF,
// after their queued bytes are flushed.
func (be *backend) endTunnel() {
	cl := be.client
	be.pool.Release(be.node)
	be.client = nil
	cl.be = nil
	cl.setState(clClosing)
	cl.conn.Close()
	be.conn.Close()
}

func (be *backend) OnDrain(c *engine.Conn) {
	if cl := be.client; cl != nil && cl.conn.Paused() && (cl.state == clBody || cl.state == clTunnel) {
		cl.conn.ResumeRead()
		if cl.bodyPaused {
			cl.bodyResumed() // its deadline runs again, from now
		}
	}
}

func (be *backend) OnTimeout(c *engine.Conn) {
	switch be.state {
	case beHead:
		be.lost(504, "backend timeout", engine.ErrTimeout)
	case beVerifying:
		be.verifyEnded(engine.ErrTimeout)
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
	switch be.state {
	case beConnecting, beVerifying:
		be.client = nil
		// Connect failed or timed out: try the next node.
		if be.state == beConnecting {
			be.svc.nodeFailed(be.node, cl.st, err, c.Loop().Now())
		}
		cl.backendFailed(be, err)
	case beHead:
		be.lost(502, "backend connection failed", err)
	case beBody, beTunnel:
		be.client = nil
		be.pool.Release(be.node)
		cl.be = nil
		if len(be.held) > 0 { // nothing sent to the client yet
			be.svc.requestFailed(be.node, cl.st, err)
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
		be.pool.Release(be.node)
		be.state = beReady // counted off already
	}
	be.client = nil
	be.conn.Abort(errClientGone)
}

// nodeFailed counts a failure that is the node's own (a connect refused or
// timed out) against it: after server_retry in a row it is marked down (or
// suspect, when that would take out most of the pool), logged once with
// the reason.
func (s *Service) nodeFailed(n *pool.Node, st *Settings, err error, now time.Time) {
	why, v := health.Failed(st.Pool.Nodes(), n, st.ServerRetry, err, now)
	v.Log(s.log, st.Pool.Name, n.Name, why)
}

// requestFailed counts the failure of a request the node took (a reset, a
// timeout, a broken reply): it may be that request's own doing, so after
// server_retry in a row the node only becomes suspect, and a probe
// decides whether it goes down (health.RequestFailed).
func (s *Service) requestFailed(n *pool.Node, st *Settings, err error) {
	why, v := health.RequestFailed(n, st.ServerRetry, err)
	v.Log(s.log, st.Pool.Name, n.Name, why)
}
