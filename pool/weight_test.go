package pool

import (
	"strings"
	"testing"
)

// weighted returns a pool of method over specs ("addr weight=N").
func weighted(t *testing.T, method string, specs ...string) *Pool {
	t.Helper()
	p, err := New("web", method)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetNodes(specs); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestWeightsShareRequests: weights 3:1 give the first node 75% ± 5 points
// of 10,000 requests, with every method; least_conn and idle_first with
// 40 requests in flight, each ending in turn (their picks follow the
// requests in flight, not a count).
func TestWeightsShareRequests(t *testing.T) {
	for _, method := range MethodNames() {
		p := weighted(t, method, "10.0.0.1:80 weight=3", "10.0.0.2:80")
		a := p.Nodes()[0]
		var inflight []*Node
		hits := 0
		for range 10000 {
			n := p.Pick(NoKey, nil)
			if n == a {
				hits++
			}
			p.Take(n)
			inflight = append(inflight, n)
			if len(inflight) > 40 {
				p.Release(inflight[0])
				inflight = inflight[1:]
			}
		}
		if share := float64(hits) / 10000; share < 0.70 || share > 0.80 {
			t.Errorf("%s: weight 3 of 4 got %.1f%% of the requests", method, 100*share)
		}
	}
}

// TestSmoothRoundRobin: weights 5:1:1 spread the heavy node out, in
// nginx's order, instead of sending it five in a row.
func TestSmoothRoundRobin(t *testing.T) {
	p := weighted(t, MethodRoundRobin, "10.0.0.1 weight=5", "10.0.0.2", "10.0.0.3")
	names := map[string]string{"10.0.0.1:80": "a", "10.0.0.2:80": "b", "10.0.0.3:80": "c"}
	var got []string
	for range 14 {
		got = append(got, names[p.Pick(NoKey, nil).Name])
	}
	if s := strings.Join(got, " "); s != "a a b a c a a a a b a c a a" {
		t.Fatalf("picked %s", s)
	}
}

// TestWeightZeroDrains: a node of weight 0 gets no new request from any
// method while its requests in flight end; weight 1 again brings it back.
func TestWeightZeroDrains(t *testing.T) {
	for _, method := range MethodNames() {
		p := weighted(t, method, "10.0.0.1", "10.0.0.2")
		a := p.Nodes()[0]
		p.Take(a) // in flight when drained
		if err := p.Add("10.0.0.1 weight=0"); err != nil {
			t.Fatal(err)
		}
		if p.Nodes()[1] != a || a.Weight() != 0 || len(p.Nodes()) != 2 {
			t.Fatalf("%s: re-adding with a weight made %v", method, p.Nodes())
		}
		for range 100 {
			if p.Pick(NoKey, nil) == a {
				t.Fatalf("%s: a drained node was picked", method)
			}
		}
		p.Release(a)
		if a.Active.Load() != 0 {
			t.Fatalf("%s: in flight %d", method, a.Active.Load())
		}
		if err := p.Add("10.0.0.1"); err != nil {
			t.Fatal(err)
		}
		seen := false
		for range 100 {
			seen = seen || p.Pick(NoKey, nil) == a
		}
		if !seen {
			t.Fatalf("%s: weight 1 again, never picked", method)
		}
	}
	// Only drained nodes: nothing to pick.
	p := weighted(t, MethodRandom, "10.0.0.1 weight=0")
	if n := p.Pick(NoKey, nil); n != nil {
		t.Fatalf("picked %v", n.Name)
	}
}

// TestNodeSpec: weights parse, print back as configuration writes them
// (none for 1), are bounded, and a kept node takes its new weight.
func TestNodeSpec(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1":                "10.0.0.1:80",
		"10.0.0.1:81 weight=1":    "10.0.0.1:81",
		"10.0.0.1 weight=256":     "10.0.0.1:80 weight=256",
		"[2001:db8::1] weight=0":  "[2001:db8::1]:80 weight=0",
		" 10.0.0.1:82  weight=7 ": "10.0.0.1:82 weight=7",
	} {
		n, err := ParseNode(in)
		if err != nil || n.Spec() != want {
			t.Errorf("ParseNode(%q) = %v, %v; want %s", in, n, err, want)
		}
	}
	for _, bad := range []string{"10.0.0.1 weight=257", "10.0.0.1 weight=-1", "10.0.0.1 weight=x", "10.0.0.1 w=2", "10.0.0.1 weight=1 x"} {
		if _, err := ParseNode(bad); err == nil {
			t.Errorf("ParseNode(%q) accepted", bad)
		}
	}
	p := weighted(t, "", "10.0.0.1 weight=2", "10.0.0.2")
	a := p.Nodes()[0]
	a.Requests.Add(5)
	if err := p.SetNodes([]string{"10.0.0.1 weight=4", "10.0.0.2"}); err != nil {
		t.Fatal(err)
	}
	if p.Nodes()[0] != a || a.Weight() != 4 || a.Requests.Load() != 5 {
		t.Fatalf("kept node: weight %d, requests %d", a.Weight(), a.Requests.Load())
	}
}

// TestBackupNodes: a backup takes requests only when none of the other
// nodes can: all up, none goes to it; the others down, drained or tried,
// it does; " backup" survives SetNodes and Spec.
func TestBackupNodes(t *testing.T) {
	for _, method := range []string{"round_robin", "random", "least_conn", "idle_first"} {
		p, err := New("web", method)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.SetNodes([]string{"10.0.0.1:80", "10.0.0.2:80 weight=2", "10.0.0.3:80 backup"}); err != nil {
			t.Fatal(err)
		}
		nodes := p.Nodes()
		if nodes[2].Spec() != "10.0.0.3:80 backup" || !nodes[2].Backup() || nodes[0].Backup() {
			t.Fatalf("%s: specs %q %q", method, nodes[0].Spec(), nodes[2].Spec())
		}
		for range 100 {
			if n := p.Pick(NoKey, nil); n == nil || n.Backup() {
				t.Fatalf("%s: picked %v with the others up", method, n)
			}
		}
		// The first tried, the second drained: still not the backup while
		// the first may take it... then both unavailable: the backup.
		nodes[1].weight.Store(0)
		if n := p.Pick(NoKey, nil); n != nodes[0] {
			t.Fatalf("%s: with the second drained, picked %v", method, n)
		}
		if n := p.Pick(NoKey, func(n *Node) bool { return n == nodes[0] }); n != nodes[2] {
			t.Fatalf("%s: the others unavailable, picked %v", method, n)
		}
		nodes[1].weight.Store(2)
		if err := p.SetNodes([]string{"10.0.0.1:80", "10.0.0.2:80 weight=2", "10.0.0.3:80"}); err != nil {
			t.Fatal(err)
		}
		if nodes[2].Backup() {
			t.Fatalf("%s: the backup flag did not follow SetNodes", method)
		}
	}
	if _, err := ParseNode("10.0.0.1:80 backup backup"); err == nil {
		t.Fatal("backup twice accepted")
	}
	if n, err := ParseNode("10.0.0.1:80 backup weight=3"); err != nil || n.Spec() != "10.0.0.1:80 weight=3 backup" {
		t.Fatalf("backup then weight: %v %v", n, err)
	}
}
