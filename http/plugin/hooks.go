package plugin

import (
	"fmt"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
)

// Hooks are the instances of the plugins registered on one service, sorted
// by hook, in registration order. A nil *Hooks (a service without plugins)
// runs nothing; the roles test for nil before building a Request, so that
// a service without plugins pays nothing.
type Hooks struct {
	names       []string
	httpStart   []HTTPRequestStarter
	proxyStart  []ProxyRequestStarter
	webStart    []WebRequestStarter
	serveStart  []ServeRequestStarter
	selector    Selector // the last one registered, as Perlbal's
	assigned    []BackendClientAssigner
	received    []BackendResponseReceiver
	modifyResp  []ResponseHeaderModifier
	highPri     []HighPrioritizer
	lowPri      []LowPrioritizer
	returnToBas []BaseReturner
	endProxy    []ProxyRequestEnder
	fileMissing []StaticFileMissing
	preSend     []StaticPreSender
}

// Hooks makes the instances of svc's registered plugins. It returns nil
// when svc has no plugins.
func (r *Registry) Hooks(svc *config.Service) (*Hooks, error) {
	if len(svc.Plugins) == 0 {
		return nil, nil
	}
	h := &Hooks{}
	for _, name := range svc.Plugins {
		p, ok := r.Plugin(name)
		if !ok {
			return nil, fmt.Errorf("service %s: plugin %s is not compiled in", svc.Name, name)
		}
		inst, err := p.Register(svc)
		if err != nil {
			return nil, fmt.Errorf("service %s: plugin %s: %w", svc.Name, p.Describe().Name, err)
		}
		h.add(p.Describe().Name, inst)
	}
	return h, nil
}

// NewHooks builds Hooks from instances directly (tests, and roles that run
// a fixed set).
func NewHooks(instances ...any) *Hooks {
	h := &Hooks{}
	for _, inst := range instances {
		h.add(fmt.Sprintf("%T", inst), inst)
	}
	return h
}

func (h *Hooks) add(name string, inst any) {
	h.names = append(h.names, name)
	if x, ok := inst.(HTTPRequestStarter); ok {
		h.httpStart = append(h.httpStart, x)
	}
	if x, ok := inst.(ProxyRequestStarter); ok {
		h.proxyStart = append(h.proxyStart, x)
	}
	if x, ok := inst.(WebRequestStarter); ok {
		h.webStart = append(h.webStart, x)
	}
	if x, ok := inst.(ServeRequestStarter); ok {
		h.serveStart = append(h.serveStart, x)
	}
	if x, ok := inst.(Selector); ok {
		h.selector = x
	}
	if x, ok := inst.(BackendClientAssigner); ok {
		h.assigned = append(h.assigned, x)
	}
	if x, ok := inst.(BackendResponseReceiver); ok {
		h.received = append(h.received, x)
	}
	if x, ok := inst.(ResponseHeaderModifier); ok {
		h.modifyResp = append(h.modifyResp, x)
	}
	if x, ok := inst.(HighPrioritizer); ok {
		h.highPri = append(h.highPri, x)
	}
	if x, ok := inst.(LowPrioritizer); ok {
		h.lowPri = append(h.lowPri, x)
	}
	if x, ok := inst.(BaseReturner); ok {
		h.returnToBas = append(h.returnToBas, x)
	}
	if x, ok := inst.(ProxyRequestEnder); ok {
		h.endProxy = append(h.endProxy, x)
	}
	if x, ok := inst.(StaticFileMissing); ok {
		h.fileMissing = append(h.fileMissing, x)
	}
	if x, ok := inst.(StaticPreSender); ok {
		h.preSend = append(h.preSend, x)
	}
}

// Names lists the registered plugins.
func (h *Hooks) Names() []string {
	if h == nil {
		return nil
	}
	return h.names
}

// StartProxy runs start_proxy_request then start_http_request, then, for
// a request not handled, make_high_priority and make_low_priority (which
// set r's priority). It reports whether a hook handled the request: it
// answered it, or postponed it (r.Delayed) or dropped it (r.Dropped).
func (h *Hooks) StartProxy(r *Request) bool {
	if h == nil {
		return false
	}
	for _, x := range h.proxyStart {
		if x.StartProxyRequest(r) {
			return true
		}
	}
	if h.StartHTTP(r) {
		return true
	}
	for _, x := range h.highPri {
		if x.MakeHighPriority(r) {
			r.high = true
			break
		}
	}
	for _, x := range h.lowPri {
		if x.MakeLowPriority(r) {
			r.low = true
			break
		}
	}
	return false
}

