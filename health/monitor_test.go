package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
	"github.com/plb/plb/internal/testutil"
	"github.com/plb/plb/pool"
)

// fakeProbe answers from a per-address script; no network.
type fakeProbe struct {
	mu     sync.Mutex
	fail   map[netip.AddrPort]error
	probes map[netip.AddrPort]int
}

func newFakeProbe() *fakeProbe {
	return &fakeProbe{fail: map[netip.AddrPort]error{}, probes: map[netip.AddrPort]int{}}
}

func (p *fakeProbe) Check(ctx context.Context, a netip.AddrPort) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.probes[a]++
	return p.fail[a]
}

func (p *fakeProbe) String() string { return "fake" }

func (p *fakeProbe) set(n *pool.Node, err error) {
	p.mu.Lock()
	p.fail[n.Addr] = err
	p.mu.Unlock()
}

func (p *fakeProbe) count(n *pool.Node) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.probes[n.Addr]
}

// syncBuffer is a log target safe for the probe goroutines.
type syncBuffer = testutil.SyncBuffer

type fixture struct {
	t     *testing.T
	clock *testutil.Clock
	probe *fakeProbe
	log   *syncBuffer
	m     *Monitor
	pool  *pool.Pool
	pol   Policy
}

func newFixture(t *testing.T, pol Policy, nodes ...string) *fixture {
	t.Helper()
	p, err := pool.New("web", "round_robin")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetNodes(nodes); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, clock: testutil.NewClock(time.Unix(1000, 0)), probe: newFakeProbe(), log: &syncBuffer{}, pool: p}
	pol.Probe = f.probe
	f.pol = pol
	f.m = &Monitor{Log: slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelWarn})), Now: f.clock.Now}
	return f
}

// tick runs one Tick and waits for the probes it started.
func (f *fixture) tick() {
	f.m.Tick(context.Background(), []Target{{Pool: f.pool, Policy: f.pol}})
	f.m.Wait()
}

func (f *fixture) node(i int) *pool.Node { return f.pool.Nodes()[i] }

func (f *fixture) logged(what string) int { return strings.Count(f.log.String(), what) }

func TestMonitorProbesDownNodeEveryCleanup(t *testing.T) {
	f := newFixture(t, Policy{Cleanup: 2 * time.Second}, "10.0.0.1:80", "10.0.0.2:80")
	down, up := f.node(0), f.node(1)
	down.MarkDown("test", f.clock.Now())
	f.probe.set(down, syscall.ECONNREFUSED)

	f.tick() // first sight of the down node: it waits one interval (PLB)
	f.clock.Advance(time.Second)
	f.tick()
	if n := f.probe.count(down); n != 0 {
		t.Fatalf("probed %d times before timeout_cleanup", n)
	}
	f.clock.Advance(time.Second)
	f.tick()
	if n := f.probe.count(down); n != 1 || !down.Down() {
		t.Fatalf("after one cleanup: %d probes, down %v; want 1 failed probe", n, down.Down())
	}
	f.clock.Advance(time.Second)
	f.tick() // not yet: the interval runs from the last probe
	f.probe.set(down, nil)
	f.clock.Advance(time.Second)
	f.tick()
	if down.Down() {
		t.Fatal("a good probe did not revive the node")
	}
	if n := f.probe.count(down); n != 2 {
		t.Fatalf("%d probes, want 2", n)
	}
	if n := f.probe.count(up); n != 0 {
		t.Fatalf("the up node was probed %d times with active checks off", n)
	}
	tr := down.LastTransition()
	if tr.Down || tr.Reason != "fake probe succeeded" || !tr.At.Equal(f.clock.Now()) {
		t.Fatalf("transition %+v", tr)
	}
	if n := f.logged("node up"); n != 1 || !strings.Contains(f.log.String(), `reason="fake probe succeeded"`) {
		t.Fatalf("want one 'node up' line with its reason:\n%s", f.log)
	}
	// Up again: with active checks off it is left alone.
	for i := 0; i < 5; i++ {
		f.clock.Advance(time.Hour)
		f.tick()
	}
	if n := f.probe.count(down); n != 2 {
		t.Fatalf("up node probed (%d probes)", n)
	}
}

