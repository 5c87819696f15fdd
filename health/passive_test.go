package health

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plb/plb/engine"
)

// TestFailedNeverTakesMostOfAPool: a node's own failures take it down at
// once while at least half the pool stays up; past that, passive evidence
// only makes it suspect.
func TestFailedNeverTakesMostOfAPool(t *testing.T) {
	f := newFixture(t, Policy{}, "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80")
	nodes := f.pool.Nodes()
	now := f.clock.Now()
	verdicts := []Verdict{}
	for _, n := range nodes {
		var v Verdict
		for i := 0; i < 2; i++ {
			_, v = Failed(nodes, n, 2, syscall.ECONNREFUSED, now)
		}
		verdicts = append(verdicts, v)
	}
	if verdicts[0] != WentDown || verdicts[1] != Suspected || verdicts[2] != Suspected {
		t.Fatalf("verdicts %v: want the first down, the others suspect (2 of 3 up, then fewer)", verdicts)
	}
	if !nodes[0].Down() || nodes[1].Down() || nodes[2].Down() {
		t.Fatal("states do not match the verdicts")
	}
	if _, v := Failed(nodes, nodes[1], 2, syscall.ECONNREFUSED, now); v != Unchanged {
		t.Fatalf("a suspect node's next failure gave %v", v)
	}
}

// TestRequestFailedOnlySuspects: failures of requests never take a node
// down by themselves, even its only one.
func TestRequestFailedOnlySuspects(t *testing.T) {
	f := newFixture(t, Policy{}, "10.0.0.1:80")
	n := f.node(0)
	var reason string
	var v Verdict
	for i := 0; i < 3; i++ {
		reason, v = RequestFailed(n, 3, engine.ErrTimeout)
	}
	if v != Suspected || n.Down() || reason != "3 consecutive request failures, last: timeout" {
		t.Fatalf("verdict %v, down %v, reason %q", v, n.Down(), reason)
	}
}

// TestMonitorConfirmsSuspects: the monitor probes a suspect node at once
// with the policy's Confirm probe: a failure takes it down with both
// reasons, a success clears it.
func TestMonitorConfirmsSuspects(t *testing.T) {
	f := newFixture(t, Policy{Cleanup: time.Hour}, "10.0.0.1:80", "10.0.0.2:80")
	confirm := newFakeProbe()
	f.pol.Confirm = confirm
	bad, good := f.node(0), f.node(1)
	confirm.set(bad, errors.New("no answer"))
	bad.MarkSuspect("3 consecutive request failures, last: timeout")
	good.MarkSuspect("3 consecutive request failures, last: connection reset")
	f.tick()
	if confirm.count(bad) != 1 || confirm.count(good) != 1 || f.probe.count(bad)+f.probe.count(good) != 0 {
		t.Fatalf("confirm probes %d/%d, regular probes %d", confirm.count(bad), confirm.count(good),
			f.probe.count(bad)+f.probe.count(good))
	}
	if !bad.Down() || bad.LastTransition().Reason != "3 consecutive request failures, last: timeout; confirmed by fake probe: no answer" {
		t.Fatalf("bad: down %v, %q", bad.Down(), bad.LastTransition().Reason)
	}
	if s, _ := good.Suspect(); s || good.Down() {
		t.Fatal("a node that answered the probe is still suspect, or down")
	}
	if f.logged("node down") != 1 || f.logged("node kept up") != 1 || !strings.Contains(f.log.String(), "fake probe succeeded") {
		t.Fatalf("log:\n%s", f.log)
	}
	f.tick()
	if confirm.count(good) != 1 {
		t.Fatal("probed again once cleared")
	}
}

// namedProbe is a fakeProbe under another name.
type namedProbe struct {
	*fakeProbe
	name string
}

func (p namedProbe) String() string { return p.name }

// TestMonitorRevivesWithConfirm: a down node comes back only when it passes
// the Confirm probe (what took it out), not the weaker regular one.
func TestMonitorRevivesWithConfirm(t *testing.T) {
	f := newFixture(t, Policy{Cleanup: time.Second}, "10.0.0.1:80")
	confirm := namedProbe{newFakeProbe(), "http OPTIONS *"}
	f.pol.Confirm = confirm
	n := f.node(0)
	n.MarkDown("test", f.clock.Now())
	confirm.set(n, errors.New("timeout"))
	for i := 0; i < 3; i++ {
		f.clock.Advance(time.Second)
		f.tick()
	}
	if !n.Down() || confirm.count(n) == 0 || f.probe.count(n) != 0 {
		t.Fatalf("down %v, confirm probes %d, regular probes %d", n.Down(), confirm.count(n), f.probe.count(n))
	}
	confirm.set(n, nil)
	f.clock.Advance(time.Second)
	f.tick()
	if n.Down() || n.LastTransition().Reason != "http OPTIONS * probe succeeded" {
		t.Fatalf("down %v, reason %q", n.Down(), n.LastTransition().Reason)
	}
}
