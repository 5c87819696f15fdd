package proxy

import (
	"errors"
	"math"
	"os"
	"syscall"
	"time"

	"github.com/plb/plb/engine"
	"github.com/plb/plb/health"
	"github.com/plb/plb/http"
	"github.com/plb/plb/http/handoff"
	"github.com/plb/plb/http/plugin"
	"github.com/plb/plb/http/status"
	"github.com/plb/plb/pool"
)

// clientState is a client connection's state.
type clientState uint8

// Client states, all of them.
const (
	clHead    clientState = iota // reading a request head
	clWait                       // waiting for a backend connection
	clBody                       // streaming the request body to the backend
	clResp                       // request sent, response in progress
	clTunnel                     // upgraded: bytes both ways
	clClosing                    // Close called
	// clBuffer: the request body is read before a backend is asked for
	// (upload.go).
	clBuffer
	// clDelay: a plugin postponed the request (plugin.Request.Delay,
	// Throttle's delay): it waits unread in the connection's input and a
	// loop timer resumes it. Reading goes on (up to delayInputMax bytes
	// held) so that a client that leaves meanwhile is seen at once and
	// frees its place, as nginx's limit_req delay does (plugins.go).
	clDelay
)

// client is one client connection of a reverse_proxy service. Every method
// runs on the connection's loop.
type client struct {
	svc  *Service
	conn *engine.Conn
	st   *Settings // snapshot for the current request
	rs   *reqState // per-request memory; nil while idle
	be   *backend
	// node is the node picked for the request while it waits for a
	// connection (max_backend_conns) or for a fresh one (retryOn).
	node *pool.Node
	// alog is the current request's access log entry (nil without an
	// access_log); sent counts the bytes queued for the client.
	alog      *accessEntry
	sent      int64
	bodyLeft  int64
	bodySent  int64 // request body bytes already forwarded (retry only if 0)
	spool     *os.File
	spoolOff  int64
	retryWait *engine.Timer
	// reqStart is when the current request head was parsed, waitSince
	// when the client began waiting for a backend (engine.Loop.Clock
	// readings; 0: none).
	reqStart, waitSince int64
	// ho is set when a selector handed the connection here: its
	// persist_client and HEADER rules apply, and the connection returns
	// to it after each response.
	ho *handoff.Client
	// plug is the plugin state of the current request (nil until the
	// service has plugins).
	plug      *plugState
	upl       *upload       // a body read before a backend is asked for (upload.go)
	rp        *reproxyState // enable_reproxy's memory (reproxy.go)
	queueLink               // the client's place in the queues (queue.go)

	requests int32 // requests on the connection (countRequest)
	resends  int32 // times the request was sent again (resend)
	retries  int32 // error_retry_schedule position
	state    clientState
	minor    uint8 // client's HTTP minor version
	bodyMode http.BodyMode

	idempotent bool // GET or HEAD: may be retried after a backend 5xx
	// retrySafe: idempotent (RFC 9110 9.2.2, or an Idempotency-Key), so
	// it may be sent again when its connection failed (resend).
	retrySafe bool
	isHEAD    bool
	// grpc: the request is a gRPC call; plb's own errors answer it with
	// a gRPC status (grpcstatus.go).
	grpc     bool
	wantKA   bool // client asked for keep-alive and the service allows it
	upgrade  bool
	bodyDone bool
	// fresh: the request goes out on a new connection, not an idle one
	// (it is being sent again).
	fresh bool
	// bodyPaused: plb paused reading the body (bodytime.go).
	bodyPaused bool
}

// plugState is a client's memory for its service's plugins, reused from
// request to request.
type plugState struct {
	req     plugin.Request
	backend plugin.HeaderEdits // backend_client_assigned
	resp    plugin.HeaderEdits // modify_response_headers
	hooks   *plugin.Hooks      // those of the current request
	buf     []byte
	// active: the start hooks of the current request ran, its end hooks
	// not yet.
	active bool
	// delay resumes a postponed request (clDelay); resuming marks the
	// head read again then.
	delay    *engine.Timer
	resuming bool
}

var errClientGone = errors.New("proxy: client closed")

