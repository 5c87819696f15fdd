package pool

import "math/rand/v2"

// MethodRandom picks the node at random (Perlbal's only method, for the
// node of a new connection), in proportion to the nodes' weights.
const MethodRandom = "random"

func randomMethod() Method {
	return Method{Name: MethodRandom, New: func() Selector { return Random{} }}
}

// Random picks among usable nodes at random, each with a chance in
// proportion to its weight.
type Random struct{}

var _ Selector = Random{}

// Select implements Selector; key is not used. Two passes over the nodes:
// the usable weight, then the node a random point of it falls on.
func (Random) Select(nodes []*Node, _ Key, skip func(*Node) bool) *Node {
	var total int64
	for _, n := range nodes {
		if usable(n, skip) {
			total += n.Share()
		}
	}
	if total == 0 {
		return nil
	}
	r := rand.Int64N(total)
	var last *Node
	for _, n := range nodes {
		if !usable(n, skip) {
			continue
		}
		if r -= n.Share(); r < 0 {
			return n
		}
		last = n
	}
	return last // a node went down or lighter meanwhile: the last usable one
}