func TestMonitorRise(t *testing.T) {
	f := newFixture(t, Policy{Cleanup: time.Second, Rise: 3}, "10.0.0.1:80")
	n := f.node(0)
	n.MarkDown("test", f.clock.Now())
	f.tick()
	step := func(err error) {
		f.probe.set(n, err)
		f.clock.Advance(time.Second)
		f.tick()
	}
	step(nil)
	step(nil)
	step(errors.New("refused")) // the run of successes starts over
	step(nil)
	step(nil)
	if !n.Down() {
		t.Fatal("up after 2 good probes in a row, rise is 3")
	}
	step(nil)
	if n.Down() {
		t.Fatal("still down after 3 good probes in a row")
	}
	if r := n.LastTransition().Reason; r != "3 fake probes succeeded" {
		t.Fatalf("reason %q", r)
	}
}

func TestMonitorActiveChecksFall(t *testing.T) {
	f := newFixture(t, Policy{Cleanup: 10 * time.Second, Interval: time.Second, Fall: 3}, "10.0.0.1:80", "10.0.0.2:80")
	n, other := f.node(0), f.node(1)
	f.tick() // first sight: the first check comes one interval later
	step := func(err error) {
		f.probe.set(n, err)
		f.clock.Advance(time.Second)
		f.tick()
	}
	step(nil)
	if f.probe.count(n) != 1 || f.probe.count(other) != 1 {
		t.Fatalf("active checks: %d and %d probes, want 1 each", f.probe.count(n), f.probe.count(other))
	}
	step(engine.ErrTimeout)
	step(engine.ErrTimeout)
	step(nil) // resets the run of failures
	step(engine.ErrTimeout)
	step(engine.ErrTimeout)
	if n.Down() {
		t.Fatal("down after 2 failed checks in a row, fall is 3")
	}
	step(fmt.Errorf("dial: %w", syscall.ECONNREFUSED))
	if !n.Down() || other.Down() {
		t.Fatalf("after 3 failed checks: down %v (other %v)", n.Down(), other.Down())
	}
	if r := n.LastTransition().Reason; r != "3 fake checks failed, last: connection refused" {
		t.Fatalf("reason %q", r)
	}
	if c := f.logged("node down"); c != 1 {
		t.Fatalf("%d 'node down' lines:\n%s", c, f.log)
	}
	// Down: probed every Cleanup, not every Interval.
	before := f.probe.count(n)
	for i := 0; i < 9; i++ {
		step(nil)
	}
	if f.probe.count(n) != before || !n.Down() {
		t.Fatalf("down node probed %d times within timeout_cleanup", f.probe.count(n)-before)
	}
	step(nil)
	if n.Down() {
		t.Fatal("not revived after timeout_cleanup")
	}
}

// TestMonitorIgnoresStaleResult: a check that started while the node was
// up does not count once traffic has marked the node down meanwhile.
func TestMonitorIgnoresStaleResult(t *testing.T) {
	f := newFixture(t, Policy{Cleanup: time.Minute, Interval: time.Second, Fall: 1}, "10.0.0.1:80")
	n := f.node(0)
	started, release := make(chan struct{}), make(chan struct{})
	var probes int
	f.pol.Probe = ProbeFunc(func(ctx context.Context, a netip.AddrPort) error {
		probes++
		started <- struct{}{}
		<-release
		return errors.New("check failed")
	})
	targets := []Target{{Pool: f.pool, Policy: f.pol}}
	f.m.Tick(context.Background(), targets)
	f.clock.Advance(time.Second)
	f.m.Tick(context.Background(), targets)
	<-started
	// Busy: no second probe of the same node however late it is.
	f.clock.Advance(time.Hour)
	f.m.Tick(context.Background(), targets)
	n.MarkDown("traffic", f.clock.Now())
	close(release)
	f.m.Wait()
	if probes != 1 {
		t.Fatalf("%d probes at once", probes)
	}
	if tr := n.LastTransition(); tr.Reason != "traffic" || n.Transitions() != 1 {
		t.Fatalf("stale check result applied: %+v, %d transitions", tr, n.Transitions())
	}
}

func TestMonitorForgetsRemovedNodes(t *testing.T) {
	f := newFixture(t, Policy{Cleanup: time.Second}, "10.0.0.1:80", "10.0.0.2:80")
	f.node(0).MarkDown("test", f.clock.Now())
	f.tick()
	if len(f.m.nodes) != 2 {
		t.Fatalf("%d nodes known", len(f.m.nodes))
	}
	f.pool.Remove("10.0.0.1:80")
	f.tick()
	if len(f.m.nodes) != 1 {
		t.Fatalf("%d nodes known after a removal", len(f.m.nodes))
	}
	f.m.Tick(context.Background(), nil)
	if len(f.m.nodes) != 0 {
		t.Fatalf("%d nodes known without targets", len(f.m.nodes))
	}
}