// reqState is a client's working memory for one request: taken from the
// loop's free list when a request starts and given back when the
// connection goes idle, so that idle keep-alive connections stay small.
type reqState struct {
	parser http.Parser
	req    http.RequestHead
	head   []byte // the request head to send to the backend
	// body is the body of a request that may be resent, held whole in
	// memory (holdWhole): it goes out with the head, and again if the
	// request is resent. Emptied at each request.
	body  []byte
	pend  []byte // response bytes coalesced into one write
	where []byte // "host/uri" of the request, for the console

	chunks http.ChunkedScanner // a chunked request body's framing
	tried  []*pool.Node        // the nodes tried for the request
	// key is the request's pool.Key (headKey), computed while its head
	// is parsed: the head's views point into the bytes read, which the
	// next read on the loop overwrites, and the node may be picked much
	// later (a buffered body, a resend, a retry, a queued client).
	key pool.Key
	// sticky is the token of the request's sticky cookie when hasSticky
	// (stickyOf), read with the head for the same reason.
	sticky    pool.Token
	hasSticky bool
	// skip is skipTried as a func value, made once per reqState (a
	// method value made per request would allocate).
	skip func(*pool.Node) bool
	// bodyClock and bodyClockAt: since when (a Loop.Clock reading), and
	// from which body byte, the body has been read without plb pausing it; bodyGot:
	// body bytes received when last checked (bodytime.go).
	bodyClock, bodyClockAt, bodyGot int64
	// hdrMax is the most header fields a head parsed into req had since
	// the state was last put back: putReqState clears that many.
	hdrMax int
}

// countRequest counts one more request on the connection (saturating: a
// connection may outlive 2^31 requests).
func (cl *client) countRequest() {
	if cl.requests < math.MaxInt32 {
		cl.requests++
	}
}

// coalesceMax bounds the response bytes gathered for one write.
const coalesceMax = 16 << 10

func (cl *client) OnOpen(c *engine.Conn) {
	c.SetTimeout(headerTimeout(cl.svc.Settings()))
}

// releaseState gives the request memory back to the loop.
func (cl *client) releaseState() {
	if cl.rs != nil {
		cl.svc.putReqState(cl.conn.Loop(), cl.rs)
		cl.rs = nil
	}
}

func headerTimeout(st *Settings) time.Duration {
	if st.Svc.HeaderTimeout > 0 {
		return st.Svc.HeaderTimeout
	}
	return st.Svc.IdleTimeout
}

func (cl *client) OnData(c *engine.Conn, data []byte) int {
	switch cl.state {
	case clHead:
		return cl.readHead(data)
	case clBody:
		return cl.forwardBody(data)
	case clTunnel:
		return cl.tunnel(data)
	case clBuffer:
		return cl.bufferBody(data)
	case clDelay:
		if len(data) > delayInputMax {
			c.PauseRead()
		}
		return 0
	}
	// Waiting for a backend or a response: keep the bytes (a pipelined
	// request) and stop reading until the response is done.
	c.PauseRead()
	return 0
}

