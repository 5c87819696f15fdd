package pool

import "sync/atomic"

// MethodRoundRobin picks the nodes in turn.
const MethodRoundRobin = "round_robin"

func roundRobinMethod() Method {
	return Method{Name: MethodRoundRobin, Aliases: []string{"roundrobin"},
		New: func() Selector { return &RoundRobin{} }}
}

// RoundRobin cycles through usable nodes. Its counter runs on across
// node list changes, so it needs no NodesWatcher.
type RoundRobin struct{ next atomic.Uint64 }

var _ Selector = (*RoundRobin)(nil)

// Select implements Selector; key is not used.
func (r *RoundRobin) Select(nodes []*Node, _ Key, skip func(*Node) bool) *Node {
	if len(nodes) == 0 {
		return nil
	}
	start := r.next.Add(1) - 1
	for i := range nodes {
		if n := nodes[(start+uint64(i))%uint64(len(nodes))]; usable(n, skip) {
			return n
		}
	}
	return nil
}
