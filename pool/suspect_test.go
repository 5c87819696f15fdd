package pool

import (
	"testing"
	"time"
)

// TestFailRequestMakesSuspectOnly: failures of requests the node took count
// in a run of their own; reaching the limit reports once, a good response
// starts the run over, and the suspicion lasts until cleared or a
// transition.
func TestFailRequestMakesSuspectOnly(t *testing.T) {
	n := fakeNodes(t, 1)[0]
	if n.FailRequest(3) || n.FailRequest(3) {
		t.Fatal("suspect before 3 failures")
	}
	n.Succeed()
	if n.FailRequest(3) || n.FailRequest(3) {
		t.Fatal("a good response did not start the run over")
	}
	if !n.FailRequest(3) {
		t.Fatal("3 failures in a row not reported")
	}
	if !n.MarkSuspect("why") || n.MarkSuspect("again") {
		t.Fatal("MarkSuspect reports the first time only")
	}
	if s, why := n.Suspect(); !s || why != "why" || n.Down() {
		t.Fatalf("suspect %v %q, down %v", s, why, n.Down())
	}
	if n.FailRequest(3) {
		t.Fatal("a suspect node reported again")
	}
	n.ClearSuspect()
	if s, _ := n.Suspect(); s || n.FailRequest(3) {
		t.Fatal("not cleared, or the run not started over")
	}
	n.FailRequest(3)
	n.FailRequest(3)
	n.MarkSuspect("x")
	n.MarkDown("probe failed", time.Unix(1, 0))
	if s, _ := n.Suspect(); s || !n.Down() {
		t.Fatal("going down ends the suspicion")
	}
	if n.MarkSuspect("y") {
		t.Fatal("a down node made suspect")
	}
	if n.Failures.Load() != 9 {
		t.Fatalf("%d failures counted, want 9", n.Failures.Load())
	}
}

func TestSuspendReuse(t *testing.T) {
	n := fakeNodes(t, 1)[0]
	now := time.Unix(1000, 0)
	if n.ReuseSuspended(now) {
		t.Fatal("suspended from the start")
	}
	if !n.SuspendReuse(now, time.Minute) || n.SuspendReuse(now.Add(time.Second), time.Minute) {
		t.Fatal("SuspendReuse reports the first suspension only")
	}
	if !n.ReuseSuspended(now.Add(59*time.Second)) || n.ReuseSuspended(now.Add(62*time.Second)) {
		t.Fatal("suspension does not last a minute from the last report")
	}
	if !n.SuspendReuse(now.Add(2*time.Minute), time.Minute) {
		t.Fatal("a suspension after the last one ended is not reported")
	}
}

func TestReuseFirstIsIdleFirst(t *testing.T) {
	for method, want := range map[string]bool{"": true, "idle_first": true, "random": false, "round_robin": false, "least_conn": false} {
		p, err := New("web", method)
		if err != nil {
			t.Fatal(err)
		}
		if p.ReuseFirst() != want {
			t.Errorf("%q: ReuseFirst %v", method, p.ReuseFirst())
		}
		if method == "" && p.Method() != "idle_first" {
			t.Errorf("default method %q", p.Method())
		}
	}
}
