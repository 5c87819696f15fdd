package pool

import (
	"fmt"
	"slices"
	"sync"
	"testing"
)

// TestMethodTable: the table is the one list of names, the default first,
// and every name and alias makes a working policy.
func TestMethodTable(t *testing.T) {
	want := []string{"idle_first", "random", "round_robin", "least_conn", "hash"}
	if got := MethodNames(); !slices.Equal(got, want) {
		t.Fatalf("MethodNames %v, want %v", got, want)
	}
	if m, ok := LookupMethod(""); !ok || m.Name != MethodIdleFirst {
		t.Fatalf("default %q %v", m.Name, ok)
	}
	nodes := fakeNodes(t, 3)
	for _, m := range Methods() {
		for _, name := range append([]string{m.Name}, m.Aliases...) {
			got, ok := LookupMethod(name)
			if !ok || got.Name != m.Name {
				t.Errorf("%q: found %q %v", name, got.Name, ok)
			}
			s, err := NewSelector(name)
			if err != nil {
				t.Fatalf("%q: %v", name, err)
			}
			if n := s.Select(nodes, NoKey, nil); n == nil {
				t.Errorf("%q picked nothing", name)
			}
			if n := s.Select(nil, NoKey, nil); n != nil {
				t.Errorf("%q picked from an empty list", name)
			}
			p, err := New("web", name)
			if err != nil || p.Method() != name || p.ReuseFirst() != m.ReuseFirst {
				t.Errorf("New(%q): %v, method %q, reuse first %v", name, err, p.Method(), p.ReuseFirst())
			}
		}
	}
	for _, bad := range []string{"fastest", "Random", "idle first"} {
		if _, ok := LookupMethod(bad); ok {
			t.Errorf("%q found", bad)
		}
		if _, err := NewSelector(bad); err == nil || err.Error() != "Unknown balance method" {
			t.Errorf("%q: %v", bad, err)
		}
	}
	// Each pool gets its own instance: two round_robin pools do not
	// share a turn.
	a, _ := New("a", MethodRoundRobin)
	b, _ := New("b", MethodRoundRobin)
	if err := a.SetNodes([]string{"10.0.0.1", "10.0.0.2"}); err != nil {
		t.Fatal(err)
	}
	if err := b.SetNodes([]string{"10.0.0.1", "10.0.0.2"}); err != nil {
		t.Fatal(err)
	}
	if a.Pick(NoKey, nil).Name != b.Pick(NoKey, nil).Name {
		t.Fatal("round_robin pools share their turn")
	}
}

// watcher records the node lists it is told.
type watcher struct {
	LeastConn
	told [][]string
}

func (w *watcher) NodesChanged(nodes []*Node) {
	var names []string
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	w.told = append(w.told, names)
}

// TestNodesWatcherTold: a policy that keeps node state is told the nodes
// when it is installed and when they come and go.
func TestNodesWatcherTold(t *testing.T) {
	p, err := New("web", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetNodes([]string{"10.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	w := &watcher{}
	p.install("watched", Method{Name: "watched", New: func() Selector { return w }})
	if p.Method() != "watched" || p.ReuseFirst() {
		t.Fatalf("installed %q, reuse first %v", p.Method(), p.ReuseFirst())
	}
	if err := p.Add("10.0.0.2"); err != nil {
		t.Fatal(err)
	}
	if err := p.Remove("10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"10.0.0.1:80"}, {"10.0.0.1:80", "10.0.0.2:80"}, {"10.0.0.2:80"}}
	if !slices.EqualFunc(w.told, want, slices.Equal) {
		t.Fatalf("told %v, want %v", w.told, want)
	}
	if err := p.SetNodes([]string{"bad address"}); err == nil || len(w.told) != 3 {
		t.Fatalf("a rejected list was told: %v %v", err, w.told)
	}
	if n := p.Pick(NoKey, nil); n == nil || n.Name != "10.0.0.2:80" {
		t.Fatalf("picked %v", n)
	}
}

// TestPickAllocatesNothing: a pick with a key, for every method.
func TestPickAllocatesNothing(t *testing.T) {
	skip := func(n *Node) bool { return false }
	for _, name := range MethodNames() {
		p, err := New("web", name)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.SetNodes([]string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}); err != nil {
			t.Fatal(err)
		}
		if a := testing.AllocsPerRun(100, func() { p.Pick(Key(12345), skip) }); a != 0 {
			t.Errorf("%s: %v allocations per pick", name, a)
		}
	}
}

// connsWatcher records takes and releases.
type connsWatcher struct {
	watcher
	mu     sync.Mutex
	events []string
}

func (w *connsWatcher) Took(n *Node, active int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events = append(w.events, fmt.Sprintf("take %s %d", n.Name, active))
}

func (w *connsWatcher) Released(n *Node, active int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events = append(w.events, fmt.Sprintf("release %s %d", n.Name, active))
}

// TestConnsWatcherTold: Take and Release keep Node.Active and tell a
// policy that watches them, with the node's new count; a policy that does
// not watch costs the counter only.
func TestConnsWatcherTold(t *testing.T) {
	p, err := New("web", MethodLeastConn)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetNodes([]string{"10.0.0.1", "10.0.0.2"}); err != nil {
		t.Fatal(err)
	}
	a, b := p.Nodes()[0], p.Nodes()[1]
	p.Take(a) // before the watcher: counted, told to nobody
	w := &connsWatcher{}
	p.install("watched", Method{Name: "watched", New: func() Selector { return w }})
	p.Take(a)
	p.Take(b)
	p.Release(a)
	p.Release(a) // the take from before it was installed
	p.Release(b)
	want := []string{"take 10.0.0.1:80 2", "take 10.0.0.2:80 1", "release 10.0.0.1:80 1", "release 10.0.0.1:80 0", "release 10.0.0.2:80 0"}
	if !slices.Equal(w.events, want) {
		t.Fatalf("told %q, want %q", w.events, want)
	}
	if a.Active.Load() != 0 || b.Active.Load() != 0 {
		t.Fatalf("active %d %d", a.Active.Load(), b.Active.Load())
	}
}

// TestTakeReleaseAllocateNothing: for every method of the table.
func TestTakeReleaseAllocateNothing(t *testing.T) {
	for _, name := range MethodNames() {
		p, err := New("web", name)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.SetNodes([]string{"10.0.0.1"}); err != nil {
			t.Fatal(err)
		}
		n := p.Nodes()[0]
		if a := testing.AllocsPerRun(100, func() { p.Take(n); p.Release(n) }); a != 0 {
			t.Errorf("%s: %v allocations per take and release", name, a)
		}
	}
}

// benchPool is a pool of method over size nodes of weight 1.
func benchPool(b *testing.B, method string, size int) *Pool {
	b.Helper()
	addrs := make([]string, size)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)
	}
	p, err := New("web", method)
	if err != nil {
		b.Fatal(err)
	}
	if err := p.SetNodes(addrs); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkPick: a pick among 4, 16 and 64 nodes, for every method (the
// scan least_conn and idle_first do instead of keeping an order).
func BenchmarkPick(b *testing.B) {
	for _, size := range []int{4, 16, 64} {
		for _, name := range MethodNames() {
			p := benchPool(b, name, size)
			b.Run(fmt.Sprintf("%s/%d", name, size), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if n := p.Pick(NoKey, nil); n != nil {
						p.Take(n)
						p.Release(n)
					}
				}
			})
		}
	}
}
