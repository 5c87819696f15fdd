package pool

import (
	"fmt"
	"testing"
	"time"
)

// fakeNodes returns n nodes on 10.0.0.x:80 (never dialed).
func fakeNodes(t *testing.T, n int) []*Node {
	t.Helper()
	var nodes []*Node
	for i := 0; i < n; i++ {
		nd, err := ParseNode(fmt.Sprintf("10.0.0.%d:80", i+1))
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, nd)
	}
	return nodes
}

func counts(nodes []*Node, picks int, s Selector, skip func(*Node) bool) map[*Node]int {
	m := map[*Node]int{}
	for i := 0; i < picks; i++ {
		if n := s.Select(nodes, NoKey, skip); n != nil {
			m[n]++
		} else {
			m[nil]++
		}
	}
	return m
}

func TestRoundRobinEven(t *testing.T) {
	nodes := fakeNodes(t, 4)
	rr := &RoundRobin{}
	// Consecutive picks cycle through the nodes in order.
	for i := 0; i < 8; i++ {
		if n := rr.Select(nodes, NoKey, nil); n != nodes[i%4] {
			t.Fatalf("pick %d: %s, want %s", i, n.Name, nodes[i%4].Name)
		}
	}
	m := counts(nodes, 400, rr, nil)
	for _, n := range nodes {
		if m[n] != 100 {
			t.Errorf("%s picked %d of 400 times", n.Name, m[n])
		}
	}
}

func TestRoundRobinSkipsDownAndTried(t *testing.T) {
	nodes := fakeNodes(t, 3)
	nodes[1].SetDown(true)
	rr := &RoundRobin{}
	m := counts(nodes, 300, rr, nil)
	if m[nodes[1]] != 0 || m[nodes[0]]+m[nodes[2]] != 300 {
		t.Fatalf("down node picked: %v", m)
	}
	skip := func(n *Node) bool { return n == nodes[0] }
	if m := counts(nodes, 10, rr, skip); m[nodes[2]] != 10 {
		t.Fatalf("skip ignored: %v", m)
	}
	nodes[2].SetDown(true)
	if n := rr.Select(nodes, NoKey, skip); n != nil {
		t.Fatalf("picked %s with nothing usable", n.Name)
	}
	if n := rr.Select(nil, NoKey, nil); n != nil {
		t.Fatal("picked from an empty list")
	}
}

func TestRandomCoversAllAndSkips(t *testing.T) {
	nodes := fakeNodes(t, 5)
	m := counts(nodes, 5000, Random{}, nil)
	for _, n := range nodes {
		if m[n] < 700 || m[n] > 1300 { // mean 1000, sd ~28
			t.Errorf("%s picked %d of 5000 times", n.Name, m[n])
		}
	}
	nodes[0].SetDown(true)
	skip := func(n *Node) bool { return n == nodes[1] }
	m = counts(nodes, 1000, Random{}, skip)
	if m[nodes[0]] != 0 || m[nodes[1]] != 0 || m[nil] != 0 {
		t.Fatalf("down or skipped node picked: %v", m)
	}
	for _, n := range nodes {
		n.SetDown(true)
	}
	if n := (Random{}).Select(nodes, NoKey, nil); n != nil {
		t.Fatal("picked a down node")
	}
}

func TestLeastConnPicksFewestActive(t *testing.T) {
	nodes := fakeNodes(t, 3)
	nodes[0].Active.Store(5)
	nodes[1].Active.Store(2)
	nodes[2].Active.Store(7)
	for i := 0; i < 20; i++ {
		if n := (LeastConn{}).Select(nodes, NoKey, nil); n != nodes[1] {
			t.Fatalf("picked %s (active %d)", n.Name, n.Active.Load())
		}
	}
	// Ties are broken at random, over every tied node.
	nodes[0].Active.Store(2)
	m := counts(nodes, 1000, LeastConn{}, nil)
	if m[nodes[2]] != 0 || m[nodes[0]] < 350 || m[nodes[1]] < 350 {
		t.Fatalf("tie picks: %d %d %d", m[nodes[0]], m[nodes[1]], m[nodes[2]])
	}
	nodes[1].SetDown(true)
	skip := func(n *Node) bool { return n == nodes[0] }
	if n := (LeastConn{}).Select(nodes, NoKey, skip); n != nodes[2] {
		t.Fatalf("with the others down or skipped: %v", n)
	}
}

