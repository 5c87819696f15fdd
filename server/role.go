package server

import (
	"fmt"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
	"github.com/plb/plb/http/accesslog"
	"github.com/plb/plb/http/plugin"
	"github.com/plb/plb/http/proxy"
	"github.com/plb/plb/http/selector"
	"github.com/plb/plb/http/webserver"
	"github.com/plb/plb/manage"
	"github.com/plb/plb/pool"
	"github.com/plb/plb/smtp"
)

// role is what Apply does with one kind of service, in Apply's two phases:
//
//   - prepare checks the service's configuration and builds its settings
//     snapshot into ch without touching what runs; a fresh service's
//     handler is created here, before its listener accepts anything. It
//     reports whether the service may have a listener at all (a service
//     without a role, or of a plugin role no LOAD brought, has none).
//   - commit publishes the snapshot to the running handler; it cannot
//     fail.
//
// roleOf is the table from a role name to its role. A new role is its
// package (New, Update, Accept, Drain), a type here with prepare and
// commit, a line in roleOf, and its running (running.go): what the server
// does with the handler prepare created.
type role interface {
	prepare(a *applyCtx, ch *serviceChange) (listen bool, err error)
	commit(a *applyCtx, ch *serviceChange)
	// uses says how a service of the role uses its pool: what decides the
	// pool's default balance method and the probe that confirms a node
	// (balanceMethod, policyFor).
	uses(sc *config.Service) poolUse
	// alpnHTTP: its TLS listener announces http/1.1 (ALPN).
	alpnHTTP() bool
	// exempt: its listener is exempt from the client cap (the console
	// must reach a plb that is full).
	exempt() bool
}

// poolUse is how a service uses its pool.
type poolUse uint8

const (
	useNone      poolUse = iota // no pool
	usePlainHTTP                // HTTP requests to plain (not backend_ssl) nodes
	useOther                    // HTTP over TLS to the nodes (backend_ssl)
	useSMTP                     // relayed SMTP sessions
	useTCP                      // relayed TCP connections
)

// relays reports whether the pool's connections are relayed sessions,
// balanced least_conn unless the pool says otherwise.
func (u poolUse) relays() bool { return u == useSMTP || u == useTCP }

// roleDefaults are the answers of a role without a pool, without HTTP
// over TLS, under the client cap.
type roleDefaults struct{}

func (roleDefaults) uses(*config.Service) poolUse { return useNone }
func (roleDefaults) alpnHTTP() bool               { return false }
func (roleDefaults) exempt() bool                 { return false }

// applyCtx is what the services of one Apply share: the configuration
// being applied, the pools and access logs it built, the loops' count,
// and what its check phase made: each service's plugins, the listeners it
// opened (closed again if a later check fails).
type applyCtx struct {
	s      *Server
	c      *config.Config
	pools  map[string]*pool.Pool
	logs   map[string]*accesslog.Log
	nloops int
	hooks  map[string]*plugin.Hooks
	opened []*engine.Listener
}

// roleOf returns the role of the role name (a plugin's role, or none, for
// any other name).
func roleOf(name string) role {
	switch name {
	case config.RoleReverseProxy:
		return proxyRole{}
	case config.RoleWebServer:
		return webRole{}
	case config.RoleManagement:
		return mgmtRole{}
	case config.RoleSMTPProxy, config.RoleTCPProxy:
		return relayRole{}
	case config.RoleSelector:
		return selectorRole{}
	case "":
		return noRole{}
	}
	return pluginRole{}
}

// proxyRole is reverse_proxy.
type proxyRole struct{ roleDefaults }

func (proxyRole) alpnHTTP() bool { return true }

func (proxyRole) uses(sc *config.Service) poolUse {
	if sc.BackendTLSOn() {
		return useOther
	}
	return usePlainHTTP
}

func (proxyRole) prepare(a *applyCtx, ch *serviceChange) (bool, error) {
	sc, sv := ch.sc, ch.sv
	var p *pool.Pool
	retry := 0
	if sc.Pool != "" {
		p = a.pools[sc.Pool]
		if pc := a.c.Pool(sc.Pool); pc != nil {
			retry = pc.ServerRetry
		}
	}
	ch.proxy = proxy.NewSettings(sc, p, retry)
	ch.proxy.Hooks = ch.hooks
	ch.proxy.AccessLog = a.logs[sc.AccessLog]
	if ch.beTLS != nil {
		ch.proxy.BackendTLS = ch.beTLS.cfg
	}
	a.s.reproxySettings(ch.proxy, a.c)
	if v := a.s.opts.Env("PERLBAL_DEBUG_BUFFERED_UPLOADS"); v != "" && v != "0" {
		ch.proxy.DebugUploads = true
	}
	if ch.fresh {
		sv.run = proxyRun{proxy.New(sc.Name, ch.proxy, a.nloops, a.s.log.With("service", sc.Name))}
	}
	return true, nil
}

