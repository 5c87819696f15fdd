package pool

import (
	"slices"
	"strconv"
	"sync/atomic"
)

// MethodHash picks by a key of the request (the pool's HashKey: the
// client's address, the URI, a header or a cookie) on a consistent-hash
// ring, with bounded loads; a request without the key goes round robin.
const MethodHash = "hash"

func hashMethod() Method {
	return Method{Name: MethodHash, New: func() Selector { return &Hash{} }}
}

// DefaultBalanceFactor is hash's bounded-load factor in percent: no node
// takes more than 125% of its share of the requests in flight (Google's
// "consistent hashing with bounded loads"; HAProxy's hash-balance-factor,
// which defaults to off, where plb defaults to on: one hot key must not
// take a node down).
const DefaultBalanceFactor = 125

// pointsPerWeight is how many points a node has on the ring per unit of
// weight. With 100, a node's share of the keys is within about a tenth of
// its due, and adding a fifth node to four moves about a fifth of the
// keys, all to it; 100 points of 16 bytes per unit of weight (weights
// reduced by their common divisor) keep a ring of a few dozen nodes in a
// few tens of KiB.
const pointsPerWeight = 100

// Hash is consistent hashing on a ring (Karger's, as ketama and HAProxy's
// hash-type consistent), chosen over Maglev because a ring gives the next
// node for free, which bounded loads need: a key's node is the owner of
// the first point at or after the key's hash; when that node already has
// more than its bounded share of the requests in flight, the key goes on
// to the next point's node. Adding or removing one node of N moves about
// 1/N of the keys, and only to or from that node. The ring is rebuilt
// when the nodes or their weights change (NodesWatcher) and read without
// a lock.
type Hash struct {
	ring atomic.Pointer[hashRing]
	rr   RoundRobin // for requests without the key
	// factor is the pool's bounded-load factor (Pool.SetBalanceFactor);
	// nil in a Hash not installed in a pool: DefaultBalanceFactor.
	factor *atomic.Int32
}

// hashRing is the ring of one node list: the points in order of hash.
type hashRing struct {
	points  []hashPoint
	nodes   []*Node // the list it was built from
	weights []int   // their weights then, reduced by their common divisor
}

type hashPoint struct {
	hash uint64
	node *Node
}

var (
	_ Selector     = (*Hash)(nil)
	_ NodesWatcher = (*Hash)(nil)
)

// NodesChanged implements NodesWatcher: a new ring for nodes, each with
// pointsPerWeight points per unit of weight (none when drained), the
// weights reduced by their common divisor (weights 256 and 256 make the
// ring of 1 and 1). The same nodes with the same weights (an Apply
// publishing the pool's list again) keep the ring's points: nothing is
// rebuilt, and no key moves.
func (h *Hash) NodesChanged(nodes []*Node) {
	weights := make([]int, len(nodes))
	g := 0
	for i, n := range nodes {
		weights[i] = n.Weight()
		g = gcd(g, weights[i])
	}
	for i := range weights {
		if g > 1 {
			weights[i] /= g
		}
	}
	if old := h.ring.Load(); old != nil && slices.Equal(old.nodes, nodes) && slices.Equal(old.weights, weights) {
		h.ring.Store(&hashRing{points: old.points, nodes: nodes, weights: weights})
		return
	}
	r := &hashRing{nodes: nodes, weights: weights}
	var name []byte
	for j, n := range nodes {
		for i := range weights[j] * pointsPerWeight {
			name = strconv.AppendInt(append(append(name[:0], n.Name...), '#'), int64(i), 10)
			r.points = append(r.points, hashPoint{HashBytes(name).mix(), n})
		}
	}
	slices.SortFunc(r.points, func(a, b hashPoint) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return 0
	})
	h.ring.Store(r)
}

// gcd is the greatest common divisor of a and b (gcd(0, b) = b).
func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Select implements Selector: the node of key on the ring that is usable
// and within its bounded load, else the first usable one met; nil when no
// node is usable. Round robin for NoKey, and for the moment between a
// node list's publication and its ring when the list holds other nodes
// (a Select picks only from the list it is given: the ring's list must be
// the same, or hold the same nodes in the same order).
func (h *Hash) Select(nodes []*Node, key Key, skip func(*Node) bool) *Node {
	r := h.ring.Load()
	if key == NoKey || r == nil || len(r.points) == 0 || !sameList(r.nodes, nodes) && !slices.Equal(r.nodes, nodes) {
		return h.rr.Select(nodes, key, skip)
	}
	factor := int64(DefaultBalanceFactor)
	if h.factor != nil {
		factor = int64(h.factor.Load())
	}
	// The requests in flight and the weight of the usable nodes; none
	// usable, nothing to walk the ring for.
	var load, weight int64
	for _, n := range nodes {
		if usable(n, skip) {
			load += n.Active.Load()
			weight += n.Share()
		}
	}
	if weight == 0 {
		return nil
	}
	k := key.mix()
	i, _ := slices.BinarySearchFunc(r.points, k, func(p hashPoint, k uint64) int {
		switch {
		case p.hash < k:
			return -1
		case p.hash > k:
			return 1
		}
		return 0
	})
	var first *Node
	for j := range r.points {
		n := r.points[(i+j)%len(r.points)].node
		if !usable(n, skip) {
			continue
		}
		if first == nil {
			first = n
		}
		if ramped(n, k) && (factor <= 0 || withinBound(n, load, weight, factor)) {
			return n
		}
	}
	return first
}

// ramped reports whether the key whose mixed hash is k may go to n now:
// always, unless n is in a slow start, when it takes the keys whose hash
// falls in the part of its full share it has reached. A key's place is
// fixed, so as the share grows its keys come back in turn and none goes
// back and forth.
func ramped(n *Node, k uint64) bool {
	full := uint64(n.Weight()) * ShareScale
	share := uint64(n.Share())
	return share >= full || k%full < share
}

// withinBound reports whether one more request on n keeps it within its
// bounded share: at most ceil(factor% × (load+1) × its weight ÷ weight)
// requests in flight, load and weight being the usable nodes' totals as
// Select found them (weight > 0; a node come up since is within bound).
func withinBound(n *Node, load, weight, factor int64) bool {
	if weight <= 0 {
		return true
	}
	num := factor * (load + 1) * n.Share()
	den := 100 * weight
	return n.Active.Load()+1 <= (num+den-1)/den
}

// sameList reports whether a and b are the same node list (the same
// snapshot of a pool).
func sameList(a, b []*Node) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// HashBytes is the Key of b (64-bit FNV-1a), never NoKey. It allocates
// nothing.
func HashBytes(b []byte) Key {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, c := range b {
		h ^= uint64(c)
		h *= prime
	}
	if h == uint64(NoKey) {
		h = 1
	}
	return Key(h)
}

// mix spreads a key over the ring (the finalizer of SplitMix64): FNV's
// high bits move little between similar inputs ("10.0.0.1#1", "#2").
func (k Key) mix() uint64 {
	x := uint64(k)
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
