// Package server is the running plb: it turns a config.Config into an
// engine with listeners, pools and role handlers, and reconciles the running
// state with every new model (start-up, console commands, reload).
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
	"github.com/plb/plb/health"
	"github.com/plb/plb/http/accesslog"
	"github.com/plb/plb/http/h2srv"
	"github.com/plb/plb/http/plugin"
	"github.com/plb/plb/http/plugin/builtin"
	"github.com/plb/plb/http/proxy"
	"github.com/plb/plb/http/selector"
	"github.com/plb/plb/http/webserver"
	"github.com/plb/plb/pool"
	"github.com/plb/plb/smtp"
)

// Options configure a Server.
type Options struct {
	Logger *slog.Logger
	// Env looks up $NAME for Perlbal console lines (nil: os.Getenv).
	Env func(string) string
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Load reads a configuration file for Reload (nil: config.Load with
	// Env).
	Load func(path string) (*config.Config, error)
	// DrainTimeout bounds a graceful stop: connections still open then are
	// closed (default 30s).
	DrainTimeout time.Duration
	// Plugins are the compiled-in plugins LOAD can find (nil:
	// builtin.New(), Perlbal's plugins).
	Plugins *plugin.Registry
	// Inherited are listening sockets from the service manager (systemd
	// socket activation, engine.Inherit): services listening on their
	// addresses adopt them instead of binding.
	Inherited []*engine.InheritedSocket
	// NoFile is the descriptor limit the default client cap derives from
	// when max_clients is not set (0: RLIMIT_NOFILE's soft limit, read at
	// each Apply; clientCap).
	NoFile int
}

// drainPoll is how often a graceful stop looks whether every connection
// has closed.
const drainPoll = 50 * time.Millisecond

// errShuttingDown refuses changes during a graceful stop.
var errShuttingDown = errors.New("server: shutting down")

// Server is a running plb.
type Server struct {
	log   *slog.Logger
	opts  Options
	eng   *engine.Engine
	start time.Time
	// hostname names plb in SMTP replies and EHLO when a service sets no
	// smtp_hostname.
	hostname string

	mu       sync.Mutex
	cfg      *config.Config
	pools    map[string]*pool.Pool
	services map[string]*service
	mime     map[string]string // web servers' MIME table (nil: the default); status.go
	reg      *plugin.Registry
	targets  atomic.Pointer[targets] // the selectors' view of the services; roles.go
	reproxy  *proxy.Reproxy          // X-REPROXY-URL fetch pools; reproxy.go
	// accessLogs are the open access_log files by path (accesslog.go).
	accessLogs map[string]*accesslog.Log

	health   *health.Monitor
	probes   health.Probes // check name to probe maker, built once (relay.go)
	applied  chan struct{} // wakes the health loop after an Apply
	sources  poolSources   // where the pools' nodes come from; background.go
	stopping bool          // draining: Apply would reopen listeners
	// inGrace: a graceful stop is in its shutdown_grace period (still
	// serving, /healthz 503).
	inGrace atomic.Bool

	stop chan bool // true: graceful
	done chan struct{}
}

type service struct {
	name   string
	role   string
	listen string
	ln     *engine.Listener
	// run is its handler (running.go), nil for a service without a role.
	// Set once, by its role's prepare when the service is made, before
	// its listener accepts anything (a plugin's role cannot be set before
	// the LOAD that brings it: TestPluginRoleNeedsLoadFirst).
	run running
	// tls is the listener's TLS config (nil: plain); tlsBuild and
	// beTLSBuild are what Apply built for it and for backend_ssl
	// (tls.go), read and written with Server.mu held.
	tls        atomic.Pointer[tls.Config]
	tlsBuild   *tlsBuild
	beTLSBuild *tlsBuild
	// h2 is its HTTP/2 settings (nil: HTTP/1 only), h2Stats its HTTP/2
	// counters; http2.go.
	h2      atomic.Pointer[h2srv.Options]
	h2Stats h2srv.Stats
}

// New builds the engine for cfg (not yet serving: call Apply, then Run).
func New(cfg *config.Config, o Options) (*Server, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Env == nil {
		o.Env = os.Getenv
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Load == nil {
		env := o.Env
		o.Load = func(path string) (*config.Config, error) { return config.Load(path, env) }
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 30 * time.Second
	}
	if o.Plugins == nil {
		o.Plugins = builtin.New()
	}
	eng, err := engine.New(engine.Config{Loops: cfg.Global.Workers, Logger: o.Logger, Now: o.Now, Inherited: o.Inherited})
	if err != nil {
		return nil, err
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	s := &Server{
		log: o.Logger, opts: o, eng: eng, start: o.Now(), hostname: host,
		cfg:      config.New(),
		reg:      o.Plugins,
		pools:    map[string]*pool.Pool{},
		services: map[string]*service{},
		health:   &health.Monitor{Log: o.Logger, Now: o.Now},
		probes:   probeTable(),
		applied:  make(chan struct{}, 1),
		stop:     make(chan bool, 2),
		done:     make(chan struct{}),
	}
	return s, nil
}

// Engine returns the server's engine.
func (s *Server) Engine() *engine.Engine { return s.eng }

// Config returns the live model; do not modify it. Safe from any goroutine.
func (s *Server) Config() *config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// ConfigOptions returns the interpreter options for console connections.
func (s *Server) ConfigOptions() config.Options {
	return config.Options{Env: s.opts.Env, Plugins: s.reg.Lookup}
}

// StartTime is when the server was created.
func (s *Server) StartTime() time.Time { return s.start }

// Now is the server's clock (Options.Now). Safe from any goroutine.
func (s *Server) Now() time.Time { return s.opts.Now() }

// Pool returns a running pool. Safe from any goroutine.
func (s *Server) Pool(name string) *pool.Pool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pools[name]
}

// Requests returns requests received over all services.
func (s *Server) Requests() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, sv := range s.services {
		if sv.run != nil {
			n += sv.run.requests()
		}
	}
	return n
}

// Addr returns the bound address of a service, or nil. Safe from any
// goroutine.
func (s *Server) Addr(name string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sv := s.services[name]; sv != nil && sv.ln != nil {
		return sv.ln.Addr()
	}
	return nil
}

// Apply reconciles the running state with c: pools and their nodes,
// services and their settings, listeners opened and closed. Everything that
// can fail (balance methods, node addresses, checks, roles, new listeners)
// is checked or opened first: on error nothing changed and the live model
// stays the old one. A listener whose address did not change keeps its
// socket, so no connection is refused. A node removed from a pool gets no
// new request at once while its requests in flight finish; a removed
// service stops accepting and its connections close after their current
// response. Safe from any goroutine, including a loop (the console).
func (s *Server) Apply(c *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return errShuttingDown
	}
	nloops := len(s.eng.Loops())

	// Check and build without touching the running state.
	pools, err := s.checkPools(c)
	if err != nil {
		return err
	}
	logs, openedLogs, err := s.openAccessLogs(c)
	if err != nil {
		return err
	}
	a := &applyCtx{s: s, c: c, pools: pools, logs: logs, nloops: nloops, hooks: map[string]*plugin.Hooks{}}
	changes := make([]serviceChange, 0, len(c.Services))
	for _, sc := range c.Services {
		ch, err := a.prepareService(sc)
		if err != nil {
			for _, ln := range a.opened {
				ln.Close()
			}
			for _, l := range openedLogs {
				l.Close()
			}
			return err
		}
		changes = append(changes, ch)
	}

	// Commit: nothing below fails.
	s.commitPools(c, pools)
	s.syncSources(c) // the pools' nodes and where they come from; background.go
	var retired []*service
	for i := range changes {
		if old := a.commitService(&changes[i]); old != nil {
			retired = append(retired, old)
		}
	}
	for name, sv := range s.services {
		if c.Service(name) == nil {
			retired = append(retired, s.retire(sv))
			delete(s.services, name)
		}
	}
	s.cfg = c
	s.eng.SetMaxClients(clientCap(c, s.opts.NoFile))
	s.swapAccessLogs(logs)
	s.publishTargets(c, a.hooks)
	s.tidy(retired)
	select {
	case s.applied <- struct{}{}:
	default:
	}
	return nil
}

