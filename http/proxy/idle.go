package proxy

import (
	"time"

	"github.com/plb/plb/engine"
	"github.com/plb/plb/pool"
)

// Idle backend connections (DESIGN.md, "Backend connections: the rules").
//
// Node first, then the connection: the balance method picks the node for
// every request, and an idle connection to that node is reused if there
// is one, else one is dialed. Each loop keeps its own idle connections, by
// node, the most recently used reused first (so that a shrinking load
// leaves the oldest to time out). idle_first, the default, is Perlbal's
// "whichever backend is free first", kept fair: it takes the idle
// connection that was used last, to any node not much busier than the
// least busy one (connectBackend), before the least busy node gets a new
// one.
//
// A connection is reused only after a clean exchange (backend.go decides
// whether it may go back) and only if nothing arrived on it since:
// engine.Conn.Quiet asks the socket itself (one recv with MSG_PEEK per
// reuse), since a body on a HEAD, 204 or 304, or bytes past a
// Content-Length, may come in a segment of their own, after the poll that
// saw the response; an idle connection that receives anything is closed
// at once. After a response that has no body by rule (HEAD, 204, 304)
// the connection also cools for coolDown before it is reused (at the
// bottom of its list meanwhile): a body sent anyway, written a moment
// later or held by Nagle until plb's ACK (sent at once, backend.cooling),
// lands in that time. Bytes still on their way when the next request is
// written are beyond what any proxy can tell from a reply.
//
// How many are kept follows the load: each loop notes the most connections
// it had in use at once (the peak) in the current window of IdleWindow and
// the one before; a connection that finishes is kept while the idle ones
// do not exceed what that peak needs beyond the connections in use now,
// and at least backend_persist_cache (Perlbal's "kept on reserve while
// there are no clients") or connect_ahead. Every window the peak moves on
// and the idle connections over the new bound are closed, oldest first:
// after one to two quiet windows a loop is back to backend_persist_cache.
// Steady keep-alive load thus opens no connections, and the idle ones are
// bounded by the recent concurrency (itself bounded by the clients, and by
// max_backend_conns when set).

// IdleWindow is the period over which a loop's peak of connections in use
// is kept (HAProxy's pool-purge-delay is 5 s too).
const IdleWindow = 5 * time.Second

// coolDown is how long a connection rests after a response with no body
// by rule before it is reused: longer than a backend's write after its
// head, and than a round trip to a backend on the same network.
const coolDown = 10 * time.Millisecond

// Idle connection lifetimes.
const (
	// idleTimeout is how long an idle connection is kept when its backend
	// announced no Keep-Alive timeout.
	idleTimeout = 30 * time.Second
	// kaMargin is how much sooner than the backend's announced Keep-Alive
	// timeout plb lets an idle connection go (Perlbal: 2 s), so that the
	// backend's close does not cross a request.
	kaMargin = 2 * time.Second
)

// idlePool is a service's idle backend connections on one loop.
type idlePool struct {
	byNode map[*pool.Node][]*backend // by node, oldest first
	n      int                       // idle connections, all nodes
	// peak is the most connections in use at once in the current window
	// and in the one before.
	peak  [2]int
	sweep *engine.Timer
	seq   uint64 // numbers the connections as they become idle
}

// inUse is the number of the service's backend connections on loop l that
// are neither idle nor connect_ahead spares on their way. Runs on the
// loop.
func (s *Service) inUse(l *engine.Loop) int {
	id := l.ID()
	return s.queues[id].conns - s.idle[id].n - s.ahead[id]
}

// noteUse records the connections in use on l after one more was taken.
// Runs on the loop.
func (s *Service) noteUse(l *engine.Loop) {
	ip := &s.idle[l.ID()]
	if u := s.inUse(l); u > ip.peak[0] {
		ip.peak[0] = u
	}
}

// idleBound is how many idle connections loop l keeps while inUse are in
// use.
func (s *Service) idleBound(l *engine.Loop, st *Settings, inUse int) int {
	ip := &s.idle[l.ID()]
	need := max(ip.peak[0], ip.peak[1]) - inUse
	return max(need, st.Svc.BackendPersistCache, st.Svc.ConnectAhead, 0)
}

