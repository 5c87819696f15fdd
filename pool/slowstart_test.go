package pool

import (
	"testing"
	"time"

	"github.com/plb/plb/internal/testutil"
)

// shareOf picks 1,000 times and returns the share n got.
func shareOf(p *Pool, n *Node) float64 {
	hits := 0
	for range 1000 {
		if p.Pick(NoKey, nil) == n {
			hits++
		}
	}
	return float64(hits) / 1000
}

// TestSlowStartRamps: a node come back up in a pool with slow_start 10s
// takes a share that grows over the window to its full one (a half of two
// equal nodes), for every method; without slow_start it has it at once.
func TestSlowStartRamps(t *testing.T) {
	for _, method := range []string{MethodRoundRobin, MethodRandom, MethodLeastConn} {
		clock := testutil.NewClock(time.Unix(1_800_000_000, 0))
		p := weighted(t, method, "10.0.0.1", "10.0.0.2")
		p.SetSlowStart(10*time.Second, clock.Now)
		b := p.Nodes()[1]
		b.MarkDown("test", clock.Now())
		b.MarkUp("test", clock.Now())
		var shares []float64
		for range 4 {
			clock.Advance(2500 * time.Millisecond)
			shares = append(shares, shareOf(p, b))
		}
		// 0.25, 0.5 and 0.75 of the weight, then all: 1/5, 1/3, 3/7, 1/2.
		for i, want := range []float64{0.2, 1.0 / 3, 3.0 / 7, 0.5} {
			if d := shares[i] - want; d < -0.06 || d > 0.06 {
				t.Errorf("%s: share %.2f at %.1fs of the ramp, want %.2f (%v)", method, shares[i], 2.5*float64(i+1), want, shares)
			}
		}
		p.SetSlowStart(0, clock.Now)
		b.MarkDown("test", clock.Now())
		b.MarkUp("test", clock.Now())
		if s := shareOf(p, b); s < 0.44 || s > 0.56 {
			t.Errorf("%s: without slow_start, share %.2f at once", method, s)
		}
	}
}

// TestSlowStartAddedAndHeavier: a node added after the pool's first nodes,
// or given a higher weight, ramps; the first nodes do not.
func TestSlowStartAddedAndHeavier(t *testing.T) {
	clock := testutil.NewClock(time.Unix(1_800_000_000, 0))
	p, err := New("web", MethodRoundRobin)
	if err != nil {
		t.Fatal(err)
	}
	p.SetSlowStart(10*time.Second, clock.Now)
	if err := p.SetNodes([]string{"10.0.0.1", "10.0.0.2"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range p.Nodes() {
		if n.Share() != ShareScale {
			t.Fatalf("a first node ramps: %d", n.Share())
		}
	}
	if err := p.Add("10.0.0.3"); err != nil {
		t.Fatal(err)
	}
	c := p.Nodes()[2]
	clock.Advance(time.Second)
	if s := c.Share(); s != ShareScale/10 {
		t.Fatalf("added node 1s into 10s: share %d, want %d", s, ShareScale/10)
	}
	clock.Advance(10 * time.Second)
	if s := c.Share(); s != ShareScale {
		t.Fatalf("added node after the ramp: %d", s)
	}
	if err := p.Add("10.0.0.3 weight=3"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(5 * time.Second)
	if s := p.Nodes()[2].Share(); s != 3*ShareScale/2 {
		t.Fatalf("heavier node halfway: share %d, want %d", s, 3*ShareScale/2)
	}
	if err := p.Add("10.0.0.3 weight=1"); err != nil { // lighter: at once
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	if s := p.Nodes()[2].Share(); s != ShareScale {
		t.Fatalf("lighter node: share %d, want %d", s, ShareScale)
	}
}

// TestSlowStartHashKeys: a node come back up in a hash pool with
// slow_start takes back its keys in turn as its share grows, not all at
// once: a quarter into the ramp about a quarter of them, each key once
// back staying back, all of them at the end.
func TestSlowStartHashKeys(t *testing.T) {
	clock := testutil.NewClock(time.Unix(1_800_000_000, 0))
	p := weighted(t, MethodHash, "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4")
	p.SetSlowStart(10*time.Second, clock.Now)
	b := p.Nodes()[1]
	var home []Key
	for _, k := range keys(4000) {
		if p.Pick(k, nil) == b {
			home = append(home, k)
		}
	}
	b.MarkDown("test", clock.Now())
	b.MarkUp("test", clock.Now())
	back := map[Key]bool{}
	for step, want := range []float64{0.25, 0.5, 0.75, 1} {
		clock.Advance(2500 * time.Millisecond)
		n := 0
		for _, k := range home {
			if p.Pick(k, nil) == b {
				n++
				back[k] = true
			} else if back[k] {
				t.Fatalf("step %d: key %x went back to its node, then left it again", step, k)
			}
		}
		if got := float64(n) / float64(len(home)); got < want-0.07 || got > want+0.07 {
			t.Errorf("step %d: %.2f of the node's %d keys back, want %.2f", step, got, len(home), want)
		}
	}
}
