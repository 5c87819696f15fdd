// Package pool holds backend pools: their nodes, per-node statistics and
// health state, and the balance methods that pick a node (balance.go, one
// file per method). A pool's node list is an immutable snapshot swapped
// atomically, so event loops read it without locks while the console or a
// nodefile watcher replaces it.
package pool

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Node is one backend address with its statistics. Counters are safe from
// any goroutine.
type Node struct {
	// Name is the address as configured ("ip:port").
	Name string
	// Addr is the parsed address.
	Addr netip.AddrPort

	Attempts, Connects, Verifies, Requests atomic.Int64
	Failures                               atomic.Int64 // connect/response failures, total
	LastAttempt, LastConnect, LastResponse atomic.Int64 // unix seconds
	Active                                 atomic.Int64 // requests in flight: Pool.Take and Release
	weight                                 atomic.Int32 // Weight
	backup                                 atomic.Bool  // Backup
	token                                  Token        // Token: fixed by Name
	// rrCurrent is round_robin's current weight (nginx's current_weight),
	// read and written under the pool's RoundRobin lock only.
	rrCurrent int64
	// slow is the pool's slow start (nil: none); rampStart when the node's
	// ramp began (unix ns; 0: none): see Share.
	slow          atomic.Pointer[slowStart]
	rampStart     atomic.Int64
	noVerifyUntil atomic.Int64 // unix nanos
	noReuseUntil  atomic.Int64 // unix nanos
	down          atomic.Bool
	consecutive   atomic.Int64
	transitions   atomic.Int64
	// suspectRun counts request failures in a row (Suspect); suspect is
	// set when they reached the limit, until a probe decides.
	suspectRun atomic.Int64
	suspect    atomic.Bool

	mu    sync.Mutex
	codes [500]uint16 // last 500 response codes, a ring
	ncode int
	last  Transition
	// suspectWhy is why the node became suspect (guarded by mu).
	suspectWhy string
}

// MaxWeight is the largest node weight (HAProxy's range, 0 to 256: enough
// for any ratio of machines a pool holds, and a product with a request
// count stays far from overflowing).
const MaxWeight = 256

// ParseNode parses "ip[:port]" (port default 80; IPv6 as "[::1]:80"),
// optionally followed by " weight=N" (0 to MaxWeight, default 1) and
// " backup" (a node used only when no other can take a request: SRV's
// lower priorities, HAProxy's backup servers).
func ParseNode(s string) (*Node, error) {
	s = strings.TrimSpace(s)
	weight, backup := 1, false
	if addr, rest, ok := strings.Cut(s, " "); ok {
		seenW := false
		for _, f := range strings.Fields(rest) {
			if f == "backup" && !backup {
				backup = true
				continue
			}
			v, found := strings.CutPrefix(f, "weight=")
			n, err := strconv.Atoi(v)
			if seenW || !found || err != nil || n < 0 || n > MaxWeight {
				return nil, fmt.Errorf("pool: bad node %q (ip:port, optionally weight=0 to %d and backup)", s, MaxWeight)
			}
			weight, seenW = n, true
		}
		s = addr
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		a, aerr := netip.ParseAddr(strings.Trim(s, "[]"))
		if aerr != nil {
			return nil, fmt.Errorf("pool: bad node address %q", s)
		}
		ap = netip.AddrPortFrom(a, 80)
	}
	n := &Node{Name: ap.String(), Addr: ap}
	n.token = tokenOf(n.Name)
	n.weight.Store(int32(weight))
	n.backup.Store(backup)
	return n, nil
}

// Backup reports whether the node is a backup: picked only when no other
// node can take the request.
func (n *Node) Backup() bool { return n.backup.Load() }

// Available reports whether the node may take a new request: up and not
// drained (weight 0). Balance methods pick only such nodes; a caller
// holding a node it picked earlier asks again before using it. Safe from
// any goroutine.
func (n *Node) Available() bool { return !n.Down() && n.weight.Load() > 0 }

// Weight is the node's share of new requests relative to the others' (1
// unless the pool's configuration says otherwise); 0 drains it: no new
// requests, those in flight finish. Safe from any goroutine.
func (n *Node) Weight() int { return int(n.weight.Load()) }