func (cl *client) readHead(data []byte) int {
	c := cl.conn
	if cl.rs == nil {
		cl.rs = cl.svc.getReqState(c.Loop())
	}
	rs := cl.rs
	n, err := rs.parser.ParseRequest(data, &rs.req)
	rs.hdrMax = max(rs.hdrMax, len(rs.req.Headers)) // views of this input, complete or not
	if err != nil {
		code := 400
		var he *http.Error
		if errors.As(err, &he) {
			code = he.Status
		}
		if cl.svc.Settings().AccessLog != nil {
			cl.startAccessLog(nil) // logged as "-"
		}
		cl.fail(code, errMsg(err))
		return len(data)
	}
	if n == 0 {
		return 0
	}
	st := cl.svc.Settings()
	cl.st = st
	resumed := cl.plug != nil && cl.plug.resuming // read again after a delay
	if !resumed {
		cl.svc.Stats.Requests.Add(1)
		cl.svc.Stats.BytesIn.Add(int64(n))
		cl.reqStart = c.Loop().Clock()
	}
	r := &rs.req
	if st.AccessLog != nil && !resumed {
		cl.startAccessLog(r)
	}
	rs.where = appendWhere(rs.where[:0], r)
	rs.key = headKey(st.Pool, r, c)
	rs.sticky, rs.hasSticky = stickyOf(st, r)
	cl.isHEAD = string(r.Method) == "HEAD"
	cl.idempotent = cl.isHEAD || string(r.Method) == "GET"
	cl.retrySafe = idempotent(r)
	cl.minor = uint8(r.Minor)
	persist := st.Svc.PersistClient
	if cl.ho != nil {
		persist = cl.ho.Persist // the selector's value wins
	}
	cl.wantKA = persist && r.KeepAlive() && !cl.svc.draining.Load() && !(resumed && c.EOF())
	cl.upgrade = r.ConnUpgrade && len(r.Upgrade) > 0
	cl.bodyMode = r.BodyMode()
	cl.grpc = cl.bodyMode != http.BodyNone && isGRPC(r) // a gRPC call always has a body
	cl.bodyLeft = r.ContentLength
	cl.bodyDone = cl.bodyMode == http.BodyNone
	cl.bodySent, cl.rs.bodyGot = 0, 0
	cl.restartBodyClock(0)
	cl.rs.chunks.Reset()
	cl.rs.tried = cl.rs.tried[:0]
	cl.node, cl.fresh, cl.resends = nil, false, 0
	rs.body = rs.body[:0] // only a body held for this request goes out
	cl.retries = 0
	var sel, plug *handoff.Rules
	if cl.ho != nil {
		sel = cl.ho.Rules
	}
	if st.Hooks != nil {
		switch cl.startHooks(st, r) {
		case hooksAnswered:
			return n
		case hooksDelayed:
			return 0 // read again when the delay is over
		}
		plug = cl.assignHooks(st)
	} else if cl.plug != nil {
		cl.plug.hooks = nil
		cl.plug.resuming = false
	}
	rs.head = appendBackendRequestEx(rs.head[:0], r, st, c.RemoteAddr().Addr(), st.Svc.PersistBackend && !cl.upgrade, sel, plug)
	cl.countRequest()
	cl.prio = cl.priority(st, r)       // queue.go
	if !cl.holdBody(st, r, data[n:]) { // upload.go
		if c.Closing() {
			return n
		}
		cl.setState(clWait)
	}
	if st.Svc.BufferSize > 0 {
		// write keeps at most buffer_size in memory and spills the rest,
		// so the backend is paused (Full) only when spilling fails.
		c.SetWatermarks(int(st.Svc.BufferSize), int(st.Svc.BufferSize)/4)
	}
	c.SetTimeout(st.Svc.IdleTimeout)
	if st.Svc.EnableReproxy && cl.reproxyRequest(data[:n], r) {
		return n // answered from the reproxy cache (reproxy.go)
	}
	if cl.state == clBuffer {
		c.Kick() // the body behind the head
		return n
	}
	n += cl.holdArrived(data[n:])
	// Reading goes on (no epoll change per request): bytes that arrive
	// before the backend is attached make OnData pause the connection.
	cl.connectBackend()
	return n
}

// idempotent reports whether sending r again has the effect of sending
// it once: its method is idempotent (RFC 9110 9.2.2), or it carries an
// Idempotency-Key (draft-ietf-httpapi-idempotency-key-header; Go's
// Transport honours it, and X-Idempotency-Key, the same way).
func idempotent(r *http.RequestHead) bool {
	switch string(r.Method) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return r.Get("Idempotency-Key") != nil || r.Get("X-Idempotency-Key") != nil
}

func errMsg(err error) string {
	var he *http.Error
	if errors.As(err, &he) {
		return he.Msg
	}
	return err.Error()
}

// connectBackend finds the request a backend connection: the balance
// method picks the node (or the node picked before is kept), then an idle
// connection to that node is reused if there is one, else one is dialed
// (a failed dial moves on to the next node); with no node left the client
// gets 503.
func (cl *client) connectBackend() {
	st := cl.st
	l := cl.conn.Loop()
	if st.Pool == nil {
		cl.fail(503, "no pool configured for this service")
		return
	}
	if st.Svc.ConnectAhead > 0 {
		defer cl.svc.fillAhead(l, st)
	}
	if cl.node == nil && !cl.fresh {
		cl.node = cl.stickyNode() // nil: none, or not usable
	}
	if st.Pool.ReuseFirst() && cl.node == nil && !cl.fresh {
		// idle_first: a free connection first, to a node no busier than
		// the least busy one plus a quarter (one request at least,
		// pool.IdleFirstBusyLimit), so that a node added or come back
		// gets its share; else a new one to the least busy node. The
		// key is NoKey: idle_first picks by none.
		least := st.Pool.Pick(pool.NoKey, cl.skip())
		if least == nil {
			cl.svc.Stats.Errors503.Add(1)
			cl.fail(503, "no backend available")
			return
		}
		if be := cl.svc.takeAnyIdle(l, st, least, cl.skip()); be != nil {
			cl.reuse(be)
			return
		}
		cl.node = least
	}
	for {
		node := cl.node
		cl.node = nil
		// A node picked before the client waited may be down, drained
		// (weight 0) or removed since: pick again.
		if node == nil || !node.Available() || cl.rs.skipTried(node) || !st.Pool.Holds(node) {
			if node = cl.pick(); node == nil {
				cl.svc.Stats.Errors503.Add(1)
				cl.fail(503, "no backend available")
				return
			}
		}
		if !cl.fresh {
			if be := cl.svc.takeIdle(l, st, node); be != nil {
				cl.reuse(be)
				return
			}
		}
		if cl.svc.waitForSlot(cl, l, st) {
			if !st.Pool.ReuseFirst() {
				cl.node = node // else any connection freed will do
			}
			return // max_backend_conns reached: queued (queue.go)
		}
		cl.rs.tried = append(cl.rs.tried, node)
		be, err := dialBackend(cl.svc, st, l, node)
		if err != nil {
			if localFailure(err) {
				// Out of descriptors or memory here: not the node's
				// fault, and every other node would fail the same way.
				cl.svc.Stats.Errors503.Add(1)
				cl.fail(503, "out of resources")
				return
			}
			cl.svc.nodeFailed(node, st, err, l.Now())
			continue
		}
		be.client = cl
		cl.be = be
		cl.svc.noteUse(l)
		return
	}
}

