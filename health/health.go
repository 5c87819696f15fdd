// Package health checks backend nodes. A node is marked down by passive
// counting on real traffic (pool.Node.Fail after server_retry consecutive
// failures); while down, a Prober probes it every timeout_cleanup and
// revives it on success (PLB's model).
package health

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/plb/plb/pool"
)

// Target is a pool to watch and how often to probe its down nodes.
type Target struct {
	Pool     *pool.Pool
	Interval time.Duration // timeout_cleanup (default 15s)
}

// Probe checks one node; nil means healthy.
type Probe func(ctx context.Context, n *pool.Node) error

// TCPProbe succeeds when a TCP connect to the node completes.
func TCPProbe(ctx context.Context, n *pool.Node) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", n.Addr.String())
	if err != nil {
		return err
	}
	return c.Close()
}

// Prober revives down nodes.
type Prober struct {
	Log     *slog.Logger
	Probe   Probe // default TCPProbe
	Timeout time.Duration
	Now     func() time.Time

	mu   sync.Mutex
	last map[*pool.Node]time.Time
	busy map[*pool.Node]bool
}

// Tick probes every down node of targets whose interval has passed since
// its last probe; probes run concurrently and Tick does not wait for them.
// Safe from any goroutine.
func (p *Prober) Tick(ctx context.Context, targets []Target) {
	now := p.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil {
		p.last, p.busy = map[*pool.Node]time.Time{}, map[*pool.Node]bool{}
	}
	for _, t := range targets {
		iv := t.Interval
		if iv <= 0 {
			iv = 15 * time.Second
		}
		for _, n := range t.Pool.Nodes() {
			if !n.Down() {
				delete(p.last, n)
				continue
			}
			last, ok := p.last[n]
			if !ok {
				p.last[n] = now // marked down just now: wait one interval
				continue
			}
			if p.busy[n] || now.Sub(last) < iv {
				continue
			}
			p.last[n] = now
			p.busy[n] = true
			go p.check(ctx, t.Pool, n)
		}
	}
}

func (p *Prober) check(ctx context.Context, pl *pool.Pool, n *pool.Node) {
	probe := p.Probe
	if probe == nil {
		probe = TCPProbe
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	err := probe(cctx, n)
	cancel()
	// Revive before clearing busy, so that a Tick in between does not
	// probe the node again.
	if err != nil {
		p.Log.Debug("node still down", "pool", pl.Name, "node", n.Name, "err", err)
	} else if n.SetDown(false) {
		p.Log.Warn("node back up", "pool", pl.Name, "node", n.Name)
	}
	p.mu.Lock()
	p.busy[n] = false
	p.mu.Unlock()
}
