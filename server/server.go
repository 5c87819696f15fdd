// Package server is the running plb: it turns a config.Config into an
// engine with listeners, pools and role handlers, and reconciles the running
// state with every new model (start-up, console commands, reload).
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
	"github.com/plb/plb/http/proxy"
	"github.com/plb/plb/http/webserver"
	"github.com/plb/plb/manage"
	"github.com/plb/plb/pool"
)

// Options configure a Server.
type Options struct {
	Logger *slog.Logger
	// Env looks up $NAME for Perlbal console lines (nil: os.Getenv).
	Env func(string) string
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Server is a running plb.
type Server struct {
	log   *slog.Logger
	opts  Options
	eng   *engine.Engine
	start time.Time

	mu       sync.Mutex
	cfg      *config.Config
	pools    map[string]*pool.Pool
	services map[string]*service

	stopOnce sync.Once
	stop     chan bool // true: graceful
	done     chan struct{}
}

type service struct {
	name   string
	role   string
	listen string
	ln     *engine.Listener
	proxy  *proxy.Service
	web    *webserver.Service
	mgmt   *manage.Service
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
	eng, err := engine.New(engine.Config{Loops: cfg.Global.Workers, Logger: o.Logger, Now: o.Now})
	if err != nil {
		return nil, err
	}
	s := &Server{
		log: o.Logger, opts: o, eng: eng, start: o.Now(),
		cfg:      config.New(),
		pools:    map[string]*pool.Pool{},
		services: map[string]*service{},
		stop:     make(chan bool, 1),
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
	return config.Options{Env: s.opts.Env}
}

// StartTime is when the server was created.
func (s *Server) StartTime() time.Time { return s.start }

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
		switch {
		case sv.proxy != nil:
			n += sv.proxy.Stats.Requests.Load()
		case sv.web != nil:
			n += sv.web.Requests.Load()
		}
	}
	return n
}

// ServiceStatus implements manage.Runtime.
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
	if sv.proxy != nil {
		st.Requests = sv.proxy.Stats.Requests.Load()
		st.Bored = sv.proxy.Bored.Load()
	}
	return st
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
// services and their settings, listeners opened and closed. On error the
// running state may be partly updated but the live model stays the old one.
// Safe from any goroutine.
func (s *Server) Apply(c *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pc := range c.Pools {
		p := s.pools[pc.Name]
		if p == nil {
			var err error
			if p, err = pool.New(pc.Name, pc.BalanceMethod); err != nil {
				return fmt.Errorf("pool %s: %w", pc.Name, err)
			}
			s.pools[pc.Name] = p
		} else if p.Method() != pc.BalanceMethod && pc.BalanceMethod != "" {
			if err := p.SetMethod(pc.BalanceMethod); err != nil {
				return err
			}
		}
		if err := p.SetNodes(pc.Nodes); err != nil {
			return fmt.Errorf("pool %s: %w", pc.Name, err)
		}
	}
	nloops := len(s.eng.Loops())
	for _, sc := range c.Services {
		sv := s.services[sc.Name]
		if sv != nil && sv.role != sc.Role {
			s.closeService(sv)
			sv = nil
		}
		if sv == nil {
			sv = &service{name: sc.Name, role: sc.Role}
			s.services[sc.Name] = sv
		}
		switch sc.Role {
		case config.RoleReverseProxy:
			var p *pool.Pool
			retry := 0
			if sc.Pool != "" {
				p = s.pools[sc.Pool]
				if pc := c.Pool(sc.Pool); pc != nil {
					retry = pc.ServerRetry
				}
			}
			st := proxy.NewSettings(sc, p, retry)
			if sv.proxy == nil {
				sv.proxy = proxy.New(sc.Name, st, nloops, s.log.With("service", sc.Name))
			} else {
				sv.proxy.Update(st)
			}
		case config.RoleWebServer:
			st := webserver.NewSettings(sc)
			if sv.web == nil {
				sv.web = webserver.New(sc.Name, st, s.log.With("service", sc.Name))
			} else {
				sv.web.Update(st)
			}
		case config.RoleManagement:
			if sv.mgmt == nil {
				sv.mgmt = manage.New(sc.Name, s)
			}
		case "":
			continue
		default:
			if sc.Enabled {
				return fmt.Errorf("Can't start service '%s': role %s is not supported yet", sc.Name, sc.Role)
			}
			continue
		}
		want := sc.Enabled && sc.Listen != ""
		if sv.ln != nil && (!want || sv.listen != sc.Listen) {
			sv.ln.Close()
			sv.ln = nil
			sv.listen = ""
		}
		if want && sv.ln == nil {
			ln, err := s.eng.Listen(engine.ListenConfig{
				Addr:     sc.Listen,
				Backlog:  c.Global.Backlog,
				MaxConns: maxClients(sc, c),
				SndBuf:   int(sc.ClientSndbufSize),
				OnAccept: sv.accept,
			})
			if err != nil {
				return fmt.Errorf("Can't start service '%s' on %s: Error creating listening socket: %v", sc.Name, sc.Listen, err)
			}
			sv.ln = ln
			sv.listen = sc.Listen
			s.log.Info("service listening", "service", sc.Name, "role", sc.Role, "addr", ln.Addr().String())
		}
	}
	for name, sv := range s.services {
		if c.Service(name) == nil {
			s.closeService(sv)
			delete(s.services, name)
		}
	}
	s.cfg = c
	return nil
}

func (s *Server) closeService(sv *service) {
	if sv.ln != nil {
		sv.ln.Close()
		sv.ln = nil
	}
}

func (sv *service) accept(c *engine.Conn) engine.Handler {
	switch {
	case sv.proxy != nil:
		return sv.proxy.Accept(c)
	case sv.web != nil:
		return sv.web.Accept(c)
	case sv.mgmt != nil:
		return sv.mgmt.Accept(c)
	}
	return nil
}

// Shutdown asks Run to stop, gracefully or at once. Safe from any
// goroutine, including a loop.
func (s *Server) Shutdown(graceful bool) {
	select {
	case s.stop <- graceful:
	default:
	}
}

// Run starts the loops and background tasks and blocks until ctx is done
// (graceful stop) or Shutdown is called.
func (s *Server) Run(ctx context.Context) error {
	s.eng.Start()
	bg, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.healthLoop(bg)
	go s.nodefileLoop(bg)
	graceful := true
	select {
	case <-ctx.Done():
	case graceful = <-s.stop:
	}
	if graceful {
		s.drain(30 * time.Second)
	}
	s.eng.Stop()
	close(s.done)
	return nil
}

// drain stops accepting, lets in-flight requests finish and closes idle
// connections, waiting at most limit.
func (s *Server) drain(limit time.Duration) {
	s.mu.Lock()
	var proxies []*proxy.Service
	for _, sv := range s.services {
		if sv.ln != nil {
			sv.ln.Close()
			sv.ln = nil
		}
		if sv.proxy != nil {
			sv.proxy.Drain()
			proxies = append(proxies, sv.proxy)
		}
		if sv.web != nil {
			sv.web.Drain()
		}
	}
	s.mu.Unlock()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		s.eng.RunAll(func(l *engine.Loop) {
			for _, p := range proxies {
				p.CloseIdle(l)
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
		time.Sleep(50 * time.Millisecond)
	}
}

// maxClients is a service's cap on client connections: its own max_clients,
// else the global one (PLB's max_clients; PLB has a single listener).
func maxClients(sc *config.Service, c *config.Config) int {
	if sc.MaxClients > 0 {
		return sc.MaxClients
	}
	return c.Global.MaxClients
}