// reuse sends the request on be, an idle connection the client took.
// Runs on the loop.
func (cl *client) reuse(be *backend) {
	cl.rs.tried = append(cl.rs.tried, be.node)
	be.reused = true
	cl.svc.noteUse(cl.conn.Loop())
	cl.attach(be)
}

// retryOn sends the request to node again on a new connection (the one it
// had was closed before the request went out). Runs on the loop.
func (cl *client) retryOn(node *pool.Node) {
	if cl.state == clClosing || cl.conn.Closing() {
		return
	}
	cl.untry(node)
	cl.again(node)
}

// again waits for a connection to send the request on: a new one to node,
// or, with node nil, whatever connectBackend finds. Runs on the loop.
func (cl *client) again(node *pool.Node) {
	if node != nil {
		cl.node, cl.fresh = node, true
	}
	cl.setState(clWait)
	cl.conn.PauseRead()
	cl.connectBackend()
}

// untry forgets that the request tried node, so it may be picked again.
func (cl *client) untry(node *pool.Node) {
	for i := len(cl.rs.tried) - 1; i >= 0; i-- {
		if cl.rs.tried[i] == node {
			cl.rs.tried = append(cl.rs.tried[:i], cl.rs.tried[i+1:]...)
			return
		}
	}
}

// resend sends the request again on a fresh connection after be failed
// (closed, reset, timed out) before any byte of a response reached plb,
// and reports whether it did. It does only for an idempotent request
// (RFC 9110 9.2.2, or one with an Idempotency-Key), while it can go out
// whole again (no body, or one plb holds in memory or spooled, never one
// that streamed from the client), at most the service's retries times:
//   - when be was a kept-alive connection that closed under the request
//     (underIt: likely its idle timeout crossed ours; the node is not to
//     blame and may take the request again);
//   - after a reset or a timeout, on another node, the failure counted
//     against this one (nginx's proxy_next_upstream, HAProxy's retries
//     and retry-on).
//
// A request that is not idempotent is never sent twice, not even after a
// kept-alive connection closed under it: a backend that read it, acted on
// it and died looks the same from here (RFC 9112 9.3.1; nginx and HAProxy
// do not either). Before plb writes a request on an idle connection it
// asks the socket whether the backend closed it (takeIdle), which leaves
// only a close that crossed the request on the wire.
//
// Nothing was sent to the client yet: the caller checked. Runs on the
// loop.
func (cl *client) resend(be *backend, underIt bool, err error) bool {
	st := cl.st
	if int(cl.resends) >= st.Svc.Retries || cl.bodySent > 0 || !cl.retrySafe ||
		cl.state == clClosing || cl.conn.Closing() {
		return false
	}
	node := be.node
	if underIt {
		cl.untry(node)
	}
	next := cl.pick()
	if next == nil {
		return false // the caller answers with the failure
	}
	be.pool.Release(be.node)
	be.client = nil
	be.conn.Abort(err)
	cl.be = nil
	if !underIt {
		cl.svc.requestFailed(node, st, err)
	}
	cl.resends++
	cl.svc.Stats.Resends.Add(1)
	cl.svc.log.Info("request sent again", "node", node.Name, "next", next.Name,
		"reason", health.Describe(err), "reused", be.reused, "try", cl.resends+1)
	cl.again(next)
	return true
}