func (proxyRole) commit(a *applyCtx, ch *serviceChange) {
	if !ch.fresh {
		ch.sv.run.(proxyRun).Update(ch.proxy)
	}
}

// webRole is web_server.
type webRole struct{ roleDefaults }

func (webRole) alpnHTTP() bool { return true }

func (webRole) prepare(a *applyCtx, ch *serviceChange) (bool, error) {
	sc, sv := ch.sc, ch.sv
	ch.web = a.s.webSettings(sc, a.s.mime, ch.hooks)
	ch.web.AccessLog = a.logs[sc.AccessLog]
	if ch.fresh {
		r := &webRun{web: webserver.New(sc.Name, ch.web, a.s.log.With("service", sc.Name))}
		if ch.hooks != nil {
			r.setFront(a.s, sc, ch.hooks) // before its listener accepts
		}
		sv.run = r
	}
	return true, nil
}

func (webRole) commit(a *applyCtx, ch *serviceChange) {
	r := ch.sv.run.(*webRun)
	if !ch.fresh {
		r.web.Update(ch.web)
	}
	r.setFront(a.s, ch.sc, ch.hooks)
}

// mgmtRole is management.
type mgmtRole struct{ roleDefaults }

func (mgmtRole) exempt() bool { return true }

func (mgmtRole) prepare(a *applyCtx, ch *serviceChange) (bool, error) {
	if ch.fresh {
		m := manage.New(ch.sc.Name, a.s)
		m.Update(ch.sc) // before its listener accepts
		ch.sv.run = mgmtRun{Service: m}
	}
	return true, nil
}

func (mgmtRole) commit(a *applyCtx, ch *serviceChange) {
	ch.sv.run.(mgmtRun).Update(ch.sc) // who may connect
}

// relayRole is smtp_proxy and tcp_proxy.
type relayRole struct{ roleDefaults }

func (relayRole) uses(sc *config.Service) poolUse {
	if sc.Role == config.RoleSMTPProxy {
		return useSMTP
	}
	return useTCP
}

func (relayRole) prepare(a *applyCtx, ch *serviceChange) (bool, error) {
	rs, err := a.s.relaySettings(a.c, ch.sc, a.pools)
	if err != nil {
		return false, err
	}
	ch.relay = rs
	if ch.fresh {
		ch.sv.run = relayRun{Service: smtp.New(ch.sc.Name, rs, a.s.log.With("service", ch.sc.Name))}
	}
	return true, nil
}

func (relayRole) commit(a *applyCtx, ch *serviceChange) {
	if !ch.fresh {
		ch.sv.run.(relayRun).Update(ch.relay)
	}
}

// selectorRole is selector.
type selectorRole struct{ roleDefaults }

func (selectorRole) alpnHTTP() bool { return true }

func (selectorRole) prepare(a *applyCtx, ch *serviceChange) (bool, error) {
	ch.sel = selector.NewSettings(ch.sc, ch.hooks, a.s.resolve)
	if ch.fresh {
		ch.sv.run = selectorRun{selector.New(ch.sc.Name, ch.sel, a.s.log.With("service", ch.sc.Name))}
	}
	return true, nil
}

func (selectorRole) commit(a *applyCtx, ch *serviceChange) {
	if !ch.fresh {
		ch.sv.run.(selectorRun).Update(ch.sel)
	}
}

// noRole is a service whose role is not set yet (Perlbal's CREATE SERVICE
// before SET role): it exists, without a listener.
type noRole struct{ roleDefaults }

func (noRole) prepare(*applyCtx, *serviceChange) (bool, error) { return false, nil }
func (noRole) commit(*applyCtx, *serviceChange)                {}

// pluginRole is a role a plugin adds (EchoService's echo). One whose
// plugin is not loaded is refused for an enabled service, and has no
// listener otherwise.
type pluginRole struct{ roleDefaults }

func (pluginRole) prepare(a *applyCtx, ch *serviceChange) (bool, error) {
	sc := ch.sc
	if _, ok := a.c.PluginRole(sc.Role); !ok {
		if sc.Enabled {
			return false, fmt.Errorf("Can't start service '%s': role %s is not supported", sc.Name, sc.Role)
		}
		return false, nil
	}
	if ch.fresh {
		r, err := a.s.reg.NewRole(a.c, sc.Role, sc.Name, a.s.log.With("service", sc.Name))
		if err != nil {
			return false, fmt.Errorf("Can't start service '%s': %v", sc.Name, err)
		}
		r.Update(sc) // before its listener accepts
		ch.sv.run = pluginRun{Role: r}
	}
	return true, nil
}

func (pluginRole) commit(a *applyCtx, ch *serviceChange) {
	if r, ok := ch.sv.run.(pluginRun); ok && !ch.fresh {
		r.Update(ch.sc)
	}
}
