package server

import (
	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
	"github.com/plb/plb/http/handoff"
	"github.com/plb/plb/http/plugin"
	"github.com/plb/plb/http/proxy"
	"github.com/plb/plb/http/selector"
	"github.com/plb/plb/http/webserver"
	"github.com/plb/plb/manage"
)

// The selector role's view of the running services: every service is a
// possible target (enabled or not, as Perlbal: a service without listen is
// reachable only through a selector). The map is rebuilt by each Apply
// and read by the loops without a lock.
type targets map[string]selector.Target

// resolve finds a target by name. Safe from any goroutine.
func (s *Server) resolve(name string) selector.Target {
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
		switch {
		case sv.proxy != nil:
			m[name] = proxyTarget{sv.proxy}
		case sv.web != nil:
			if h := hooks[name]; h != nil {
				m[name] = hookedWebTarget{webTarget{sv.web}, h, sc}
			} else {
				m[name] = webTarget{sv.web}
			}
		case sv.sel != nil:
			m[name] = sv.sel
		case sv.mgmt != nil:
			m[name] = mgmtTarget{sv.mgmt}
		default:
			m[name] = otherTarget(sc.Role)
		}
	}
	s.targets.Store(&m)
}

type proxyTarget struct{ *proxy.Service }

func (proxyTarget) Role() string { return config.RoleReverseProxy }

type webTarget struct{ *webserver.Service }

func (webTarget) Role() string { return config.RoleWebServer }

// hookedWebTarget is a web server with plugins: the selector runs them.
type hookedWebTarget struct {
	webTarget
	hooks *plugin.Hooks
	svc   *config.Service
}

func (t hookedWebTarget) Hooks() (*plugin.Hooks, *config.Service) { return t.hooks, t.svc }

type mgmtTarget struct{ *manage.Service }

func (mgmtTarget) Role() string { return config.RoleManagement }

// otherTarget is a service a selector cannot hand HTTP clients to (a role
// a plugin adds, or none yet).
type otherTarget string

func (t otherTarget) Role() string                           { return string(t) }
func (otherTarget) Adopt(c *engine.Conn, hc *handoff.Client) { c.Close() }

// accept is the OnAccept of sv's listener. It tags the connection with sv
// (Conn.Ctx, which no handler uses) so that a retired service can find its
// idle connections, and starts TLS on it for enable_ssl. Runs on the loop.
func (sv *service) accept(c *engine.Conn) engine.Handler {
	c.Ctx = sv
	if cfg := sv.tls.Load(); cfg != nil {
		c.StartTLS(cfg, sv.notTLS()) // enable_ssl: the handler sees plaintext
	}
	switch {
	case sv.proxy != nil:
		return sv.proxy.Accept(c)
	case sv.web != nil:
		if f := sv.front.Load(); f != nil {
			return f.Accept(c) // the web server has plugins: its front runs them
		}
		return sv.web.Accept(c)
	case sv.sel != nil:
		return sv.sel.Accept(c)
	case sv.mgmt != nil:
		return sv.mgmt.Accept(c)
	case sv.relay != nil:
		return sv.relay.Accept(c)
	case sv.other != nil:
		return sv.other.Accept(c)
	}
	return nil
}

// setFront gives a web server with plugins its front (a selector fixed on
// it), or takes it away. Called with s.mu held.
func (s *Server) setFront(sv *service, sc *config.Service, hooks *plugin.Hooks) {
	if hooks == nil {
		if f := sv.front.Load(); f != nil {
			// Its connections now pass every request straight on.
			f.Update(selector.NewFront(sc, nil, webTarget{sv.web}))
			sv.front.Store(nil)
		}
		return
	}
	st := selector.NewFront(sc, hooks, webTarget{sv.web})
	if f := sv.front.Load(); f != nil {
		f.Update(st)
		return
	}
	sv.front.Store(selector.New(sc.Name, st, s.log.With("service", sc.Name)))
}

// webSettings builds a web server's snapshot: with its plugins when some
// hook the serving of files (LazyCDN), which may hand a request to another
// service.
func (s *Server) webSettings(sc *config.Service, mime map[string]string, hooks *plugin.Hooks) *webserver.Settings {
	st := webserver.NewSettings(sc, mime)
	if hooks.WantsStatic() {
		st.Hooks = hooks
		st.Resolve = s.resolveWeb
	}
	return st
}

// resolveWeb finds a web server's hand-off target. Safe from any
// goroutine.
func (s *Server) resolveWeb(name string) webserver.Target { return s.resolve(name) }

// PluginCommand runs a console command a LOADed plugin adds
// (manage.PluginCommander). Safe from any goroutine.
func (s *Server) PluginCommand(line string) ([]string, bool, error) {
	return s.reg.Command(s.Config(), line)
}