// ShareScale is Share's unit: a node's full share is its weight times
// ShareScale, so that a ramp (slow start) moves in steps of 1/ShareScale
// of a weight.
const ShareScale = 64

// slowStart is a pool's slow_start: the ramp's length and the clock.
type slowStart struct {
	d   time.Duration
	now func() time.Time
}

// Share is the node's share of new requests now, in 1/ShareScale of a
// weight: Weight()*ShareScale, except during a slow start (a node come
// back up, added, or given a higher weight, in a pool with slow_start),
// when it grows from 1 to that over the pool's slow_start. Balance
// methods weigh nodes by Share. Safe from any goroutine; it reads the
// clock only during a ramp.
func (n *Node) Share() int64 {
	w := int64(n.Weight()) * ShareScale
	rs := n.rampStart.Load()
	if rs == 0 || w == 0 {
		return w
	}
	s := n.slow.Load()
	if s == nil {
		return w
	}
	el := s.now().UnixNano() - rs
	if el >= int64(s.d) || el < 0 {
		n.rampStart.CompareAndSwap(rs, 0) // done
		return w
	}
	return max(1, w*el/int64(s.d))
}

// ramp starts the node's slow start at now (its pool's clock when now is
// zero), when its pool has one.
func (n *Node) ramp(now time.Time) {
	s := n.slow.Load()
	if s == nil {
		return
	}
	if now.IsZero() {
		now = s.now()
	}
	n.rampStart.Store(now.UnixNano())
}

// Spec is the node as configuration writes it: its Name, with
// " weight=N" when the weight is not 1, and " backup" for a backup.
func (n *Node) Spec() string { return NodeSpec(n.Name, n.Weight(), n.Backup()) }

// NodeSpec is a node as configuration writes it (ParseNode reads it):
// name, then " weight=N" when N is not 1, then " backup".
func NodeSpec(name string, weight int, backup bool) string {
	if weight != 1 {
		name += " weight=" + strconv.Itoa(weight)
	}
	if backup {
		name += " backup"
	}
	return name
}

// RecordResponse counts a response status from this node.
func (n *Node) RecordResponse(code int, now time.Time) {
	n.Requests.Add(1)
	n.LastResponse.Store(now.Unix())
	n.mu.Lock()
	n.codes[n.ncode%len(n.codes)] = uint16(code)
	n.ncode++
	n.mu.Unlock()
}

// ResponseCodes returns counts of the last 500 response codes.
func (n *Node) ResponseCodes() map[int]int {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := make(map[int]int)
	k := min(n.ncode, len(n.codes))
	for i := 0; i < k; i++ {
		m[int(n.codes[i])]++
	}
	return m
}

// NoVerify reports whether verify_backend is suspended for this node.
func (n *Node) NoVerify(now time.Time) bool { return now.UnixNano() < n.noVerifyUntil.Load() }

// NoVerifyLeft returns how long verification stays suspended.
func (n *Node) NoVerifyLeft(now time.Time) time.Duration {
	return time.Duration(n.noVerifyUntil.Load() - now.UnixNano())
}

// SetNoVerify suspends verify_backend for d (Perlbal: 60s after a failure).
func (n *Node) SetNoVerify(now time.Time, d time.Duration) {
	n.noVerifyUntil.Store(now.Add(d).UnixNano())
}

// SuspendReuse stops the reuse of the node's connections until now+d (a
// node that sent bytes nobody asked for: its kept-alive connections could
// hand them to the next client) and reports whether reuse was on until
// now, so that one caller logs it. Safe from any goroutine.
func (n *Node) SuspendReuse(now time.Time, d time.Duration) bool {
	was := n.noReuseUntil.Swap(now.Add(d).UnixNano())
	return was < now.UnixNano()
}

// ReuseSuspended reports whether the node's connections are not to be
// reused (SuspendReuse). Safe from any goroutine.
func (n *Node) ReuseSuspended(now time.Time) bool { return now.UnixNano() < n.noReuseUntil.Load() }

// Down reports whether the node is marked down. Safe from any goroutine.
func (n *Node) Down() bool { return n.down.Load() }

// Transition is a node's last change between up and down.
type Transition struct {
	Down   bool      // the state it went to
	Reason string    // why, for logs, the console and metrics
	At     time.Time // when
}