// takeIdle returns an idle connection to node on loop l that may carry a
// request, or nil: the most recently used one that is not cooling.
// Connections that closed, went stale or received bytes unasked are closed
// on the way. Runs on the loop.
func (s *Service) takeIdle(l *engine.Loop, st *Settings, node *pool.Node) *backend {
	ip := &s.idle[l.ID()]
	now := l.Now()
	list := ip.byNode[node]
	for i := len(list) - 1; i >= 0; i-- {
		be := list[i]
		if be.cool && now.Before(be.coolUntil) {
			break // and so are the ones below it, put there after it
		}
		copy(list[i:], list[i+1:])
		list[len(list)-1] = nil
		list = list[:len(list)-1]
		ip.byNode[node] = list
		ip.n--
		s.Bored.Add(-1)
		if be.conn.Closing() || be.pool != st.Pool || !be.node.Available() || be.node.ReuseSuspended(now) ||
			s.stale(be) || !be.quiet() {
			be.conn.Close()
			continue
		}
		return be
	}
	return nil
}

// quiet reports whether nothing arrived on the idle connection be since
// its last response (engine.Conn.Quiet); bytes there are noted against
// the node. Runs on the loop.
func (be *backend) quiet() bool {
	q, spoke := be.conn.Quiet()
	if spoke {
		be.spokeUnasked("bytes on an idle connection")
	}
	return q
}

// takeAnyIdle returns, for idle_first, the connection that became idle
// last to any node no busier for its weight than least, the least busy
// node, plus a quarter (pool.IdleFirstBusyLimit), that skip does not
// reject and that is not drained (weight 0), or nil; as takeIdle, it
// closes unusable ones on the way. Runs on the loop.
func (s *Service) takeAnyIdle(l *engine.Loop, st *Settings, least *pool.Node, skip func(*pool.Node) bool) *backend {
	ip := &s.idle[l.ID()]
	// n's requests per unit of weight at most busy per least's:
	// a(n)/w(n) <= busy/w(least), without dividing.
	busy, wl := pool.IdleFirstBusyLimit(least.Active.Load()), least.Share()
	if wl == 0 {
		return nil // least was drained since it was picked
	}
	ok := func(n *pool.Node) bool {
		w := n.Share()
		return w > 0 && n.Active.Load()*wl <= busy*w && !skip(n)
	}
	// A few rounds: each closes what it finds unusable; a node whose
	// connections all cool is left for a new connection.
	for round := 0; round < 4 && ip.n > 0; round++ {
		var last *pool.Node
		var seq uint64
		for n, list := range ip.byNode {
			if k := len(list); k > 0 && list[k-1].idleSeq >= seq && ok(n) {
				last, seq = n, list[k-1].idleSeq
			}
		}
		if last == nil {
			return nil
		}
		if be := s.takeIdle(l, st, last); be != nil {
			return be
		}
	}
	return nil
}

// putIdle keeps be for reuse, or closes it: a queued client may take it
// at once (queue.go); past the loop's bound, while draining or when stale
// it is closed. Runs on the loop.
func (s *Service) putIdle(be *backend, st *Settings) {
	l := be.conn.Loop()
	if be.cool && be.coolUntil.IsZero() {
		be.coolUntil = l.Now().Add(coolDown)
	}
	if s.handOff(be) {
		return // a queued client took it (queue.go)
	}
	ip := &s.idle[l.ID()]
	if st.Pool != be.pool || s.draining.Load() || s.stale(be) || ip.n >= s.idleBound(l, st, s.inUse(l)-1) {
		be.conn.Close()
		return
	}
	be.state = beIdle
	be.client = nil
	timeout := idleTimeout
	if be.kaTimeout > 0 {
		timeout = time.Duration(be.kaTimeout)*time.Second - kaMargin
	}
	if timeout <= 0 {
		be.conn.Close()
		return
	}
	be.conn.SetTimeout(timeout)
	be.conn.ResumeRead() // notice a close, or bytes unasked, while idle
	if ip.byNode == nil {
		ip.byNode = make(map[*pool.Node][]*backend)
	}
	list := ip.byNode[be.node]
	if be.cool {
		// At the bottom, as if idle for long: taken last, after coolDown;
		// a queued client is offered it then (handOff passed it over).
		be.idleSeq = 0
		if s.loopQueue(l).nblocked > 0 {
			uses := be.uses
			l.AfterFunc(be.coolUntil.Sub(l.Now()), func() { s.offerCooled(be, uses) })
		}
		list = append(list, nil)
		copy(list[1:], list)
		list[0] = be
	} else {
		ip.seq++
		be.idleSeq = ip.seq
		list = append(list, be)
	}
	ip.byNode[be.node] = list
	ip.n++
	s.Bored.Add(1)
	if ip.sweep == nil {
		ip.sweep = l.AfterFunc(IdleWindow, func() { s.sweepIdle(l) })
	} else if !ip.sweep.Pending() {
		ip.sweep.Reset(IdleWindow)
	}
}

