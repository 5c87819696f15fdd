package pool

import "sync"

// MethodRoundRobin picks the nodes in turn, each as often as its weight.
const MethodRoundRobin = "round_robin"

func roundRobinMethod() Method {
	return Method{Name: MethodRoundRobin, Aliases: []string{"roundrobin"},
		New: func() Selector { return &RoundRobin{} }}
}

// RoundRobin is nginx's smooth weighted round robin: each pick adds every
// usable node's weight to its current value, takes the node with the
// highest and takes the total off it. Weights 5:1:1 give a a b a c a a,
// not a a a a a b c: a heavy node gets its share spread out, never in a
// burst. Equal weights are plain turns. As nginx keeps current_weight in
// its peer, the current value is the node's (Node.rrCurrent), read and
// written under the pool's round-robin lock only (Pool.install gives it;
// a policy replaced while it still picks shares it with the new one): the
// loops pick concurrently. A node added starts from zero; one that stays
// keeps its value. The zero value is ready, with a lock of its own.
type RoundRobin struct {
	mu  *sync.Mutex // the pool's (nil: own)
	own sync.Mutex
}

// lock returns the lock guarding the nodes' current values.
func (r *RoundRobin) lock() *sync.Mutex {
	if r.mu != nil {
		return r.mu
	}
	return &r.own
}

var _ Selector = (*RoundRobin)(nil)

// Select implements Selector; key is not used.
func (r *RoundRobin) Select(nodes []*Node, _ Key, skip func(*Node) bool) *Node {
	mu := r.lock()
	mu.Lock()
	defer mu.Unlock()
	var best *Node
	var total int64
	for _, n := range nodes {
		if !usable(n, skip) {
			continue
		}
		w := n.Share()
		n.rrCurrent += w
		total += w
		if best == nil || n.rrCurrent > best.rrCurrent {
			best = n
		}
	}
	if best != nil {
		best.rrCurrent -= total
	}
	return best
}