// prepareService is Apply's check phase for one service: its TLS, its
// plugins, its role's snapshot (and a fresh handler for a new service or
// role), and its listener opened when it needs a new one (a.opened).
// Nothing running changes.
func (a *applyCtx) prepareService(sc *config.Service) (serviceChange, error) {
	s, c := a.s, a.c
	ch := serviceChange{sc: sc, sv: s.services[sc.Name]}
	if ch.sv == nil || ch.sv.role != sc.Role {
		// The handler exists before its listener accepts anything.
		ch.sv = &service{name: sc.Name, role: sc.Role}
		ch.fresh = true
	}
	sv := ch.sv
	if err := s.checkTLS(c, &ch); err != nil {
		return ch, err
	}
	h, err := s.reg.Hooks(sc)
	if err != nil {
		return ch, err
	}
	a.hooks[sc.Name], ch.hooks = h, h
	ch.role = roleOf(sc.Role)
	listen, err := ch.role.prepare(a, &ch)
	if err != nil || !listen {
		return ch, err
	}
	want := sc.Enabled && sc.Listen != ""
	if want && (sv.ln == nil || sv.listen != sc.Listen) {
		ln, err := s.listen(c, sc, sv)
		if err != nil {
			return ch, err
		}
		a.opened = append(a.opened, ln)
		ch.ln = ln
	}
	ch.closeLn = sv.ln != nil && (!want || sv.listen != sc.Listen)
	return ch, nil
}