// offerCooled offers a connection that finished cooling to a queued client
// (max_backend_conns), which could not take it while it cooled, unless it
// was used again meanwhile (uses is its count when the timer was set: a
// request since may have made it cool again) or closed. Runs on the loop.
func (s *Service) offerCooled(be *backend, uses int) {
	if be.state != beIdle || be.conn.Closing() || be.uses != uses || !be.cool ||
		be.conn.Loop().Now().Before(be.coolUntil) {
		return
	}
	s.dropIdle(be)
	be.cool = false
	s.putIdle(be, s.Settings())
}

// sweepIdle ends a sizing window on loop l: the peak moves on, idle
// connections that went stale are closed, and those over the new bound,
// oldest first. It runs again while there is anything left to size. Runs
// on the loop.
func (s *Service) sweepIdle(l *engine.Loop) {
	ip := &s.idle[l.ID()]
	ip.peak[1], ip.peak[0] = ip.peak[0], s.inUse(l)
	// Connections to nodes that left, and the lists of nodes without idle
	// connections (kept between sweeps: no allocation per reuse), go.
	s.DropStale(l)
	bound := s.idleBound(l, s.Settings(), s.inUse(l))
	for ip.n > bound {
		var oldest *pool.Node
		for n, list := range ip.byNode {
			if oldest == nil || len(list) > len(ip.byNode[oldest]) {
				oldest = n
			}
		}
		be := ip.byNode[oldest][0]
		s.dropIdle(be)
		be.conn.Close()
	}
	if ip.n > 0 || ip.peak[0] > 0 || ip.peak[1] > 0 {
		ip.sweep.Reset(IdleWindow)
	}
}

// dropIdle takes be out of the idle connections (it closed, or spoke
// unasked). Runs on the loop.
func (s *Service) dropIdle(be *backend) {
	ip := &s.idle[be.conn.Loop().ID()]
	list := ip.byNode[be.node]
	for i, b := range list {
		if b == be {
			copy(list[i:], list[i+1:])
			list[len(list)-1] = nil
			ip.byNode[be.node] = list[:len(list)-1]
			ip.n--
			s.Bored.Add(-1)
			return
		}
	}
}

// CloseIdle closes loop l's idle backend connections. Runs on the loop.
func (s *Service) CloseIdle(l *engine.Loop) {
	s.closeIdle(l, func(*backend) bool { return true })
}

// DropStale closes loop l's idle backend connections that the current
// settings would not reuse: to a node removed from the pool, of a pool the
// service no longer uses, or of other backend_ssl settings. Connections in
// use are left to finish their response (putIdle then closes them). The
// server runs it on every loop after a live change. Runs on the loop.
func (s *Service) DropStale(l *engine.Loop) {
	s.closeIdle(l, func(be *backend) bool { return s.stale(be) || be.conn.Closing() })
}

// closeIdle closes the idle connections of loop l that drop selects, and
// forgets nodes left with none. Runs on the loop.
func (s *Service) closeIdle(l *engine.Loop, drop func(*backend) bool) {
	ip := &s.idle[l.ID()]
	for node, list := range ip.byNode {
		keep := list[:0]
		for _, be := range list {
			if !drop(be) {
				keep = append(keep, be)
				continue
			}
			ip.n--
			s.Bored.Add(-1)
			be.conn.Close()
		}
		clear(list[len(keep):])
		if len(keep) == 0 {
			delete(ip.byNode, node)
		} else {
			ip.byNode[node] = keep
		}
	}
}

// IdleBackends returns the number of idle backend connections on loop l.
// Runs on the loop.
func (s *Service) IdleBackends(l *engine.Loop) int { return s.idle[l.ID()].n }

// IdleNodes returns the number of nodes loop l keeps idle state for
// (bounded: nodes without idle connections are forgotten every
// IdleWindow). Runs on the loop.
func (s *Service) IdleNodes(l *engine.Loop) int { return len(s.idle[l.ID()].byNode) }

// stale reports whether be may no longer be reused under the current
// settings: its node left the pool (in-flight requests finish, but the
// connection is not kept), the service switched to another pool, or
// backend_ssl or backend_protocol changed.
func (s *Service) stale(be *backend) bool {
	st := s.Settings()
	p := st.Pool
	return p == nil || p != be.pool || !inPool(p, be.node) || st.BackendTLS != be.tls || (st.BackendH2 != nil) != be.h2
}

func inPool(p *pool.Pool, n *pool.Node) bool {
	for _, m := range p.Nodes() {
		if m == n {
			return true
		}
	}
	return false
}
