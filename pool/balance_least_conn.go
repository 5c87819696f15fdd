package pool

import "math/rand/v2"

// MethodLeastConn picks the node with the fewest requests in flight for
// its weight.
const MethodLeastConn = "least_conn"

func leastConnMethod() Method {
	return Method{Name: MethodLeastConn, Aliases: []string{"leastconn"},
		New: func() Selector { return LeastConn{} }}
}

// LeastConn picks the usable node with the fewest requests in flight per
// unit of weight (HAProxy's weighted leastconn: a node of weight 3 carries
// three times the requests of one of weight 1), breaking ties at random
// in proportion to the weights, so that requests that never overlap (all
// nodes idle, a tie every time) still share 3:1. It scans the nodes'
// Active counters, which Pool.Take and Release keep: a scan of a pool's
// few nodes costs less than keeping a heap in order on every request's
// start and end (BenchmarkPick).
type LeastConn struct{}

var _ Selector = LeastConn{}

// Select implements Selector; key is not used.
func (LeastConn) Select(nodes []*Node, _ Key, skip func(*Node) bool) *Node {
	var best *Node
	var bestN, bestW, tied int64
	for _, n := range nodes {
		if !usable(n, skip) {
			continue
		}
		// a/w < bestN/bestW without dividing.
		a, w := n.Active.Load(), n.Share()
		switch l, r := a*bestW, bestN*w; {
		case best == nil || l < r:
			best, bestN, bestW, tied = n, a, w, w
		case l == r:
			// Weighted reservoir: each tied node kept with a chance of
			// its weight over the tied weight so far.
			tied += w
			if rand.Int64N(tied) < w {
				best, bestN, bestW = n, a, w
			}
		}
	}
	return best
}