// TestMonitorRestartsCountOnTransition: a node marked down by traffic and
// revived waits a full timeout_cleanup before its first probe each time.
func TestMonitorRestartsCountOnTransition(t *testing.T) {
	f := newFixture(t, Policy{Cleanup: 5 * time.Second}, "10.0.0.1:80")
	n := f.node(0)
	f.tick()
	f.clock.Advance(time.Minute)
	n.MarkDown("traffic", f.clock.Now())
	f.tick()
	f.clock.Advance(4 * time.Second)
	f.tick()
	if f.probe.count(n) != 0 {
		t.Fatal("probed before timeout_cleanup since it went down")
	}
	f.clock.Advance(time.Second)
	f.tick()
	if f.probe.count(n) != 1 || n.Down() {
		t.Fatalf("%d probes, down %v", f.probe.count(n), n.Down())
	}
}

func TestTickEvery(t *testing.T) {
	p, _ := pool.New("p", "")
	for _, c := range []struct {
		pols []Policy
		want time.Duration
	}{
		{nil, time.Second},
		{[]Policy{{}}, time.Second},
		{[]Policy{{Cleanup: 2 * time.Second}}, 500 * time.Millisecond},
		{[]Policy{{Cleanup: time.Minute, Interval: 400 * time.Millisecond}}, 100 * time.Millisecond},
		{[]Policy{{Cleanup: time.Minute}, {Cleanup: 10 * time.Millisecond}}, 50 * time.Millisecond},
	} {
		var ts []Target
		for _, pol := range c.pols {
			ts = append(ts, Target{Pool: p, Policy: pol})
		}
		if got := TickEvery(ts); got != c.want {
			t.Errorf("TickEvery(%+v) = %v, want %v", c.pols, got, c.want)
		}
	}
}

func TestPolicyFor(t *testing.T) {
	cfg, err := config.Parse("t.toml", []byte(`[pool.a]
nodes = []
[pool.b]
nodes = []
server_retry = 2
timeout_cleanup = "3s"
check = "http"
check_path = "/ping"
check_interval = "500ms"
rise = 2
fall = 4
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := PolicyFor(cfg.Pool("a"), NewProbes())
	if err != nil {
		t.Fatal(err)
	}
	if a.ServerRetry != 5 || a.Cleanup != 15*time.Second || a.Probe != (TCP{}) || a.Interval != 0 || a.Rise != 1 || a.Fall != 3 {
		t.Fatalf("defaults: %+v", a)
	}
	b, err := PolicyFor(cfg.Pool("b"), NewProbes())
	if err != nil {
		t.Fatal(err)
	}
	if b.ServerRetry != 2 || b.Cleanup != 3*time.Second || b.Probe != (HTTP{Path: "/ping"}) || b.Interval != 500*time.Millisecond || b.Rise != 2 || b.Fall != 4 {
		t.Fatalf("set: %+v", b)
	}
	if b.timeout(b.Interval) != 500*time.Millisecond || b.timeout(b.Cleanup) != 3*time.Second || a.timeout(a.Cleanup) != 5*time.Second {
		t.Fatal("probe timeouts")
	}
	if _, err := PolicyFor(&config.Pool{Name: "x", Check: "icmp"}, NewProbes()); err == nil {
		t.Fatal("unknown check accepted")
	}
}

func TestDescribe(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, "connection closed"},
		{fmt.Errorf("engine: connect 10.0.0.1:80: %w", syscall.ECONNREFUSED), "connection refused"},
		{syscall.ECONNRESET, "connection reset"},
		{engine.ErrConnectTimeout, "connect timeout"},
		{engine.ErrTimeout, "timeout"},
		{context.DeadlineExceeded, "timeout"},
		{errors.New("proxy: malformed backend response"), "proxy: malformed backend response"},
	} {
		if got := Describe(c.err); got != c.want {
			t.Errorf("Describe(%v) = %q, want %q", c.err, got, c.want)
		}
	}
	if got := PassiveReason(5, engine.ErrTimeout); got != "5 consecutive failures on traffic, last: timeout" {
		t.Errorf("PassiveReason: %q", got)
	}
}

// TestMonitorShortenedInterval: a shorter interval set at run time applies
// from the next tick, not after the old, longer one.
func TestMonitorShortenedInterval(t *testing.T) {
	f := newFixture(t, Policy{Cleanup: time.Hour}, "10.0.0.1:80")
	n := f.node(0)
	n.MarkDown("test", f.clock.Now())
	f.tick()
	f.pol.Cleanup = time.Second
	f.clock.Advance(time.Second)
	f.tick()
	if f.probe.count(n) != 1 || n.Down() {
		t.Fatalf("%d probes, down %v", f.probe.count(n), n.Down())
	}
}
