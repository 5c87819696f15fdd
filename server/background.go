package server

import (
	"context"
	"os"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
	"github.com/plb/plb/health"
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

// nodefileLoop re-reads changed nodefiles every 3 seconds (Perlbal checks
// at pick time when more than 3 s have passed).
func (s *Server) nodefileLoop(ctx context.Context) {
	mtimes := map[string]time.Time{}
	t := time.NewTicker(3 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cfg := s.Config()
		for _, pc := range cfg.Pools {
			if pc.NodeFile == "" {
				continue
			}
			fi, err := os.Stat(pc.NodeFile)
			if err != nil {
				continue
			}
			if old, ok := mtimes[pc.NodeFile]; ok && old.Equal(fi.ModTime()) {
				continue
			}
			// The first look re-reads too: the file may have changed since
			// the config was parsed (SetNodes keeps unchanged nodes).
			mtimes[pc.NodeFile] = fi.ModTime()
			data, err := os.ReadFile(pc.NodeFile)
			if err != nil {
				s.log.Warn("nodefile unreadable", "pool", pc.Name, "file", pc.NodeFile, "err", err)
				continue
			}
			nodes, bad := config.ParseNodeFile(pc.NodeFile, data)
			for _, err := range bad {
				s.log.Warn("nodefile line ignored", "pool", pc.Name, "err", err)
			}
			if pl := s.Pool(pc.Name); pl != nil {
				if err := pl.SetNodes(nodes); err != nil {
					s.log.Warn("nodefile", "pool", pc.Name, "err", err)
					continue
				}
				s.log.Debug("nodefile read", "pool", pc.Name, "nodes", len(nodes))
				s.mu.Lock()
				s.tidy(nil) // idle connections to nodes the file dropped
				s.mu.Unlock()
			}
		}
	}
}
