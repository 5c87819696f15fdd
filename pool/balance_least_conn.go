package pool

import "math/rand/v2"

// MethodLeastConn picks the node with the fewest requests in flight.
const MethodLeastConn = "least_conn"

func leastConnMethod() Method {
	return Method{Name: MethodLeastConn, Aliases: []string{"leastconn"},
		New: func() Selector { return LeastConn{} }}
}

// LeastConn picks the usable node with the fewest requests in flight,
// breaking ties at random. It scans the nodes' Active counters, which the
// proxy and the relay keep (see NodesWatcher for why these are not events
// yet): a scan of a pool's few nodes costs less than keeping a heap in
// order on every request's start and end.
type LeastConn struct{}

var _ Selector = LeastConn{}

// Select implements Selector; key is not used.
func (LeastConn) Select(nodes []*Node, _ Key, skip func(*Node) bool) *Node {
	var best *Node
	var bestN int64
	ties := 0
	for _, n := range nodes {
		if !usable(n, skip) {
			continue
		}
		a := n.Active.Load()
		switch {
		case best == nil || a < bestN:
			best, bestN, ties = n, a, 1
		case a == bestN:
			ties++
			if rand.IntN(ties) == 0 {
				best = n
			}
		}
	}
	return best
}