// commitService is Apply's commit for one service: the service it
// replaces retired (returned), its TLS and role's snapshot published, its
// listener swapped. Nothing here fails.
func (a *applyCtx) commitService(ch *serviceChange) (retired *service) {
	s, sv, sc := a.s, ch.sv, ch.sc
	if old := s.services[sc.Name]; old != nil && old != sv {
		retired = s.retire(old)
	}
	s.commitTLS(ch)
	s.commitHTTP2(sv, sc)
	ch.role.commit(a, ch)
	if ch.closeLn {
		sv.ln.Close()
		sv.ln, sv.listen = nil, ""
	}
	if ch.ln != nil {
		sv.ln, sv.listen = ch.ln, sc.Listen
		s.log.Info("service listening", "service", sc.Name, "role", sc.Role, "addr", ch.ln.Addr().String())
	}
	s.services[sc.Name] = sv
	return retired
}

// checkPools checks the pools of c and returns them: the running pool of
// each name, else a new one (Apply's check phase: nothing running
// changes).
func (s *Server) checkPools(c *config.Config) (map[string]*pool.Pool, error) {
	if err := c.CheckBalancing(); err != nil {
		return nil, err
	}
	pools := make(map[string]*pool.Pool, len(c.Pools))
	for _, pc := range c.Pools {
		if _, err := pool.NewSelector(pc.BalanceMethod); err != nil {
			return nil, fmt.Errorf("pool %s: %w", pc.Name, err)
		}
		for _, a := range pc.Nodes {
			if _, err := pool.ParseNode(a); err != nil {
				return nil, fmt.Errorf("pool %s: %w", pc.Name, err)
			}
		}
		if _, err := s.policyFor(c, pc); err != nil {
			return nil, err
		}
		p := s.pools[pc.Name]
		if p == nil {
			p, _ = pool.New(pc.Name, balanceMethod(c, pc))
			p.SetNodes(pc.Nodes)
		}
		pools[pc.Name] = p
	}
	return pools, nil
}

// commitPools makes pools the running ones, each with c's balance method
// and hash settings (Apply's commit phase).
func (s *Server) commitPools(c *config.Config, pools map[string]*pool.Pool) {
	for _, pc := range c.Pools {
		p := pools[pc.Name]
		pc.Tune(p, s.opts.Now)
		if s.pools[pc.Name] != p {
			s.log.Info("pool created", "pool", pc.Name, "nodes", len(pc.Nodes))
			continue
		}
		if m := balanceMethod(c, pc); m != "" && p.Method() != m {
			p.SetMethod(m)
		}
	}
	for name := range s.pools {
		if pools[name] == nil {
			s.log.Info("pool removed", "pool", name)
		}
	}
	s.pools = pools
}

// listen opens sc's listener for sv (Apply's check phase: it is closed
// again if the Apply fails).
func (s *Server) listen(c *config.Config, sc *config.Service, sv *service) (*engine.Listener, error) {
	ln, err := s.eng.Listen(engine.ListenConfig{
		Addr:     sc.Listen,
		Backlog:  c.Global.Backlog,
		MaxConns: maxClients(sc, c),
		Exempt:   roleOf(sc.Role).exempt(),
		SndBuf:   int(sc.ClientSndbufSize),
		OnAccept: sv.accept,
	})
	if err != nil {
		return nil, fmt.Errorf("Can't start service '%s' on %s: Error creating listening socket: %v", sc.Name, sc.Listen, err)
	}
	return ln, nil
}