// LastTransition returns the node's last health change; its At is zero
// while the node has stayed up since it was added. Safe from any goroutine.
func (n *Node) LastTransition() Transition {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.last
}

// Transitions returns how many times the node went down or up. Safe from
// any goroutine.
func (n *Node) Transitions() int64 { return n.transitions.Load() }

// MarkDown marks the node down for reason and reports whether it was up,
// so that exactly one caller logs each transition. Safe from any goroutine.
func (n *Node) MarkDown(reason string, now time.Time) bool { return n.mark(true, reason, now) }

// MarkUp marks the node up for reason and reports whether it was down; the
// consecutive failure count starts over. Safe from any goroutine.
func (n *Node) MarkUp(reason string, now time.Time) bool { return n.mark(false, reason, now) }

func (n *Node) mark(down bool, reason string, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.down.Load() == down {
		return false
	}
	if !down {
		n.consecutive.Store(0)
	}
	n.suspect.Store(false)
	n.suspectWhy = ""
	n.suspectRun.Store(0)
	n.down.Store(down)
	if !down {
		n.ramp(now) // back up: slow start
	}
	n.last = Transition{Down: down, Reason: reason, At: now}
	n.transitions.Add(1)
	return true
}

// SetDown marks the node down or up without a reason (tests, tools) and
// reports whether that changed it.
func (n *Node) SetDown(down bool) bool {
	if down {
		return n.MarkDown("set down", time.Time{})
	}
	return n.MarkUp("set up", time.Time{})
}

// ConsecutiveFailures returns the current run of failures on real traffic.
// Safe from any goroutine.
func (n *Node) ConsecutiveFailures() int64 { return n.consecutive.Load() }

// Fail counts one failure on real traffic and reports whether the node just
// reached retry consecutive failures while up (retry <= 0 never marks it
// down); the caller then marks it down with MarkDown.
func (n *Node) Fail(retry int) bool {
	n.Failures.Add(1)
	c := n.consecutive.Add(1)
	return retry > 0 && c >= int64(retry) && !n.down.Load()
}

// Succeed resets the consecutive failure counts: a good response arrived.
func (n *Node) Succeed() {
	if n.consecutive.Load() != 0 {
		n.consecutive.Store(0)
	}
	if n.suspectRun.Load() != 0 {
		n.suspectRun.Store(0)
	}
}

// FailRequest counts one failure of a request on a node that took it (a
// reset, a timeout or a broken reply after the request was sent). Such a
// failure may be the request's own doing, so it never marks the node
// down: it reports whether the node just reached retry of them in a row,
// and the caller then makes it suspect (MarkSuspect) for a probe to
// decide. Safe from any goroutine.
func (n *Node) FailRequest(retry int) bool {
	n.Failures.Add(1)
	c := n.suspectRun.Add(1)
	return retry > 0 && c >= int64(retry) && !n.down.Load() && !n.suspect.Load()
}

// MarkSuspect asks for a probe to confirm passive evidence against the
// node (it stays up meanwhile) and reports whether it was not suspect
// yet. Safe from any goroutine.
func (n *Node) MarkSuspect(reason string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.suspect.Load() || n.down.Load() {
		return false
	}
	n.suspectWhy = reason
	n.suspect.Store(true)
	return true
}

// Suspect reports whether the node waits for a probe to confirm passive
// evidence against it, and why. Safe from any goroutine.
func (n *Node) Suspect() (bool, string) {
	if !n.suspect.Load() {
		return false, ""
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.suspect.Load(), n.suspectWhy
}

// ClearSuspect ends a suspicion (the probe found the node well, or it
// went down): the counts of failures in a row start over. Safe from any
// goroutine.
func (n *Node) ClearSuspect() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.suspect.Store(false)
	n.suspectWhy = ""
	n.suspectRun.Store(0)
	n.consecutive.Store(0)
}

