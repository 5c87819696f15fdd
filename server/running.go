package server

import (
	"sync/atomic"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
	"github.com/plb/plb/http/handoff"
	"github.com/plb/plb/http/plugin"
	"github.com/plb/plb/http/proxy"
	"github.com/plb/plb/http/selector"
	"github.com/plb/plb/http/webserver"
	"github.com/plb/plb/manage"
	"github.com/plb/plb/smtp"
)

// running is a service's handler as the server uses it, whatever its role
// (the other half of the role contract in role.go: a role's prepare
// creates its running, its commit updates it). The server holds one per
// service and never asks which role it is:
//
//   - Accept is its listener's OnAccept (runs on the loop).
//   - drain makes its clients close after their current request or
//     session (a retired service, a graceful stop).
//   - closeIdle and dropStale run on every loop l: close the idle backend
//     connections it keeps (at a stop or retire), and those it would no
//     longer reuse (a node removed, a pool switched away from).
//   - status fills the console's and the metrics' figures; requests is the
//     HTTP requests it received (Perlbal's server-wide count).
//   - target is what a selector, X-REPROXY-SERVICE or a web server's hook
//     hands clients to; sc and hooks are the service's configuration and
//     plugins.
type running interface {
	Accept(c *engine.Conn) engine.Handler
	drain()
	closeIdle(l *engine.Loop)
	dropStale(l *engine.Loop)
	status(st *manage.ServiceStatus)
	requests() int64
	target(sc *config.Service, hooks *plugin.Hooks) handoff.Target
}

// quiet is running's defaults for a handler with no backend connections
// of its own and no HTTP requests to count.
type quiet struct{}

func (quiet) closeIdle(*engine.Loop)       {}
func (quiet) dropStale(*engine.Loop)       {}
func (quiet) requests() int64              { return 0 }
func (quiet) status(*manage.ServiceStatus) {}
func (quiet) drain()                       {}

// proxyRun is a reverse_proxy's running.
type proxyRun struct{ *proxy.Service }

func (r proxyRun) drain()                                               { r.Drain() }
func (r proxyRun) closeIdle(l *engine.Loop)                             { r.CloseIdle(l) }
func (r proxyRun) dropStale(l *engine.Loop)                             { r.DropStale(l) }
func (r proxyRun) requests() int64                                      { return r.Stats.Requests.Load() }
func (proxyRun) Role() string                                           { return config.RoleReverseProxy }
func (r proxyRun) target(*config.Service, *plugin.Hooks) handoff.Target { return r }

func (r proxyRun) status(st *manage.ServiceStatus) {
	ps := &r.Stats
	st.Requests = ps.Requests.Load()
	st.Bored = r.Bored.Load()
	st.PendClients = ps.Waiting.Load()
	st.PendBackends = ps.Connecting.Load()
	for i, q := range r.Queues() {
		st.Queues[i] = manage.QueueStatus{Count: q.Count, Oldest: q.Oldest}
	}
	for i := range st.Responses {
		st.Responses[i] = ps.Status[i].Load()
	}
	st.BytesIn, st.BytesOut = ps.BytesIn.Load(), ps.BytesOut.Load()
	st.Clients, st.Backends = ps.ClientsOpen.Load(), ps.Backends.Load()
	st.Errors502, st.Errors503, st.Errors504 = ps.Errors502.Load(), ps.Errors503.Load(), ps.Errors504.Load()
	st.Resends = ps.Resends.Load()
	st.Spooled, st.SpoolFull = r.Spooled(), ps.SpoolFull.Load()
	st.Latency = histogram(ps.Latency.Snapshot())
	if cs, ok := r.ReproxyCacheStats(); ok {
		st.ReproxyCache = &manage.CacheStatus{Size: cs.Size, Max: cs.Max, Hits: cs.Hits, Requests: cs.Requests}
	}
	if r.Settings().BackendH2 != nil {
		h := r.H2Stats()
		st.BackendHTTP2 = &manage.HTTP2Status{Conns: h.Conns.Load(), Streams: h.Streams.Load(), StreamsTotal: h.StreamsTotal.Load()}
	}
}

// webRun is a web_server's running. front is set when the web server has
// plugins: its connections start there, and the front hands each request
// on after running them (setFront).
type webRun struct {
	web   *webserver.Service
	front atomic.Pointer[selector.Service]
}

func (r *webRun) Accept(c *engine.Conn) engine.Handler {
	if f := r.front.Load(); f != nil {
		return f.Accept(c) // the web server has plugins: its front runs them
	}
	return r.web.Accept(c)
}

func (r *webRun) drain() {
	r.web.Drain()
	if f := r.front.Load(); f != nil {
		f.Drain()
	}
}