// serviceChange is what Apply does to one service.
type serviceChange struct {
	sc      *config.Service
	sv      *service // the running service, or a fresh one
	fresh   bool     // sv is new (new service or new role)
	role    role     // what Apply does with it (role.go)
	hooks   *plugin.Hooks
	proxy   *proxy.Settings
	web     *webserver.Settings
	sel     *selector.Settings
	relay   *smtp.Settings
	ln      *engine.Listener // opened for sv
	closeLn bool             // sv's current listener goes
	tls     *tlsBuild        // the listener's TLS (nil: plain); tls.go
	beTLS   *tlsBuild        // backend_ssl's
}

// retire stops a service that was removed or changed role: no more
// accepts, and its clients close after their current response. Called
// with s.mu held.
func (s *Server) retire(sv *service) *service {
	s.log.Info("service stopped", "service", sv.name, "role", sv.role)
	s.closeService(sv)
	sv.drain()
	return sv
}

// drain makes sv's handler (a web server's front included) close its
// clients after the current request or session.
func (sv *service) drain() {
	if sv.run != nil {
		sv.run.drain()
	}
}

// runs returns the handlers of the running services.
func (s *Server) runs() []running {
	out := make([]running, 0, len(s.services))
	for _, sv := range s.services {
		if sv.run != nil {
			out = append(out, sv.run)
		}
	}
	return out
}

// tidy runs on every loop, soon: reverse proxies close idle backend
// connections they would not reuse (a removed node, a pool switched away
// from), and retired services close their idle connections. Called with
// s.mu held; does not wait (Apply may run on a loop).
func (s *Server) tidy(retired []*service) {
	runs := s.runs()
	for _, l := range s.eng.Loops() {
		l.Run(func() {
			for _, r := range runs {
				r.dropStale(l)
			}
			if len(retired) == 0 {
				return
			}
			for _, sv := range retired {
				if sv.run != nil {
					sv.run.closeIdle(l)
				}
			}
			l.EachConn(func(c *engine.Conn) {
				for _, sv := range retired {
					if c.Ctx == sv {
						if d, ok := c.Handler().(drainIdler); ok {
							d.DrainIdle(c)
						}
					}
				}
			})
		})
	}
}

func (s *Server) closeService(sv *service) {
	if sv.ln != nil {
		sv.ln.Close()
		sv.ln = nil
		sv.listen = ""
	}
}

// Shutdown asks Run to stop, gracefully (drain) or at once; a stop at once
// also cuts a drain short. Safe from any goroutine, including a loop.
func (s *Server) Shutdown(graceful bool) {
	select {
	case s.stop <- graceful:
	default:
	}
}

// Run starts the loops and background tasks (health checks, nodefile
// watcher) and blocks until ctx is done (graceful stop) or Shutdown is
// called. A graceful stop drains: no more accepts, idle keep-alive
// connections closed, requests in flight finished (slow downloads
// included), for at most Options.DrainTimeout.
func (s *Server) Run(ctx context.Context) error {
	s.eng.Start()
	bg, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.healthLoop(bg) }()
	s.startSources(bg) // node sources: nodefile watchers
	graceful := true
	select {
	case <-ctx.Done():
	case graceful = <-s.stop:
	}
	if graceful && s.grace() {
		s.log.Info("draining", "limit", s.opts.DrainTimeout)
		s.drain(s.opts.DrainTimeout)
	}
	cancel()
	wg.Wait()
	s.stopSources()
	s.health.Wait()
	s.eng.Stop()
	s.closeAccessLogs()
	close(s.done)
	return nil
}

// grace serves on for shutdown_grace with Draining true (GET /healthz
// 503), so that health checks move traffic away before the listeners
// close. It reports false when a stop at once cut it short.
func (s *Server) grace() bool {
	g := time.Duration(s.Config().Global.ShutdownGrace) * time.Second
	if g <= 0 {
		return true
	}
	s.inGrace.Store(true)
	s.log.Info("stopping after shutdown_grace; /healthz says 503 meanwhile", "grace", g)
	t := time.NewTimer(g)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case graceful := <-s.stop:
			if !graceful {
				s.log.Info("stop at once: grace cut short")
				return false
			}
		}
	}
}