// TestLeastConnSpreadsLoad simulates requests that stay in flight: picks
// follow the Active counts, so the load spreads evenly.
func TestLeastConnSpreadsLoad(t *testing.T) {
	nodes := fakeNodes(t, 4)
	for i := 0; i < 40; i++ {
		(LeastConn{}).Select(nodes, NoKey, nil).Active.Add(1)
	}
	for _, n := range nodes {
		if n.Active.Load() != 10 {
			t.Errorf("%s has %d requests in flight, want 10", n.Name, n.Active.Load())
		}
	}
}

func TestPoolSetNodesKeepsState(t *testing.T) {
	p, err := New("web", "round_robin")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetNodes([]string{"10.0.0.1:80", "10.0.0.2", "10.0.0.1:80"}); err != nil {
		t.Fatal(err)
	}
	ns := p.Nodes()
	if len(ns) != 2 || ns[1].Name != "10.0.0.2:80" {
		t.Fatalf("nodes %v", ns)
	}
	ns[0].Requests.Add(7)
	ns[0].SetDown(true)
	if err := p.Add("10.0.0.3:80"); err != nil {
		t.Fatal(err)
	}
	if err := p.Remove("10.0.0.2:80"); err != nil {
		t.Fatal(err)
	}
	ns2 := p.Nodes()
	if len(ns2) != 2 || ns2[0] != ns[0] || ns2[0].Requests.Load() != 7 || !ns2[0].Down() || ns2[1].Name != "10.0.0.3:80" {
		t.Fatalf("after add/remove: %v", ns2)
	}
	if n := p.Pick(NoKey, nil); n != ns2[1] {
		t.Fatalf("picked %v, want the only node up", n)
	}
	if err := p.SetNodes([]string{"not an address"}); err == nil {
		t.Fatal("bad address accepted")
	}
	if _, err := New("x", "fastest"); err == nil {
		t.Fatal("unknown method accepted")
	}
}

func TestFailAndRevive(t *testing.T) {
	n := fakeNodes(t, 1)[0]
	if n.Fail(3) || n.Fail(3) {
		t.Fatal("down before server_retry failures")
	}
	n.Succeed() // a success resets the run
	if n.Fail(3) || n.Fail(3) {
		t.Fatal("success did not reset the count")
	}
	if !n.Fail(3) {
		t.Fatal("not down after 3 consecutive failures")
	}
	if !n.SetDown(true) || n.SetDown(true) {
		t.Fatal("SetDown should report only the change")
	}
	if !n.SetDown(false) || n.Down() {
		t.Fatal("not revived")
	}
	if n.Fail(0) || n.Fail(0) {
		t.Fatal("server_retry 0 must never mark down")
	}
	if n.Failures.Load() != 7 {
		t.Fatalf("%d failures counted", n.Failures.Load())
	}
}

func TestNoVerifyAndCodes(t *testing.T) {
	n := fakeNodes(t, 1)[0]
	now := time.Unix(1000, 0)
	n.SetNoVerify(now, time.Minute)
	if !n.NoVerify(now.Add(59*time.Second)) || n.NoVerify(now.Add(61*time.Second)) {
		t.Fatal("no-verify window wrong")
	}
	for i := 0; i < 600; i++ {
		code := 200
		if i%3 == 0 {
			code = 503
		}
		n.RecordResponse(code, now)
	}
	m := n.ResponseCodes()
	if m[200]+m[503] != 500 {
		t.Fatalf("codes %v: want the last 500", m)
	}
}

func TestTransitions(t *testing.T) {
	n := fakeNodes(t, 1)[0]
	if tr := n.LastTransition(); !tr.At.IsZero() || tr.Down || n.Transitions() != 0 {
		t.Fatalf("new node: %+v", tr)
	}
	t0 := time.Unix(1000, 0)
	n.Fail(2)
	n.Fail(2)
	if !n.MarkDown("2 consecutive failures", t0) || n.MarkDown("again", t0.Add(time.Second)) {
		t.Fatal("MarkDown should report only the change")
	}
	if tr := n.LastTransition(); !tr.Down || tr.Reason != "2 consecutive failures" || !tr.At.Equal(t0) {
		t.Fatalf("after MarkDown: %+v", tr)
	}
	if got := (&RoundRobin{}).Select([]*Node{n}, NoKey, nil); got != nil {
		t.Fatal("picked a down node")
	}
	if !n.MarkUp("probe succeeded", t0.Add(time.Minute)) || n.MarkUp("again", t0) {
		t.Fatal("MarkUp should report only the change")
	}
	if tr := n.LastTransition(); tr.Down || tr.Reason != "probe succeeded" || n.Transitions() != 2 || n.ConsecutiveFailures() != 0 {
		t.Fatalf("after MarkUp: %+v, %d transitions, %d failures in a row", tr, n.Transitions(), n.ConsecutiveFailures())
	}
}