func (*webRun) closeIdle(*engine.Loop) {}
func (*webRun) dropStale(*engine.Loop) {}
func (r *webRun) requests() int64      { return r.web.Requests.Load() }

func (r *webRun) status(st *manage.ServiceStatus) {
	ws := &r.web.Stats
	st.Requests = r.web.Requests.Load()
	for i := range st.Responses {
		st.Responses[i] = ws.Status[i].Load()
	}
	st.BytesIn, st.BytesOut = ws.BytesIn.Load(), ws.BytesOut.Load()
	st.Clients = ws.ClientsOpen.Load()
	if f := r.front.Load(); f != nil {
		st.Clients += f.Stats.ClientsOpen.Load() // between requests, with the plugins' front
	}
}

func (r *webRun) target(sc *config.Service, hooks *plugin.Hooks) handoff.Target {
	if hooks != nil {
		return hookedWebTarget{webTarget{r.web}, hooks, sc}
	}
	return webTarget{r.web}
}

// setFront gives the web server with plugins its front (a selector fixed
// on it), or takes it away. Called with Server.mu held.
func (r *webRun) setFront(s *Server, sc *config.Service, hooks *plugin.Hooks) {
	if hooks == nil {
		if f := r.front.Load(); f != nil {
			// Its connections now pass every request straight on.
			f.Update(selector.NewFront(sc, nil, webTarget{r.web}))
			r.front.Store(nil)
		}
		return
	}
	st := selector.NewFront(sc, hooks, webTarget{r.web})
	if f := r.front.Load(); f != nil {
		f.Update(st)
		return
	}
	r.front.Store(selector.New(sc.Name, st, s.log.With("service", sc.Name)))
}

type webTarget struct{ *webserver.Service }

func (webTarget) Role() string { return config.RoleWebServer }

// hookedWebTarget is a web server with plugins: the selector runs them.
type hookedWebTarget struct {
	webTarget
	hooks *plugin.Hooks
	svc   *config.Service
}

func (t hookedWebTarget) Hooks() (*plugin.Hooks, *config.Service) { return t.hooks, t.svc }

// selectorRun is a selector's running; the selector is its own target.
type selectorRun struct{ *selector.Service }

func (r selectorRun) drain()                                               { r.Drain() }
func (selectorRun) closeIdle(*engine.Loop)                                 {}
func (selectorRun) dropStale(*engine.Loop)                                 {}
func (r selectorRun) requests() int64                                      { return r.Stats.Requests.Load() }
func (r selectorRun) target(*config.Service, *plugin.Hooks) handoff.Target { return r.Service }

func (r selectorRun) status(st *manage.ServiceStatus) {
	ss := &r.Stats
	st.Requests = ss.Requests.Load()
	for i := range st.Responses {
		st.Responses[i] = ss.Status[i].Load()
	}
	st.BytesOut = ss.BytesOut.Load()
	st.Clients = ss.ClientsOpen.Load()
}

// mgmtRun is the console's running: a selector may hand it HTTP clients
// (Perlbal's console answers HTTP). Its connections are not drained: the
// console stays to watch a stop.
type mgmtRun struct {
	quiet
	*manage.Service
}

func (mgmtRun) Role() string                                           { return config.RoleManagement }
func (r mgmtRun) target(*config.Service, *plugin.Hooks) handoff.Target { return r }

// relayRun is an smtp_proxy's or tcp_proxy's running.
type relayRun struct {
	quiet
	*smtp.Service
}

func (r relayRun) drain() { r.Drain() }

func (r relayRun) status(st *manage.ServiceStatus) {
	rs := &r.Stats
	st.Requests = rs.Sessions.Load()
	st.BytesIn, st.BytesOut = rs.BytesIn.Load(), rs.BytesOut.Load()
	st.Clients = rs.Active.Load()
	st.Sessions = &manage.SessionStatus{
		Total: rs.Sessions.Load(), Relayed: rs.Relayed.Load(), NoBackend: rs.NoBackend.Load(),
		EarlyTalkers: rs.EarlyTalkers.Load(), BackendFailures: rs.BackendFailures.Load(),
	}
}

func (relayRun) target(sc *config.Service, _ *plugin.Hooks) handoff.Target {
	return otherTarget(sc.Role)
}

// pluginRun is a role a plugin adds (EchoService's echo).
type pluginRun struct {
	quiet
	plugin.Role
}

func (pluginRun) target(sc *config.Service, _ *plugin.Hooks) handoff.Target {
	return otherTarget(sc.Role)
}

// otherTarget is a service a selector cannot hand HTTP clients to (a
// relay, a role a plugin adds, or none yet): the selector answers 500
// "Can't map to service type" from its Role and never calls Adopt.
type otherTarget string

func (t otherTarget) Role() string                           { return string(t) }
func (otherTarget) Adopt(c *engine.Conn, hc *handoff.Client) { c.Close() }