// drain stops accepting, lets in-flight requests finish and closes idle
// connections, waiting at most limit or until Shutdown(false).
func (s *Server) drain(limit time.Duration) {
	s.mu.Lock()
	s.stopping = true
	for _, sv := range s.services {
		if sv.ln != nil {
			sv.ln.Close()
			sv.ln = nil
		}
		sv.drain()
	}
	runs := s.runs()
	s.mu.Unlock()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case graceful := <-s.stop:
			if !graceful {
				s.log.Info("drain cut short")
				return
			}
		default:
		}
		s.eng.RunAll(func(l *engine.Loop) {
			for _, r := range runs {
				r.closeIdle(l)
			}
			l.EachConn(func(c *engine.Conn) {
				if d, ok := c.Handler().(drainIdler); ok {
					d.DrainIdle(c)
				}
			})
		})
		if s.eng.Conns() == 0 {
			return
		}
		time.Sleep(drainPoll)
	}
	s.log.Warn("drain timed out; closing what is left", "conns", s.eng.Conns())
}

// Reload re-reads the configuration file at path (Options.Load) and
// applies the difference live (Apply): services, pools and nodes added or
// removed, settings changed; unchanged listeners keep their sockets. An
// invalid file, or one that cannot be applied, leaves the running
// configuration untouched; the error, naming file:line where it can, is
// logged and returned. Changes that need a restart (workers, user, group,
// chroot, pid file) are logged and ignored. Safe from any goroutine.
func (s *Server) Reload(path string) error {
	cfg, err := s.opts.Load(path)
	if err == nil {
		err = cfg.Validate()
	}
	if err == nil {
		old := s.Config()
		for _, k := range restartKeys(&old.Global, &cfg.Global) {
			s.log.Warn("reload: a restart is needed to change this", "key", k)
		}
		// The model describes what runs: keep the loops it runs on.
		cfg.Global.Workers = old.Global.Workers
		err = s.Apply(cfg)
	}
	if err != nil {
		s.log.Error("reload failed; running configuration unchanged", "err", err)
		return err
	}
	s.log.Info("configuration reloaded", "file", cfg.File)
	return nil
}

// restartKeys names the global settings that differ and that only a
// restart applies.
func restartKeys(old, new *config.Global) []string {
	var keys []string
	for _, k := range []struct {
		name string
		diff bool
	}{
		{"workers", new.Workers != old.Workers && new.Workers != 0},
		{"user", new.User != old.User},
		{"group", new.Group != old.Group},
		{"chroot_dir", new.Chroot != old.Chroot},
		{"pidfile", new.PidFile != old.PidFile},
		{"log_file", new.LogFile != old.LogFile},
		{"max_connections", new.MaxConnections != old.MaxConnections},
		// Listener settings: they apply to listeners opened from now on.
		{"max_clients", new.MaxClients != old.MaxClients},
		{"backlog", new.Backlog != old.Backlog},
	} {
		if k.diff {
			keys = append(keys, k.name)
		}
	}
	return keys
}

// clientCap is the cap on all client connections together: the global
// max_clients, else one derived from the descriptor limit noFile (0: the
// process's), so that plb refuses clients cleanly instead of running out of
// descriptors for their backends and spool files: a client counts two (its
// socket and its backend connection, file or relay, as plb's start-up check
// of max_clients counts it; HAProxy derives its maxconn the same way), and
// fdReserve are kept for listeners, logs, probes and the console.
func clientCap(c *config.Config, noFile int) int {
	if c.Global.MaxClients > 0 {
		return c.Global.MaxClients
	}
	if noFile <= 0 {
		var rl unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
			return 0
		}
		noFile = int(rl.Cur)
	}
	const fdReserve = 64
	return max(1, (noFile-fdReserve)/2)
}

// maxClients is a service's cap on client connections: its own max_clients,
// else the global one (PLB's max_clients; PLB has a single listener).
func maxClients(sc *config.Service, c *config.Config) int {
	if sc.MaxClients > 0 {
		return sc.MaxClients
	}
	return c.Global.MaxClients
}
