package pool

import (
	"slices"
	"testing"
)

// TestMethodTable: the table is the one list of names, the default first,
// and every name and alias makes a working policy.
func TestMethodTable(t *testing.T) {
	want := []string{"idle_first", "random", "round_robin", "least_conn"}
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
