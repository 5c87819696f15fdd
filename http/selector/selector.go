// Package selector is the selector role (Perlbal's "base" client): it reads
// a request head, lets the selector's plugins choose the service that
// serves it (Vhosts by Host, Vpaths by URI, else default_service), and
// hands the connection over with the bytes still buffered (package
// handoff); after each response the target gives the connection back, and
// the next request is selected afresh. The selector's persist_client and
// HEADER rules apply to the requests it hands on.
//
// The same machinery fronts a web_server that has plugins (Settings.Fixed):
// the web server has no hook points of its own, so its front runs them
// (start_web_request, start_http_request, start_serve_request) and hands
// each request on to it.
package selector

import (
	"log/slog"
	"sync/atomic"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
	"github.com/plb/plb/http/handoff"
	"github.com/plb/plb/http/plugin"
	"github.com/plb/plb/http/status"
)

// HookedTarget is a target whose plugins the selector runs before the
// hand-off: a web_server with plugins (the web server itself has no hook
// points).
type HookedTarget interface {
	handoff.Target
	// Hooks returns the target's plugin instances (nil: none) and its
	// configuration.
	Hooks() (*plugin.Hooks, *config.Service)
}

// Settings is a selector's immutable snapshot.
type Settings struct {
	Svc   *config.Service
	Hooks *plugin.Hooks  // the selector's plugins (nil: none)
	Rules *handoff.Rules // the selector's HEADER rules (nil: none)
	// Fixed makes the service the front of one target (a web_server with
	// plugins): no selection, Hooks are the target's and run as a web
	// server's.
	Fixed handoff.Target
	// Resolve finds targets by name.
	Resolve handoff.Resolver
}

// NewSettings builds a selector's snapshot.
func NewSettings(svc *config.Service, hooks *plugin.Hooks, resolve handoff.Resolver) *Settings {
	return &Settings{Svc: svc, Hooks: hooks, Rules: handoff.NewRules(svc.Headers), Resolve: resolve}
}

// NewFront builds the snapshot of the front of a web_server with plugins.
func NewFront(svc *config.Service, hooks *plugin.Hooks, target handoff.Target) *Settings {
	return &Settings{Svc: svc, Hooks: hooks, Fixed: target}
}

// Stats are a selector's counters. Safe from any goroutine.
type Stats struct {
	Requests    atomic.Int64    // request heads read
	ClientsOpen atomic.Int64    // connections with the selector now (not handed on)
	Handoffs    atomic.Int64    // requests handed to a target
	BytesOut    atomic.Int64    // bytes of the responses the selector generated
	Status      [6]atomic.Int64 // those responses by class, 1xx..5xx at [1..5]
}

// Service is a running selector.
type Service struct {
	Name     string
	log      *slog.Logger
	settings atomic.Pointer[Settings]
	draining atomic.Bool
	Stats    Stats
}

// New creates a selector service.
func New(name string, st *Settings, log *slog.Logger) *Service {
	s := &Service{Name: name, log: log}
	s.settings.Store(st)
	return s
}

// Settings returns the current snapshot. Safe from any goroutine.
func (s *Service) Settings() *Settings { return s.settings.Load() }

// Update publishes new settings. Safe from any goroutine.
func (s *Service) Update(st *Settings) { s.settings.Store(st) }

// Drain makes clients close after their current response. Safe from any
// goroutine.
func (s *Service) Drain() { s.draining.Store(true) }

// Accept is the engine's OnAccept for the selector's listener. Runs on the
// loop.
func (s *Service) Accept(c *engine.Conn) engine.Handler {
	return s.newBase(c, nil)
}

// Role is config.RoleSelector (Target).
func (s *Service) Role() string { return config.RoleSelector }

// Adopt takes a connection another selector handed on (Target): the
// request is selected again here, and its response returns to the first
// selector, whose persist_client applies. Runs on the loop.
func (s *Service) Adopt(c *engine.Conn, hc *handoff.Client) {
	if hc.Hops++; hc.Hops > handoff.MaxHops {
		// A selector leading back to itself, directly or not.
		c.Write(status.AppendSimple(nil, 500, "Too many selector hops.", status.Options{ServerTokens: s.Settings().Svc.ServerTokens}))
		c.Close()
		return
	}
	b := s.newBase(c, hc)
	c.SetHandler(b)
	b.OnOpen(c)
	c.ResumeRead()
	c.Kick()
}