// localFailure reports whether a dial failed for lack of local resources
// (descriptors, buffers, memory) rather than because of the node.
func localFailure(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

// skip returns skipTried as a func value, made once per connection: a
// method value made at each call would allocate on every request.
func (cl *client) skip() func(*pool.Node) bool {
	rs := cl.rs
	if rs.skip == nil {
		rs.skip = rs.skipTried
	}
	return rs.skip
}

func (rs *reqState) skipTried(n *pool.Node) bool {
	for _, t := range rs.tried {
		if t == n {
			return true
		}
	}
	return false
}

// backendFailed is called when a backend could not take the request before
// any byte of it was answered: retry elsewhere when that is safe.
func (cl *client) backendFailed(be *backend, err error) {
	cl.be = nil
	if cl.state == clClosing || cl.conn.Closing() {
		return
	}
	if cl.bodySent == 0 { // nothing of the body went out: safe to resend
		cl.again(nil)
		return
	}
	cl.svc.Stats.Errors502.Add(1)
	cl.fail(502, "backend connection failed")
}

// attach sends the request on a connected backend.
func (cl *client) attach(be *backend) {
	c := cl.conn
	cl.be = be
	be.client = cl
	be.startRequest(cl)
	cl.sendSpool(be) // a spooled body follows the head (upload.go)
	if be.conn.Closing() {
		return
	}
	if cl.bodyDone {
		cl.setState(clResp)
	} else {
		cl.setState(clBody)
		cl.restartBodyClock(cl.bodySent) // plb did not read while it waited
		c.ResumeRead()
		c.Kick()
	}
}

// forwardBody streams request body bytes to the backend.
func (cl *client) forwardBody(data []byte) int {
	be := cl.be
	if be == nil {
		cl.conn.PauseRead()
		return 0
	}
	used := 0
	switch cl.bodyMode {
	case http.BodyLength:
		n := int64(len(data))
		if n > cl.bodyLeft {
			n = cl.bodyLeft
		}
		used = int(n)
		cl.bodyLeft -= n
		cl.bodyDone = cl.bodyLeft == 0
	case http.BodyChunked:
		for used < len(data) && !cl.bodyDone {
			n, _, done, err := cl.rs.chunks.Scan(data[used:])
			if err != nil {
				be.clientGone() // the client's fault, not the node's
				cl.be = nil
				cl.fail(400, errMsg(err))
				return len(data)
			}
			used += n
			cl.bodyDone = done
			if n == 0 {
				break
			}
		}
		if limit := cl.st.Svc.MaxChunkedRequestSize; limit > 0 && cl.bodySent+int64(used) > limit {
			// Streamed to the backend, a chunked body is counted as it
			// passes (bytes on the wire, as a spooled one): past the limit
			// the backend's request is abandoned and the client gets 413.
			be.clientGone() // not the node's failure
			cl.be = nil
			cl.fail(413, "request body too large")
			return len(data)
		}
	}
	if used > 0 {
		be.conn.Write(data[:used])
		cl.bodySent += int64(used)
		cl.svc.Stats.BytesIn.Add(int64(used))
	}
	if cl.bodyDone {
		cl.conn.SetTimeout(cl.st.Svc.IdleTimeout)
		cl.setState(clResp) // more bytes now are a pipelined request: OnData pauses
		return used
	}
	if !cl.bodyOnTime(cl.bodySent) {
		return len(data)
	}
	if be.conn.Full() {
		cl.conn.PauseRead() // resumed by the backend's OnDrain
		cl.bodyPaused = true
		cl.conn.SetTimeout(cl.st.Svc.IdleTimeout) // the body's clock stops
	}
	return used
}

// tunnel relays bytes of an upgraded connection to the backend.
func (cl *client) tunnel(data []byte) int {
	be := cl.be
	if be == nil {
		return len(data)
	}
	be.conn.Write(data)
	cl.svc.Stats.BytesIn.Add(int64(len(data)))
	if be.conn.Full() {
		cl.conn.PauseRead()
	}
	cl.conn.SetTimeout(cl.st.Svc.IdleTimeout)
	be.conn.SetTimeout(cl.st.Svc.IdleTimeout)
	return len(data)
}

// write queues response bytes for the client. Small pieces are gathered
// into one write (flushed by flush at the end of the backend's callback);
// past buffer_size in memory the rest is spilled to the spool file, so the
// backend never waits for a slow client.
func (cl *client) write(p []byte) {
	cl.countOut(int64(len(p)))
	rs := cl.rs
	limit := int(cl.st.Svc.BufferSize)
	if rs != nil && cl.spool == nil && len(rs.pend)+len(p) <= coalesceMax &&
		(limit <= 0 || cl.conn.Buffered()+len(rs.pend)+len(p) <= limit) {
		rs.pend = append(rs.pend, p...)
		return
	}
	cl.flush()
	cl.send(p)
}

// flush writes the gathered response bytes.
func (cl *client) flush() {
	if rs := cl.rs; rs != nil && len(rs.pend) > 0 {
		cl.send(rs.pend)
		rs.pend = rs.pend[:0]
		if cap(rs.pend) > coalesceMax {
			rs.pend = nil
		}
	}
}

// send writes p to the client connection, or spills it to the spool file
// once buffer_size is queued in memory.
func (cl *client) send(p []byte) {
	c := cl.conn
	limit := int(cl.st.Svc.BufferSize)
	if cl.spool == nil && (limit <= 0 || c.Buffered()+len(p) <= limit) {
		c.Write(p)
		return
	}
	cl.trimSpool()
	if !cl.svc.reserveSpool(int64(len(p)), cl.st.Svc.BufferDirSize) {
		// buffer_dir_size is reached: this client's backend waits for
		// it, as without a spool.
		cl.svc.Stats.SpoolFull.Add(1)
		cl.sendInMemory(p)
		return
	}
	if cl.spool == nil {
		f, err := os.CreateTemp(cl.st.spoolDir(), "plb-spool-")
		if err != nil {
			cl.svc.spooled.Add(-int64(len(p)))
			cl.sendInMemory(p) // no disk
			return
		}
		os.Remove(f.Name()) // the descriptor keeps it; nothing is left behind
		cl.spool = f
	}
	n, err := cl.spool.WriteAt(p, cl.spoolOff)
	if err != nil {
		cl.svc.log.Warn("spool write failed", "err", err)
		cl.svc.spooled.Add(-int64(len(p) - n))
		c.Write(p[n:])
	}
	if n > 0 {
		c.SendFile(cl.spool, cl.spoolOff, int64(n), false)
		cl.spoolOff += int64(n)
		cl.svc.Stats.SpoolWrites.Add(1)
	}
}

// sendInMemory queues p in memory when it cannot be spooled: the backend
// is paused once the client is buffer_size behind (backpressure, as
// without a spool), and resumed by OnDrain.
func (cl *client) sendInMemory(p []byte) {
	cl.conn.Write(p)
	if cl.be != nil && cl.conn.Full() {
		cl.be.conn.PauseRead()
	}
}

// trimSpool empties the spool file once everything queued from it was
// sent, and gives its bytes back to buffer_dir_size.
func (cl *client) trimSpool() {
	if cl.spool != nil && cl.spoolOff > 0 && !cl.conn.Pending() {
		cl.spool.Truncate(0)
		cl.svc.spooled.Add(-cl.spoolOff)
		cl.spoolOff = 0
	}
}

// spoolHeld is a spool file a detached client left to its connection: its
// bytes count against buffer_dir_size until the connection has sent (or
// dropped) them and closes it.
type spoolHeld struct {
	f   *os.File
	svc *Service
	n   int64
}

func (h *spoolHeld) Close() error {
	h.svc.spooled.Add(-h.n)
	return h.f.Close()
}

// dropSpool gives the spool's bytes back to buffer_dir_size when the
// client closes the file.
func (cl *client) dropSpool() {
	cl.svc.spooled.Add(-cl.spoolOff)
	cl.spool, cl.spoolOff = nil, 0
}

// responseDone is called when the whole response is queued for the client.
func (cl *client) responseDone(keepAlive bool) {
	cl.be = nil
	cl.dropUpload()
	cl.observeLatency()
	c := cl.conn
	if !keepAlive || cl.svc.draining.Load() && quiet(c) {
		// Draining, a response that said keep-alive closes unless the
		// client's next request is here already: it is answered (with
		// Connection: close) before the connection closes.
		cl.setState(clClosing)
		c.Close()
		return
	}
	if cl.spoolOff > 0 {
		c.NotifyEmpty() // OnDrain empties the spool once it is sent
	}
	if !cl.bodyDone {
		// The backend answered before the request body was read (say a
		// 413): the rest of the body would be taken for a request.
		cl.setState(clClosing)
		c.Close()
		return
	}
	if c.EOF() {
		// Half-closed client: no further request can come.
		cl.setState(clClosing)
		c.Close()
		return
	}
	cl.nextRequest()
}

// nextRequest waits for the client's next request on a kept-alive
// connection, or gives the connection back to the selector it came from.
func (cl *client) nextRequest() {
	c := cl.conn
	cl.endHooks()
	cl.setState(clHead)
	cl.releaseState()
	if cl.ho != nil && cl.ho.Base != nil {
		cl.returnToBase()
		return
	}
	c.SetTimeout(cl.st.Svc.PersistClientIdleTimeout)
	c.ResumeRead()
	c.Kick()
}

// returnToBase gives the connection back to the selector (Perlbal's
// return_to_base): this client is done with it.
func (cl *client) returnToBase() {
	c := cl.conn
	base := cl.ho.Base
	cl.detach()
	base.Return(c)
}

// detach ends this client's hold on its connection before another handler
// takes it over: the client is counted off and forgets the selector and
// the plugin state, queued spool regions go on sending, a pending retry
// is cancelled.
func (cl *client) detach() {
	cl.ho, cl.plug = nil, nil
	cl.svc.Stats.ClientsOpen.Add(-1)
	cl.setState(clClosing)
	if cl.spool != nil {
		// Queued spool regions may still be sending: the connection
		// closes the file once they are, and only then are its bytes
		// given back to buffer_dir_size (a client handed back to a
		// selector may spool again before it read the last response).
		cl.conn.SendFileOwned(cl.spool, 0, 0, &spoolHeld{f: cl.spool, svc: cl.svc, n: cl.spoolOff})
		cl.spool, cl.spoolOff = nil, 0
	}
	if cl.retryWait != nil {
		cl.retryWait.Stop()
	}
}

// answerOptions are the options of a response plb makes itself (a hook's
// answer, a reproxy failure) to the current request, the connection kept
// when ka.
func (cl *client) answerOptions(st *Settings, ka bool) status.Options {
	o := status.Options{ServerTokens: st.Svc.ServerTokens, Head: cl.isHEAD, KeepAlive: ka,
		KeepAliveTimeout: int(st.Svc.PersistClientIdleTimeout / time.Second)}
	if cl.minor == 1 {
		o.Proto = "HTTP/1.1"
	}
	return o
}

// countResponse counts a response the client gets other than a backend's
// (a hook's answer, a reproxied one), for the service's figures and the
// access log.
func (cl *client) countResponse(code int) {
	cl.logStatus(code, 0)
	cl.svc.Stats.Responses.Add(1)
	if c := code / 100; c > 0 && c < len(cl.svc.Stats.Status) {
		cl.svc.Stats.Status[c].Add(1)
	}
}

// fail answers with a generated error and closes.
func (cl *client) fail(code int, msg string) {
	c := cl.conn
	if c.Closing() {
		return
	}
	st := cl.st
	if st == nil {
		st = cl.svc.Settings()
	}
	var buf []byte
	if cl.grpc && cl.state != clHead {
		buf = appendGRPCError(make([]byte, 0, 256), code, msg)
	} else {
		o := status.Options{ServerTokens: st.Svc.ServerTokens, Head: cl.isHEAD && cl.state != clHead}
		if cl.minor == 1 {
			o.Proto = "HTTP/1.1"
		}
		if code == 503 {
			o.Extra = []string{"Retry-After: 5"}
		}
		buf = status.AppendSimple(make([]byte, 0, 512), code, msg, o)
	}
	cl.svc.Stats.Status[code/100].Add(1)
	cl.logStatus(code, 0)
	cl.sent += int64(len(buf))
	cl.observeLatency()
	cl.setState(clClosing)
	c.Write(buf)
	c.Close()
}

func (cl *client) OnEOF(c *engine.Conn) {
	switch cl.state {
	case clDelay:
		// Gone while its request was postponed: it frees its place.
		cl.setState(clClosing)
		c.Close()
		return
	case clHead:
		if len(c.Inbound()) == 0 || cl.requests > 0 {
			cl.setState(clClosing)
			c.Close()
		} else {
			cl.fail(400, "incomplete request")
		}
	case clBody:
		// The client stopped before its body was complete.
		if cl.be != nil {
			cl.be.clientGone()
			cl.be = nil
		}
		cl.setState(clClosing)
		c.Close()
	case clBuffer:
		// Gone before its body was read: nothing was sent anywhere.
		cl.dropUpload()
		cl.setState(clClosing)
		c.Close()
		return
	case clWait:
		if !cl.bodyDone && !cl.bodyBuffered(c.Inbound()) {
			// Half-closed before the body was all sent: the request can
			// never complete.
			if cl.be != nil {
				cl.be.clientGone()
				cl.be = nil
			}
			cl.setState(clClosing)
			c.Close()
			return
		}
	case clTunnel:
		switch {
		case cl.be == nil:
			cl.setState(clClosing)
			c.Close()
		case cl.be.conn.EOF():
			cl.be.endTunnel()
		default:
			cl.be.conn.CloseWrite() // the backend may go on sending
		}
	}
	// clWait/clResp: a half-closed client still gets its response; the
	// close follows it (no more requests can come).
	cl.wantKA = false
}

// bodyBuffered reports whether in holds the rest of the request body (not
// yet forwarded while the client waits for a backend).
func (cl *client) bodyBuffered(in []byte) bool {
	switch cl.bodyMode {
	case http.BodyLength:
		return int64(len(in)) >= cl.bodyLeft
	case http.BodyChunked:
		sc := cl.rs.chunks // a copy: the real scan happens when forwarding
		for len(in) > 0 {
			n, _, done, err := sc.Scan(in)
			if done {
				return true
			}
			if err != nil || n == 0 {
				return false
			}
			in = in[n:]
		}
	}
	return false
}

func (cl *client) OnDrain(c *engine.Conn) {
	cl.trimSpool()
	if cl.be != nil && cl.be.conn.Paused() {
		cl.be.conn.ResumeRead()
	}
	if cl.rp != nil {
		cl.reproxyDrain()
	}
}

func (cl *client) OnTimeout(c *engine.Conn) {
	reading := cl.state == clBody || cl.state == clBuffer
	if reading && cl.bodyLate() {
		// First: reading a response slowly does not buy a pipelined
		// body more time.
		cl.bodyTimedOut()
		return
	}
	if c.Pending() && c.LastWrite().After(c.Loop().Now().Add(-cl.idle())) {
		c.SetTimeout(cl.bodyTimeout()) // a slow reader still making progress
		return
	}
	switch cl.state {
	case clHead:
		if len(c.Inbound()) > 0 {
			cl.fail(408, "request head timeout")
			return
		}
	case clBody:
		if cl.bodyPaused {
			// plb stopped reading (its backend is slower than the
			// client): the backend's own timeout answers.
			c.SetTimeout(cl.idle())
			return
		}
	case clWait, clResp:
		if cl.be != nil || cl.reproxyBusy() {
			return // the backend's own timeout answers 504
		}
		if cl.blocked { // queued behind max_backend_conns for idle_timeout
			cl.svc.Stats.Errors503.Add(1)
			cl.fail(503, "no backend connection free")
			return
		}
	}
	cl.setState(clClosing)
	if cl.be != nil {
		cl.be.clientGone()
		cl.be = nil
	}
	c.Abort(engine.ErrTimeout)
}

// defaultIdleTimeout is idle_timeout's default (config), for a client
// that has no settings snapshot yet.
const defaultIdleTimeout = 30 * time.Second

func (cl *client) idle() time.Duration {
	if cl.st != nil {
		return cl.st.Svc.IdleTimeout
	}
	return defaultIdleTimeout
}

func (cl *client) OnClose(c *engine.Conn, err error) {
	cl.svc.Stats.ClientsOpen.Add(-1)
	cl.writeAccessLog() // a request cut short by the client (499) or us
	cl.setState(clClosing)
	cl.endHooks()
	cl.releaseState()
	if cl.be != nil {
		cl.be.clientGone()
		cl.be = nil
	}
	if cl.spool != nil {
		cl.spool.Close()
		cl.dropSpool()
	}
	cl.dropUpload()
	if cl.rp != nil {
		cl.reproxyClose()
	}
	if cl.retryWait != nil {
		cl.retryWait.Stop()
	}
}

// quiet reports whether the client sent nothing not yet read: no next
// request, not even in part, and no EOF (engine.Conn.Quiet).
func quiet(c *engine.Conn) bool {
	q, _ := c.Quiet()
	return q
}

// DrainIdle closes the connection if it waits for a next request (graceful
// shutdown) and none has arrived, not even in part; a connection that has
// not sent its first request gets engine.FirstRequestGrace. Runs on the
// loop.
func (cl *client) DrainIdle(c *engine.Conn) {
	if cl.state == clHead && (cl.requests > 0 || !c.Young()) && quiet(c) {
		cl.setState(clClosing)
		c.Close()
	}
}