// Pool is a named set of nodes with a balancing policy.
type Pool struct {
	Name  string
	nodes atomic.Pointer[[]*Node]
	// byToken indexes the nodes by Token (ByToken, Holds), published
	// right after nodes.
	byToken  atomic.Pointer[map[Token]*Node]
	selector atomic.Pointer[selectorBox]
	// hasBackup: a node is a backup (Pick then tries the others first).
	hasBackup atomic.Bool
	mu        sync.Mutex // serializes writers
	// factor is hash's bounded-load factor in percent (0: unbounded).
	factor atomic.Int32
	// hashKey is what of a request hash picks by (nil: none).
	hashKey atomic.Pointer[HashKey]
	// rrMu guards the nodes' round-robin state (Node.rrCurrent) for every
	// policy the pool has had: one replaced may still be picking.
	rrMu sync.Mutex
	// slow is the pool's slow start (nil: none), given to its nodes.
	slow atomic.Pointer[slowStart]
	// populated: SetNodes has run; nodes it adds from then on ramp.
	populated bool
}

type selectorBox struct {
	name  string
	s     Selector
	conns ConnsWatcher // s, when it watches takes and releases
	// reuseFirst: idle_first, where a request takes an idle connection to
	// any node before the selector picks a node for a new one.
	reuseFirst bool
}

// New creates an empty pool using method, a name of the balance method
// table (Methods; "" is the default, idle_first).
func New(name, method string) (*Pool, error) {
	p := &Pool{Name: name}
	p.factor.Store(DefaultBalanceFactor)
	empty := []*Node{}
	p.nodes.Store(&empty)
	if err := p.SetMethod(method); err != nil {
		return nil, err
	}
	return p, nil
}

// SetMethod switches the balancing policy to a new instance of method
// (Methods), told the current nodes. Safe from any goroutine.
func (p *Pool) SetMethod(method string) error {
	m, ok := LookupMethod(method)
	if !ok {
		return errUnknownMethod()
	}
	if method == "" {
		method = m.Name
	}
	p.install(method, m)
	return nil
}

// install makes a new instance of m the pool's policy, under the name
// name (the spelling asked for), after telling it the current nodes.
func (p *Pool) install(name string, m Method) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := m.New()
	switch s := s.(type) {
	case *RoundRobin:
		s.mu = &p.rrMu
	case *Hash:
		s.factor, s.rr.mu = &p.factor, &p.rrMu
	}
	if w, ok := s.(NodesWatcher); ok {
		w.NodesChanged(p.Nodes())
	}
	conns, _ := s.(ConnsWatcher)
	p.selector.Store(&selectorBox{name: name, s: s, conns: conns, reuseFirst: m.ReuseFirst})
}

// SetBalanceFactor sets hash's bounded-load factor in percent: no node
// takes more than factor% of its share of the requests in flight (0:
// unbounded; DefaultBalanceFactor unless set). Safe from any goroutine.
func (p *Pool) SetBalanceFactor(factor int) { p.factor.Store(int32(factor)) }

// SetSlowStart makes a node that comes back up, is added after the first
// SetNodes, or gets a higher weight take its share gradually over d
// (HAProxy's slowstart; 0: at once), reading time from now. Safe from any
// goroutine.
func (p *Pool) SetSlowStart(d time.Duration, now func() time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var s *slowStart
	if d > 0 {
		s = &slowStart{d: d, now: now}
	}
	p.slow.Store(s)
	for _, n := range p.Nodes() {
		n.slow.Store(s)
	}
}

// SetHashKey sets what of a request hash picks by. Safe from any
// goroutine.
func (p *Pool) SetHashKey(k HashKey) { p.hashKey.Store(&k) }

// HashKey returns what of a request the pool's method picks by: none
// unless the method is hash. Safe from any goroutine.
func (p *Pool) HashKey() HashKey {
	if p.selector.Load().name != MethodHash {
		return HashKey{}
	}
	if k := p.hashKey.Load(); k != nil {
		return *k
	}
	return HashKey{}
}

// Method returns the policy name.
func (p *Pool) Method() string { return p.selector.Load().name }

// ReuseFirst reports whether a request takes an idle connection to any
// node before a node is picked (idle_first, Perlbal's way: "whichever
// backend is free first"); with every other method the node is picked
// first and only an idle connection to it is reused. Safe from any
// goroutine.
func (p *Pool) ReuseFirst() bool { return p.selector.Load().reuseFirst }

