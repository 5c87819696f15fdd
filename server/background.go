package server

import (
	"context"
	"sync"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
	"github.com/plb/plb/health"
	"github.com/plb/plb/pool"
	"github.com/plb/plb/pool/source"
)

// drainIdler is implemented by handlers that can close an idle connection
// when the server drains.
type drainIdler interface {
	DrainIdle(c *engine.Conn)
}

// healthLoop drives the health monitor: down nodes are probed every
// timeout_cleanup of their pool, up nodes every check_interval when set.
// It ticks at a quarter of the shortest interval (50ms to 1s).
// An Apply wakes it up, so that new intervals apply at once.
func (s *Server) healthLoop(ctx context.Context) {
	every := health.TickEvery(s.healthTargets())
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.applied:
		}
		targets := s.healthTargets()
		s.health.Tick(ctx, targets)
		if d := health.TickEvery(targets); d != every {
			every = d
			t.Reset(every)
		}
	}
}

// healthTargets returns the running pools with their health policies.
func (s *Server) healthTargets() []health.Target {
	s.mu.Lock()
	defer s.mu.Unlock()
	targets := make([]health.Target, 0, len(s.cfg.Pools))
	for _, pc := range s.cfg.Pools {
		pl := s.pools[pc.Name]
		pol, err := s.policyFor(s.cfg, pc)
		if pl == nil || err != nil { // Apply checked the policy
			continue
		}
		targets = append(targets, health.Target{Pool: pl, Policy: pol})
	}
	return targets
}

// poolSources are the node sources of the pools (pool/source), one per
// pool, guarded by Server.mu. Apply replaces a pool's source when the new
// config asks for another (a static list, another nodefile), and keeps a
// nodefile source watching the same file: that one owns the pool's nodes,
// which the config's copy of the file may be older than. Run starts them
// and stops them.
type poolSources struct {
	ctx     context.Context // Run's; nil until Run starts the sources
	stopped bool            // Run is stopping: start no more
	wg      sync.WaitGroup
	m       map[string]*poolSource // by pool name
}

// poolSource is one pool's running (or, before Run, waiting) source.
type poolSource struct {
	src    source.Source
	pool   *pool.Pool
	cancel context.CancelFunc // nil until started
}

// syncSources gives every pool of c its source, publishing the start list
// of each new one, and stops the sources of pools replaced or gone. Called
// by Apply with s.mu held, after s.pools is c's.
func (s *Server) syncSources(c *config.Config) {
	ss := &s.sources
	next := make(map[string]*poolSource, len(c.Pools))
	for _, pc := range c.Pools {
		pl := s.pools[pc.Name]
		src := source.ForPool(pc, source.Options{Log: s.log.With("pool", pc.Name)})
		if old := ss.m[pc.Name]; old != nil && old.pool == pl && old.src.Continues(src) {
			next[pc.Name] = old
			delete(ss.m, pc.Name)
			continue
		}
		pl.SetNodes(src.Nodes()) // Apply checked the addresses
		ps := &poolSource{src: src, pool: pl}
		next[pc.Name] = ps
		s.startSource(pc.Name, ps)
	}
	for _, old := range ss.m {
		if old.cancel != nil {
			old.cancel()
		}
	}
	ss.m = next
}

// startSource runs ps for pool name, once Run has started the sources.
// Called with s.mu held.
func (s *Server) startSource(name string, ps *poolSource) {
	ss := &s.sources
	if ss.ctx == nil || ss.stopped {
		return
	}
	ctx, cancel := context.WithCancel(ss.ctx)
	ps.cancel = cancel
	ss.wg.Add(1)
	go func() {
		defer ss.wg.Done()
		defer cancel()
		ps.src.Run(ctx, func(nodes []string) error { return s.publishNodes(name, ps, nodes) })
	}()
}

// publishNodes is a source's publication: the pool's new node list, then
// the idle connections to the nodes it dropped are closed. A source that
// a later config replaced publishes nothing.
func (s *Server) publishNodes(name string, ps *poolSource, nodes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sources.m[name] != ps {
		return nil
	}
	if err := ps.pool.SetNodes(nodes); err != nil {
		return err
	}
	s.tidy(nil)
	return nil
}

// startSources starts the pools' sources, and those of later Applies, on
// ctx (Run's background tasks).
func (s *Server) startSources(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sources.ctx = ctx
	for name, ps := range s.sources.m {
		s.startSource(name, ps)
	}
}

// stopSources stops the sources and waits for them.
func (s *Server) stopSources() {
	s.mu.Lock()
	s.sources.stopped = true
	for _, ps := range s.sources.m {
		if ps.cancel != nil {
			ps.cancel()
		}
	}
	s.mu.Unlock()
	s.sources.wg.Wait()
}
