package proxy

import (
	"strconv"
	"time"

	"github.com/plb/plb/http"
	"github.com/plb/plb/http/handoff"
	"github.com/plb/plb/http/plugin"
)

// The plugin hook points of the reverse proxy (only for a service with
// plugins: Settings.Hooks is nil otherwise and none of this runs).

// delayInputMax is the input a postponed request may hold (its head, a
// body, pipelined requests) before reading pauses until the delay ends.
const delayInputMax = 64 << 10

// The outcomes of startHooks.
const (
	hooksPassed   = iota // no hook handled the request: it goes on
	hooksAnswered        // answered (sent) or dropped: the head is consumed
	hooksDelayed         // postponed: nothing is consumed
)

// startHooks runs start_proxy_request, start_http_request and the
// priority hooks for the request just parsed; it sends the answer a hook
// gave, closes the connection a hook dropped, or postpones the request a
// hook delayed.
func (cl *client) startHooks(st *Settings, r *http.RequestHead) int {
	if cl.plug == nil {
		cl.plug = &plugState{}
	}
	ps := cl.plug
	pr := &ps.req
	if ps.resuming {
		ps.resuming = false
		pr.ResetResumed()
	} else {
		pr.Reset()
	}
	ps.hooks = st.Hooks
	ps.active = true
	pr.Svc, pr.Head, pr.Conn, pr.Now = st.Svc, r, cl.conn, cl.conn.Loop().Now()
	pr.TLS = st.Svc.EnableSSL || cl.conn.TLS() // a TLS selector's client too
	pr.Log = cl.svc.log
	if !st.Hooks.StartProxy(pr) {
		return hooksPassed
	}
	if d, ok := pr.Delayed(); ok && !pr.Answered() {
		cl.delayRequest(d)
		return hooksDelayed
	}
	if pr.Dropped() && !pr.Answered() {
		pr.Head = nil
		cl.setState(clClosing)
		cl.conn.Close()
		return hooksAnswered
	}
	cl.answerHook(st, pr.Response())
	return hooksAnswered
}

// delayRequest leaves the request just parsed in the input, unread, for d;
// then it is read again and its hooks run again (Resumed).
func (cl *client) delayRequest(d time.Duration) {
	c := cl.conn
	ps := cl.plug
	ps.req.Head = nil
	cl.rs.parser.Reset()
	cl.setState(clDelay)
	c.SetTimeout(0) // the delay is the plugin's to decide, not idle time
	if ps.delay == nil {
		ps.delay = c.Loop().AfterFunc(d, cl.delayDone)
	} else {
		ps.delay.Reset(d)
	}
}

// delayDone resumes a postponed request, unless its client left.
func (cl *client) delayDone() {
	c := cl.conn
	if cl.state != clDelay || c.Closing() {
		return
	}
	cl.plug.resuming = true
	cl.setState(clHead)
	c.SetTimeout(headerTimeout(cl.st))
	c.ResumeRead()
	c.Kick()
}

// endHooks runs end_proxy_request once for a request whose start hooks
// ran: at its end, or when its connection closes or goes elsewhere.
func (cl *client) endHooks() {
	ps := cl.plug
	if ps == nil || !ps.active {
		return
	}
	ps.active = false
	if ps.delay != nil {
		ps.delay.Stop()
	}
	if ps.hooks.WantsEnd() {
		pr := &ps.req
		pr.Head, pr.Resp = nil, nil
		pr.Now = cl.conn.Loop().Now()
		ps.hooks.EndProxyRequest(pr)
	}
}

// assignHooks runs backend_client_assigned and returns the header edits
// for the backend request (nil: none).
func (cl *client) assignHooks(st *Settings) *handoff.Rules {
	ps := cl.plug
	pr := &ps.req
	pr.Assigned = cl.conn.Loop().Now()
	q := &pr.Queue
	q.Count, q.HighCount, q.Age, q.HighAge = cl.svc.queueInfo(cl.conn.Loop())
	ps.backend.Reset()
	if st.Hooks.WantsBackendEdits() {
		st.Hooks.BackendClientAssigned(pr, &ps.backend)
	}
	// The head's views die with this callback: later hooks see no Head.
	pr.Head = nil
	if ps.backend.Empty() {
		return nil
	}
	return &ps.backend.Rules
}

// answerHook sends the answer a hook gave: keep-alive as the request
// allows when it has no body (the body is not read), then the next
// request.
func (cl *client) answerHook(st *Settings, resp *plugin.Response) {
	c := cl.conn
	ka := cl.wantKA && cl.bodyMode == http.BodyNone && !cl.upgrade
	ps := cl.plug
	ps.buf = plugin.AppendResponse(ps.buf[:0], resp, cl.answerOptions(st, ka))
	cl.countResponse(resp.Status)
	cl.countOut(int64(len(ps.buf)))
	c.Write(ps.buf)
	if cap(ps.buf) > 16<<10 {
		ps.buf = nil
	}
	ps.req.Head = nil
	cl.countRequest()
	cl.observeLatency()
	if !ka {
		cl.setState(clClosing)
		c.Close()
		return
	}
	cl.nextRequest()
}

// responseHooks runs backend_response_received and
// modify_response_headers for a backend's response head; it returns the
// edits for the client's response head (nil: none), the status the client
// gets instead of the backend's (0: the same) and the bytes to send before
// the body (PrependBody).
func (be *backend) responseHooks(cl *client, r *http.ResponseHead) (edits *handoff.Rules, code int, pre []byte) {
	ps := cl.plug
	if ps == nil || ps.hooks == nil {
		return nil, 0, nil
	}
	pr := &ps.req
	pr.Now = be.conn.Loop().Now()
	pr.Resp = r
	pr.ClearResponseEdits()
	defer func() { pr.Resp = nil }()
	ps.hooks.BackendResponseReceived(pr, r.Status)
	if !ps.hooks.WantsResponseEdits() {
		return nil, 0, nil
	}
	ps.resp.Reset()
	ps.hooks.ModifyResponseHeaders(pr, r.Status, &ps.resp)
	code, pre = pr.StatusOverride(), pr.Prepended()
	if ps.resp.Empty() {
		return nil, code, pre
	}
	return &ps.resp.Rules, code, pre
}

// appendPrepended appends bytes a hook sends before the body (after the
// response head in dst): as a chunk of its own when the client gets a
// chunked body.
func (be *backend) appendPrepended(dst, pre []byte) []byte {
	if be.rechunk || be.mode == http.BodyChunked && !be.dechunk {
		dst = strconv.AppendInt(dst, int64(len(pre)), 16)
		dst = append(dst, "\r\n"...)
		dst = append(dst, pre...)
		return append(dst, "\r\n"...)
	}
	return append(dst, pre...)
}