// Pick chooses, for a request with key (NoKey when the caller has none),
// a node that is up and not rejected by skip (nil skips nothing). It
// returns nil when none is left. Safe from any goroutine; it allocates
// nothing.
func (p *Pool) Pick(key Key, skip func(*Node) bool) *Node {
	s, nodes := p.selector.Load().s, p.Nodes()
	if !p.hasBackup.Load() {
		return s.Select(nodes, key, skip)
	}
	// The other nodes first; the backups only when none of them can take
	// the request (down, drained, or already tried for it).
	if n := s.Select(nodes, key, func(n *Node) bool { return n.Backup() || skip != nil && skip(n) }); n != nil {
		return n
	}
	return s.Select(nodes, key, func(n *Node) bool { return !n.Backup() || skip != nil && skip(n) })
}

// Take counts a request (or relayed session) starting on n, a node p
// picked, in n.Active, and tells the policy (ConnsWatcher). Safe from any
// goroutine; it allocates nothing.
func (p *Pool) Take(n *Node) {
	a := n.Active.Add(1)
	if w := p.selector.Load().conns; w != nil {
		w.Took(n, a)
	}
}

// Release ends what Take started on n, once per Take.
func (p *Pool) Release(n *Node) {
	a := n.Active.Add(-1)
	if w := p.selector.Load().conns; w != nil {
		w.Released(n, a)
	}
}

// Nodes returns the current snapshot; do not modify it. Safe from any
// goroutine.
func (p *Pool) Nodes() []*Node { return *p.nodes.Load() }

// SetNodes replaces the node list, keeping the Node (and its statistics and
// health) of every address that stays; its weight becomes the one addrs
// gives it (ParseNode). Safe from any goroutine.
func (p *Pool) SetNodes(addrs []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := map[string]*Node{}
	for _, n := range p.Nodes() {
		old[n.Name] = n
	}
	next := make([]*Node, 0, len(addrs))
	seen := map[string]bool{}
	for _, a := range addrs {
		n, err := ParseNode(a)
		if err != nil {
			return err
		}
		if seen[n.Name] {
			continue
		}
		seen[n.Name] = true
		if o := old[n.Name]; o != nil {
			switch w, was := n.weight.Load(), o.weight.Load(); {
			case w > was:
				o.weight.Store(w)
				o.ramp(time.Time{}) // a higher weight: slow start to it
			case w < was:
				o.weight.Store(w)
				o.rampStart.Store(0) // a lower one: at once
			}
			o.backup.Store(n.Backup())
			n = o
		} else {
			n.slow.Store(p.slow.Load())
			if p.populated {
				n.ramp(time.Time{}) // added: slow start
			}
		}
		next = append(next, n)
	}
	p.nodes.Store(&next)
	backups := false
	for _, n := range next {
		backups = backups || n.Backup()
	}
	p.hasBackup.Store(backups)
	index := make(map[Token]*Node, len(next))
	for _, n := range next {
		index[n.token] = n
	}
	p.byToken.Store(&index)
	p.populated = true
	// The policy learns of the change after the list is published: a
	// Select running meanwhile may see nodes it was not told of yet, and
	// always picks from the list it is given.
	if w, ok := p.selector.Load().s.(NodesWatcher); ok {
		w.NodesChanged(next)
	}
	return nil
}

// Add appends a node (Perlbal's POOL ADD; addr may carry " weight=N"); a
// node of the same address moves to the end with the new weight, keeping
// its statistics and health.
func (p *Pool) Add(addr string) error {
	n, err := ParseNode(addr)
	if err != nil {
		return err
	}
	return p.SetNodes(append(p.specsBut(n.Name), n.Spec()))
}

// Remove drops a node if present (Perlbal's POOL REMOVE; absent is fine).
func (p *Pool) Remove(addr string) error {
	n, err := ParseNode(addr)
	if err != nil {
		return err
	}
	return p.SetNodes(p.specsBut(n.Name))
}

// specsBut returns the nodes' specs (Node.Spec), but for the node named
// name.
func (p *Pool) specsBut(name string) []string {
	var s []string
	for _, n := range p.Nodes() {
		if n.Name != name {
			s = append(s, n.Spec())
		}
	}
	return s
}

// FormatNode formats an address the way Perlbal prints nodes.
func FormatNode(ap netip.AddrPort) string {
	if ap.Addr().Is4() {
		return ap.Addr().String() + ":" + strconv.Itoa(int(ap.Port()))
	}
	return ap.String()
}
