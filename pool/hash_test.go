package pool

import (
	"fmt"
	"testing"
)

// keys returns n distinct keys.
func keys(n int) []Key {
	out := make([]Key, n)
	for i := range out {
		out[i] = HashBytes(fmt.Appendf(nil, "client-%d", i))
	}
	return out
}

// TestHashSameKeySameNode: a key always lands on the same node, and keys
// spread over the nodes by weight (within a tenth of their due share, as
// pointsPerWeight promises); NoKey goes round robin.
func TestHashSameKeySameNode(t *testing.T) {
	p := weighted(t, MethodHash, "10.0.0.1", "10.0.0.2", "10.0.0.3 weight=2")
	count := map[string]int{}
	for _, k := range keys(10000) {
		n := p.Pick(k, nil)
		for range 3 {
			if again := p.Pick(k, nil); again != n {
				t.Fatalf("key %x: %s then %s", k, n.Name, again.Name)
			}
		}
		count[n.Name]++
	}
	for name, want := range map[string]int{"10.0.0.1:80": 2500, "10.0.0.2:80": 2500, "10.0.0.3:80": 5000} {
		if got := count[name]; got < want*9/10 || got > want*11/10 {
			t.Errorf("%s got %d keys, want %d ± 10%% (%v)", name, got, want, count)
		}
	}
	a, b := p.Pick(NoKey, nil), p.Pick(NoKey, nil)
	if a == nil || b == nil {
		t.Fatal("NoKey picked nothing")
	}
}

// TestHashMovesFewKeys: adding a fifth node to four moves at most 25% + 5
// points of 10,000 keys, all of them to the new node; removing it moves
// them back.
func TestHashMovesFewKeys(t *testing.T) {
	p := weighted(t, MethodHash, "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4")
	ks := keys(10000)
	before := map[Key]string{}
	for _, k := range ks {
		before[k] = p.Pick(k, nil).Name
	}
	if err := p.Add("10.0.0.5"); err != nil {
		t.Fatal(err)
	}
	moved := 0
	for _, k := range ks {
		if n := p.Pick(k, nil).Name; n != before[k] {
			moved++
			if n != "10.0.0.5:80" {
				t.Fatalf("key %x moved from %s to %s, not to the new node", k, before[k], n)
			}
		}
	}
	if moved > 3000 || moved < 1000 {
		t.Errorf("adding one node of five moved %d of 10000 keys", moved)
	}
	if err := p.Remove("10.0.0.5"); err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		if n := p.Pick(k, nil).Name; n != before[k] {
			t.Fatalf("key %x on %s after the node left, was %s", k, n, before[k])
		}
	}
}

// TestHashBoundedLoads: one hot key with 200 requests in flight spills
// over: no node exceeds 125% of the mean; without the bound (factor 0)
// they all go to one node.
func TestHashBoundedLoads(t *testing.T) {
	hot := HashBytes([]byte("the hot key"))
	for _, factor := range []int{DefaultBalanceFactor, 0} {
		p := weighted(t, MethodHash, "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4")
		p.SetBalanceFactor(factor)
		for range 200 {
			p.Take(p.Pick(hot, nil))
		}
		most := int64(0)
		for _, n := range p.Nodes() {
			most = max(most, n.Active.Load())
		}
		switch {
		case factor > 0 && most > 200*125/100/4+1:
			t.Errorf("factor %d: a node has %d of 200 requests in flight", factor, most)
		case factor == 0 && most != 200:
			t.Errorf("unbounded: the key's node has %d of 200", most)
		}
	}
}

// TestHashSkipsDownAndDrained: a key whose node is down or drained goes
// to another node, and comes back to it when it is up again.
func TestHashSkipsDownAndDrained(t *testing.T) {
	p := weighted(t, MethodHash, "10.0.0.1", "10.0.0.2", "10.0.0.3")
	k := HashBytes([]byte("session-42"))
	home := p.Pick(k, nil)
	home.SetDown(true)
	if n := p.Pick(k, nil); n == nil || n == home {
		t.Fatalf("down: picked %v", n)
	}
	home.SetDown(false)
	if n := p.Pick(k, nil); n != home {
		t.Fatalf("up again: picked %s, want %s", n.Name, home.Name)
	}
	if err := p.Add(home.Name + " weight=0"); err != nil {
		t.Fatal(err)
	}
	if n := p.Pick(k, nil); n == nil || n == home {
		t.Fatalf("drained: picked %v", n)
	}
}