// StartWeb runs start_web_request then start_http_request, then
// start_serve_request, which may rewrite the URI (r.ServeURI). It reports
// whether a hook handled the request.
func (h *Hooks) StartWeb(r *Request) bool {
	if h == nil {
		return false
	}
	for _, x := range h.webStart {
		if x.StartWebRequest(r) {
			return true
		}
	}
	if h.StartHTTP(r) {
		return true
	}
	if len(h.serveStart) > 0 && r.Head != nil {
		uri := r.Head.Path
		for _, x := range h.serveStart {
			if u := x.StartServeRequest(r, uri); u != nil {
				uri = u
				r.serveURI = u
			}
		}
	}
	return false
}

// StartHTTP runs start_http_request and reports whether a hook handled
// the request.
func (h *Hooks) StartHTTP(r *Request) bool {
	if h == nil {
		return false
	}
	for _, x := range h.httpStart {
		if x.StartHTTPRequest(r) {
			return true
		}
	}
	return false
}

// HasSelector reports whether a registered plugin selects targets.
func (h *Hooks) HasSelector() bool { return h != nil && h.selector != nil }

// Select asks the selector plugin for a target (r.Target) or an answer; it
// reports false when there is no selector plugin or it declined.
func (h *Hooks) Select(r *Request) bool {
	if !h.HasSelector() {
		return false
	}
	return h.selector.Select(r)
}

// WantsBackendEdits reports whether BackendClientAssigned does anything.
func (h *Hooks) WantsBackendEdits() bool { return h != nil && len(h.assigned) > 0 }

// BackendClientAssigned runs backend_client_assigned, collecting header
// edits in e.
func (h *Hooks) BackendClientAssigned(r *Request, e *HeaderEdits) {
	if h == nil {
		return
	}
	for _, x := range h.assigned {
		x.BackendClientAssigned(r, e)
	}
}

// BackendResponseReceived runs backend_response_received.
func (h *Hooks) BackendResponseReceived(r *Request, status int) {
	if h == nil {
		return
	}
	for _, x := range h.received {
		x.BackendResponseReceived(r, status)
	}
}

// WantsResponseEdits reports whether ModifyResponseHeaders does anything.
func (h *Hooks) WantsResponseEdits() bool { return h != nil && len(h.modifyResp) > 0 }

// ModifyResponseHeaders runs modify_response_headers, collecting edits in e.
func (h *Hooks) ModifyResponseHeaders(r *Request, status int, e *HeaderEdits) {
	if h == nil {
		return
	}
	for _, x := range h.modifyResp {
		x.ModifyResponseHeaders(r, status, e)
	}
}

// ReturnToBase runs return_to_base and reports whether a plugin took the
// connection.
func (h *Hooks) ReturnToBase(c *engine.Conn) bool {
	if h == nil {
		return false
	}
	for _, x := range h.returnToBas {
		if x.ReturnToBase(c) {
			return true
		}
	}
	return false
}

// WantsEnd reports whether EndProxyRequest does anything.
func (h *Hooks) WantsEnd() bool { return h != nil && len(h.endProxy) > 0 }

// EndProxyRequest runs end_proxy_request: every instance's hook.
func (h *Hooks) EndProxyRequest(r *Request) {
	if h == nil {
		return
	}
	for _, x := range h.endProxy {
		x.EndProxyRequest(r)
	}
}

// WantsStatic reports whether a plugin hooks the web server's file
// serving (StaticFileMissing, StaticPreSend).
func (h *Hooks) WantsStatic() bool {
	return h != nil && (len(h.fileMissing) > 0 || len(h.preSend) > 0)
}

// StaticFileMissing runs the file_missing hooks and reports whether one
// took the request.
func (h *Hooks) StaticFileMissing(r *Request) bool {
	if h == nil {
		return false
	}
	for _, x := range h.fileMissing {
		if x.StaticFileMissing(r) {
			return true
		}
	}
	return false
}

// StaticPreSend runs the pre_send hooks and reports whether one took the
// request.
func (h *Hooks) StaticPreSend(r *Request, mtime time.Time) bool {
	if h == nil {
		return false
	}
	for _, x := range h.preSend {
		if x.StaticPreSend(r, mtime) {
			return true
		}
	}
	return false
}
