package health

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plb/plb/pool"
)

func TestProberRevivesAfterInterval(t *testing.T) {
	p, err := pool.New("web", "random")
	if err != nil {
		t.Fatal(err)
	}
	p.SetNodes([]string{"10.0.0.1:80", "10.0.0.2:80"})
	down, up := p.Nodes()[0], p.Nodes()[1]
	down.SetDown(true)

	var mu sync.Mutex
	now := time.Unix(1000, 0)
	var healthy atomic.Bool
	var probes atomic.Int64
	probed := make(chan struct{}, 16)
	pr := &Prober{
		Log: slog.New(slog.DiscardHandler),
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		Probe: func(ctx context.Context, n *pool.Node) error {
			defer func() { probed <- struct{}{} }()
			probes.Add(1)
			if n != down {
				t.Errorf("probed %s, which is up", n.Name)
			}
			if healthy.Load() {
				return nil
			}
			return errors.New("refused")
		},
	}
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	targets := []Target{{Pool: p, Interval: 2 * time.Second}}
	ctx := context.Background()
	wait := func() { // for the probe to run and finish
		select {
		case <-probed:
		case <-time.After(5 * time.Second):
			t.Fatal("no probe")
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			pr.mu.Lock()
			busy := pr.busy[down]
			pr.mu.Unlock()
			if !busy {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("probe never finished")
			}
			time.Sleep(time.Millisecond)
		}
	}

	pr.Tick(ctx, targets) // first sight: wait one interval
	advance(time.Second)
	pr.Tick(ctx, targets) // not yet
	if probes.Load() != 0 {
		t.Fatal("probed before timeout_cleanup")
	}
	advance(time.Second)
	pr.Tick(ctx, targets)
	wait()
	if !down.Down() {
		t.Fatal("revived by a failed probe")
	}
	healthy.Store(true)
	advance(time.Second)
	pr.Tick(ctx, targets) // interval not over since the last probe
	advance(time.Second)
	pr.Tick(ctx, targets)
	wait()
	if down.Down() || up.Down() {
		t.Fatal("not revived by a good probe")
	}
	if n := probes.Load(); n != 2 {
		t.Fatalf("%d probes, want 2", n)
	}
}
