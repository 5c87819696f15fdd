package server

import (
	"maps"
	"time"

	"github.com/plb/plb/engine"
	"github.com/plb/plb/http/proxy"
	"github.com/plb/plb/http/static"
	"github.com/plb/plb/manage"
	"github.com/plb/plb/pool/source"
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
	if sv.run != nil {
		sv.run.status(&st)
	}
	if sv.h2.Load() != nil {
		st.HTTP2 = &manage.HTTP2Status{Conns: sv.h2Stats.Conns.Load(), Streams: sv.h2Stats.Streams.Load(),
			StreamsTotal: sv.h2Stats.StreamsTotal.Load()}
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
		if r, ok := sv.run.(*webRun); ok && s.cfg.Service(name) != nil {
			old := r.web.Settings()
			st := s.webSettings(s.cfg.Service(name), m, old.Hooks)
			st.AccessLog = old.AccessLog
			r.web.Update(st)
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

// PoolSource implements manage.Runtime: how the pool's node source is
// doing, when it asks something (DNS).
func (s *Server) PoolSource(name string) (manage.SourceStatus, bool) {
	s.mu.Lock()
	ps := s.sources.m[name]
	s.mu.Unlock()
	if ps == nil {
		return manage.SourceStatus{}, false
	}
	r, ok := ps.src.(source.Reporter)
	if !ok {
		return manage.SourceStatus{}, false
	}
	st := r.Status().Snapshot()
	return manage.SourceStatus{Source: ps.src.String(), OK: st.OK, Err: st.Err, Since: st.Since, Nodes: st.Nodes,
		Failures: st.Failures}, true
}
