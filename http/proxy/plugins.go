package proxy

import (
	"time"

	"github.com/plb/plb/http"
	"github.com/plb/plb/http/handoff"
	"github.com/plb/plb/http/status"
	"github.com/plb/plb/plugin"
)

// The plugin hook points of the reverse proxy (only for a service with
// plugins: Settings.Hooks is nil otherwise and none of this runs).

// startHooks runs start_proxy_request, start_http_request and the
// priority hooks for the request just parsed; it reports whether a hook
// answered it (the answer is sent).
func (cl *client) startHooks(st *Settings, r *http.RequestHead) bool {
	if cl.plug == nil {
		cl.plug = &plugState{}
	}
	ps := cl.plug
	ps.hooks = st.Hooks
	pr := &ps.req
	pr.Reset()
	pr.Svc, pr.Head, pr.Conn, pr.Now = st.Svc, r, cl.conn, cl.conn.Loop().Now()
	pr.TLS = st.Svc.EnableSSL
	if !st.Hooks.StartProxy(pr) {
		return false
	}
	cl.answerHook(st, pr.Response())
	return true
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
	o := status.Options{ServerTokens: st.Svc.ServerTokens, Head: cl.isHEAD, KeepAlive: ka,
		KeepAliveTimeout: int(st.Svc.PersistClientIdleTimeout / time.Second)}
	if cl.minor == 1 {
		o.Proto = "HTTP/1.1"
	}
	ps := cl.plug
	ps.buf = plugin.AppendResponse(ps.buf[:0], resp, o)
	cl.svc.Stats.Responses.Add(1)
	if code := resp.Status / 100; code > 0 && code < len(cl.svc.Stats.Status) {
		cl.svc.Stats.Status[code].Add(1)
	}
	cl.svc.Stats.BytesOut.Add(int64(len(ps.buf)))
	c.Write(ps.buf)
	if cap(ps.buf) > 16<<10 {
		ps.buf = nil
	}
	ps.req.Head = nil
	cl.requests++
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
// edits for the client's response head (nil: none).
func (be *backend) responseHooks(cl *client, status int) *handoff.Rules {
	ps := cl.plug
	if ps == nil || ps.hooks == nil {
		return nil
	}
	pr := &ps.req
	pr.Now = be.conn.Loop().Now()
	ps.hooks.BackendResponseReceived(pr, status)
	if !ps.hooks.WantsResponseEdits() {
		return nil
	}
	ps.resp.Reset()
	ps.hooks.ModifyResponseHeaders(pr, status, &ps.resp)
	if ps.resp.Empty() {
		return nil
	}
	return &ps.resp.Rules
}
