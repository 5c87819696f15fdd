package server

import (
	"maps"
	"time"

	"github.com/plb/plb/engine"
	"github.com/plb/plb/http/proxy"
	"github.com/plb/plb/http/static"
	"github.com/plb/plb/manage"
)

// The rest of manage.Runtime: what the console shows and the commands that
// reach beyond the model.
var _ manage.Runtime = (*Server)(nil)

// ServiceStatus returns a running service's figures. Safe from any
// goroutine.
func (s *Server) ServiceStatus(name string) manage.ServiceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	sv := s.services[name]
	var st manage.ServiceStatus
	if sv == nil {
		return st
	}
	if sv.ln != nil {
		st.Listening = sv.ln.Addr().String()
	}
	switch {
	case sv.proxy != nil:
		ps := &sv.proxy.Stats
		st.Requests = ps.Requests.Load()
		st.Bored = sv.proxy.Bored.Load()
		st.PendClients = ps.Waiting.Load()
		st.PendBackends = ps.Connecting.Load()
		for i, q := range sv.proxy.Queues() {
			st.Queues[i] = manage.QueueStatus{Count: q.Count, Oldest: q.Oldest}
		}
		for i := range st.Responses {
			st.Responses[i] = ps.Status[i].Load()
		}
		st.BytesIn, st.BytesOut = ps.BytesIn.Load(), ps.BytesOut.Load()
		st.Clients, st.Backends = ps.ClientsOpen.Load(), ps.Backends.Load()
		st.Errors502, st.Errors503, st.Errors504 = ps.Errors502.Load(), ps.Errors503.Load(), ps.Errors504.Load()
		st.Resends = ps.Resends.Load()
		st.Spooled, st.SpoolFull = sv.proxy.Spooled(), ps.SpoolFull.Load()
		st.Latency = histogram(ps.Latency.Snapshot())
		if cs, ok := sv.proxy.ReproxyCacheStats(); ok {
			st.ReproxyCache = &manage.CacheStatus{Size: cs.Size, Max: cs.Max, Hits: cs.Hits, Requests: cs.Requests}
		}
	case sv.web != nil:
		ws := &sv.web.Stats
		st.Requests = sv.web.Requests.Load()
		for i := range st.Responses {
			st.Responses[i] = ws.Status[i].Load()
		}
		st.BytesIn, st.BytesOut = ws.BytesIn.Load(), ws.BytesOut.Load()
		st.Clients = ws.ClientsOpen.Load()
		if f := sv.front.Load(); f != nil {
			st.Clients += f.Stats.ClientsOpen.Load() // between requests, with the plugins' front
		}
	case sv.relay != nil:
		rs := &sv.relay.Stats
		st.Requests = rs.Sessions.Load()
		st.BytesIn, st.BytesOut = rs.BytesIn.Load(), rs.BytesOut.Load()
		st.Clients = rs.Active.Load()
		st.Sessions = &manage.SessionStatus{
			Total: rs.Sessions.Load(), Relayed: rs.Relayed.Load(), NoBackend: rs.NoBackend.Load(),
			EarlyTalkers: rs.EarlyTalkers.Load(), BackendFailures: rs.BackendFailures.Load(),
		}
	case sv.sel != nil:
		ss := &sv.sel.Stats
		st.Requests = ss.Requests.Load()
		for i := range st.Responses {
			st.Responses[i] = ss.Status[i].Load()
		}
		st.BytesOut = ss.BytesOut.Load()
		st.Clients = ss.ClientsOpen.Load()
	}
	return st
}

func histogram(h proxy.LatencySnapshot) *manage.Histogram {
	bounds := proxy.LatencyBounds()
	out := &manage.Histogram{Counts: h.Counts[:], Count: h.Count, Sum: h.Sum.Seconds()}
	for _, b := range bounds {
		out.Bounds = append(out.Bounds, b.Seconds())
	}
	return out
}

// Socks lists every listening socket and connection of every loop. It
// waits for the loops: never call it on one. Safe from any other goroutine.
func (s *Server) Socks() []manage.Sock {
	s.mu.Lock()
	owner := map[*engine.Listener]string{}
	for name, sv := range s.services {
		if sv.ln != nil {
			owner[sv.ln] = name
		}
	}
	s.mu.Unlock()
	per := make([][]manage.Sock, len(s.eng.Loops()))
	s.eng.RunAll(func(l *engine.Loop) {
		var out []manage.Sock
		l.EachListener(func(fd int, ln *engine.Listener) {
			out = append(out, manage.Sock{
				Fd: fd, Created: ln.Created(), Listener: true, Reading: true, Addr: ln.Addr().String(),
				Info: engine.ConnInfo{Service: owner[ln]},
			})
		})
		l.EachConn(func(c *engine.Conn) {
			sk := manage.Sock{
				Fd: c.Fd(), Created: c.Created(), Addr: c.RemoteAddr().String(),
				Reading: !c.Paused() && !c.EOF(), Writing: c.Pending(), WriteBuf: c.Buffered(),
			}
			if d, ok := c.Handler().(engine.Describer); ok {
				sk.Info = d.Describe(c)
			}
			out = append(out, sk)
		})
		per[l.ID()] = out
	})
	var all []manage.Sock
	for _, p := range per {
		all = append(all, p...)
	}
	return all
}

// MIME returns a copy of the web servers' MIME table. Safe from any
// goroutine.
func (s *Server) MIME() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mime == nil {
		return static.MIMETypes()
	}
	return maps.Clone(s.mime)
}

// SetMIME makes m the web servers' MIME table, at once for every running
// web server and for those created later. Safe from any goroutine.
func (s *Server) SetMIME(m map[string]string) {
	m = maps.Clone(m)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mime = m
	for name, sv := range s.services {
		if sc := s.cfg.Service(name); sv.web != nil && sc != nil {
			old := sv.web.Settings()
			st := s.webSettings(sc, m, old.Hooks)
			st.AccessLog = old.AccessLog
			sv.web.Update(st)
		}
	}
}

// Draining reports a graceful stop in progress. Safe from any goroutine.
func (s *Server) Draining() bool {
	if s.inGrace.Load() {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopping
}

// StopAfter stops the process at once after d, whether a graceful stop
// has finished draining or not (Perlbal's "shutdown graceful N"). Safe from
// any goroutine.
func (s *Server) StopAfter(d time.Duration) {
	time.AfterFunc(d, func() { s.Shutdown(false) })
}
