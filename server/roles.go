package server

import (
	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
	"github.com/plb/plb/http/handoff"
	"github.com/plb/plb/http/plugin"
	"github.com/plb/plb/http/webserver"
)

// The selector role's view of the running services: every service is a
// possible target (enabled or not, as Perlbal: a service without listen is
// reachable only through a selector). The map is rebuilt by each Apply
// and read by the loops without a lock.
type targets map[string]handoff.Target

// resolve finds a target by name (a handoff.Resolver for selectors,
// X-REPROXY-SERVICE and web servers' hooks). Safe from any goroutine.
func (s *Server) resolve(name string) handoff.Target {
	if m := s.targets.Load(); m != nil {
		return (*m)[name]
	}
	return nil
}

// publishTargets makes the running services the selectors' targets.
// Called with s.mu held.
func (s *Server) publishTargets(c *config.Config, hooks map[string]*plugin.Hooks) {
	m := make(targets, len(s.services))
	for name, sv := range s.services {
		sc := c.Service(name)
		if sc == nil {
			continue
		}
		if sv.run == nil {
			m[name] = otherTarget(sc.Role)
			continue
		}
		m[name] = sv.run.target(sc, hooks[name])
	}
	s.targets.Store(&m)
}

// accept is the OnAccept of sv's listener. It tags the connection with sv
// (Conn.Ctx, which no handler uses) so that a retired service can find its
// idle connections, and starts TLS on it for enable_ssl. Runs on the loop.
func (sv *service) accept(c *engine.Conn) engine.Handler {
	c.Ctx = sv
	if cfg := sv.tls.Load(); cfg != nil {
		c.StartTLS(cfg, sv.notTLS()) // enable_ssl: the handler sees plaintext
	}
	if sv.run == nil {
		return nil
	}
	if o := sv.h2.Load(); o != nil {
		return &sniff{sv: sv, o: o} // HTTP/2 or not: its first bytes say (http2.go)
	}
	return sv.run.Accept(c)
}

// webSettings builds a web server's snapshot: with its plugins when some
// hook the serving of files (LazyCDN), which may hand a request to another
// service.
func (s *Server) webSettings(sc *config.Service, mime map[string]string, hooks *plugin.Hooks) *webserver.Settings {
	st := webserver.NewSettings(sc, mime)
	if hooks.WantsStatic() {
		st.Hooks = hooks
		st.Resolve = s.resolve
	}
	return st
}

// PluginCommand runs a console command a LOADed plugin adds
// (manage.PluginCommander). Safe from any goroutine.
func (s *Server) PluginCommand(line string) ([]string, bool, error) {
	return s.reg.Command(s.Config(), line)
}