// TestParseHashKey: the four sources; anything else is refused.
func TestParseHashKey(t *testing.T) {
	for _, s := range []string{"source_ip", "uri", "header:X-User", "cookie:session_id"} {
		k, err := ParseHashKey(s)
		if err != nil || k.String() != s {
			t.Errorf("%q: %v %v", s, k, err)
		}
	}
	for _, s := range []string{"", "ip", "header:", "cookie:a b", "header:x:y", "query:q"} {
		if _, err := ParseHashKey(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

// TestHashKeyOnlyForHash: a pool reports its hash key only while hash is
// its method, so that other methods' requests compute none.
func TestHashKeyOnlyForHash(t *testing.T) {
	p := weighted(t, MethodRoundRobin, "10.0.0.1")
	p.SetHashKey(HashKey{Source: KeyURI})
	if k := p.HashKey(); k.Source != KeyNone {
		t.Fatalf("round_robin: key %v", k)
	}
	if err := p.SetMethod(MethodHash); err != nil {
		t.Fatal(err)
	}
	if k := p.HashKey(); k.Source != KeyURI {
		t.Fatalf("hash: key %v", k)
	}
}

// BenchmarkHashPick: a pick by key among 4, 16 and 64 nodes, bounded
// loads on (a scan for the load, a binary search, a step or two).
func BenchmarkHashPick(b *testing.B) {
	for _, size := range []int{4, 16, 64} {
		p := benchPool(b, MethodHash, size)
		ks := keys(1024)
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				n := p.Pick(ks[i%len(ks)], nil)
				p.Take(n)
				p.Release(n)
				i++
			}
		})
	}
}

// meanwhile calls fn over and over on a goroutine of its own until the
// function it returns is called, which waits for it to stop.
func meanwhile(fn func()) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			default:
				fn()
			}
		}
	}()
	return func() { close(quit); <-done }
}

// TestHashNoUsableNode: with every node down a keyed pick returns nil at
// once, and a node coming up while others pick (the health monitor's
// goroutine against the loops') never makes a pick divide by a total
// weight of zero (it panicked the process).
func TestHashNoUsableNode(t *testing.T) {
	p := weighted(t, MethodHash, "10.0.0.1 weight=50", "10.0.0.2 weight=50")
	a, b := p.Nodes()[0], p.Nodes()[1]
	a.SetDown(true)
	b.SetDown(true)
	if n := p.Pick(HashBytes([]byte("k")), nil); n != nil {
		t.Fatalf("all down: picked %s", n.Name)
	}
	defer meanwhile(func() {
		b.SetDown(false)
		b.SetDown(true)
	})()
	for _, k := range keys(5000) {
		if n := p.Pick(k, nil); n != nil && n != b {
			t.Fatalf("picked %s, down", n.Name)
		}
	}
}

// TestHashRepublishKeepsKeys: the same nodes published again (an Apply
// does so for every pool) keep the ring: a key stays on its node even
// while a pick races the publication; weights with a common divisor make
// the same ring as their quotients.
func TestHashRepublishKeepsKeys(t *testing.T) {
	specs := []string{"10.0.0.1 weight=10", "10.0.0.2 weight=10", "10.0.0.3 weight=20"}
	p := weighted(t, MethodHash, specs...)
	k := HashBytes([]byte("session-7"))
	home := p.Pick(k, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			if err := p.SetNodes(specs); err != nil {
				panic(err)
			}
		}
	}()
	for range 20000 {
		if n := p.Pick(k, nil); n != home {
			t.Fatalf("republishing moved the key from %s to %s", home.Name, n.Name)
		}
	}
	<-done
	small := weighted(t, MethodHash, "10.0.0.1", "10.0.0.2", "10.0.0.3 weight=2")
	if got, want := len(small.selector.Load().s.(*Hash).ring.Load().points), len(p.selector.Load().s.(*Hash).ring.Load().points); got != want {
		t.Fatalf("weights 1:1:2 make %d points, 10:10:20 %d", got, want)
	}
}

// TestMethodSwitchWhilePicking: a pool's method replaced while the loops
// pick (the race detector watches the nodes' round-robin state, which the
// old and the new policy share).
func TestMethodSwitchWhilePicking(t *testing.T) {
	p := weighted(t, MethodRoundRobin, "10.0.0.1 weight=2", "10.0.0.2")
	defer meanwhile(func() { p.Pick(NoKey, nil) })() // a second loop, picking
	for i := range 3000 {
		if i%10 == 0 {
			if err := p.SetMethod([]string{MethodRoundRobin, MethodHash}[i/10%2]); err != nil {
				t.Fatal(err)
			}
		}
		if p.Pick(NoKey, nil) == nil {
			t.Fatal("picked nothing")
		}
	}
}
