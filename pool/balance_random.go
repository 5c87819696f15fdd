package pool

import "math/rand/v2"

// MethodRandom picks the node at random (Perlbal's only method, for the
// node of a new connection).
const MethodRandom = "random"

func randomMethod() Method {
	return Method{Name: MethodRandom, New: func() Selector { return Random{} }}
}

// Random picks uniformly among usable nodes.
type Random struct{}

var _ Selector = Random{}

// Select implements Selector; key is not used.
func (Random) Select(nodes []*Node, _ Key, skip func(*Node) bool) *Node {
	if len(nodes) == 0 {
		return nil
	}
	start := rand.IntN(len(nodes))
	for i := range nodes {
		if n := nodes[(start+i)%len(nodes)]; usable(n, skip) {
			return n
		}
	}
	return nil
}
