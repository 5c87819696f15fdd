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
// burst. Equal weights are plain turns. The current values are kept per
// node (NodesWatcher forgets the nodes that go) under a lock: the loops
// pick concurrently. The zero value is ready.
type RoundRobin struct {
	mu      sync.Mutex
	current map[*Node]int64
}

var (
	_ Selector     = (*RoundRobin)(nil)
	_ NodesWatcher = (*RoundRobin)(nil)
)

// Select implements Selector; key is not used. It allocates nothing once
// the pool's nodes were told (NodesChanged).
func (r *RoundRobin) Select(nodes []*Node, _ Key, skip func(*Node) bool) *Node {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.current == nil {
		r.current = make(map[*Node]int64, len(nodes))
	}
	var best *Node
	var bestCur, total int64
	for _, n := range nodes {
		if !usable(n, skip) {
			continue
		}
		w := int64(n.Weight())
		c := r.current[n] + w
		r.current[n] = c
		total += w
		if best == nil || c > bestCur {
			best, bestCur = n, c
		}
	}
	if best != nil {
		r.current[best] = bestCur - total
	}
	return best
}

// NodesChanged implements NodesWatcher: the nodes that went are
// forgotten, those that came start from zero.
func (r *RoundRobin) NodesChanged(nodes []*Node) {
	r.mu.Lock()
	defer r.mu.Unlock()
	keep := make(map[*Node]int64, len(nodes))
	for _, n := range nodes {
		keep[n] = r.current[n]
	}
	r.current = keep
}
