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

// healthLoop probes down nodes every second (each at its pool's
// timeout_cleanup).
func (s *Server) healthLoop(ctx context.Context) {
	p := &health.Prober{Log: s.log, Now: s.opts.Now}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var targets []health.Target
		cfg := s.Config()
		for _, pc := range cfg.Pools {
			if pl := s.Pool(pc.Name); pl != nil {
				targets = append(targets, health.Target{Pool: pl, Interval: pc.TimeoutCleanup})
			}
		}
		p.Tick(ctx, targets)
	}
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
			nodes := config.ParseNodeList(data)
			if pl := s.Pool(pc.Name); pl != nil {
				if err := pl.SetNodes(nodes); err != nil {
					s.log.Warn("nodefile", "pool", pc.Name, "err", err)
					continue
				}
				s.log.Debug("nodefile read", "pool", pc.Name, "nodes", len(nodes))
			}
		}
	}
}
