package proxy

import (
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/plb/plb/engine"
	"github.com/plb/plb/http"
)

// Queues. Every client waiting for a backend (state clWait) is in one of
// three lists of its loop, by priority, oldest first: Perlbal's highpri,
// normal and lowpri queues. plb dials a backend for a client at once, so
// a client only waits for a connect to finish, unless the service sets
// max_backend_conns: at that many backend connections on the loop
// (connecting, in use or idle), a client that finds no idle connection is
// blocked until one is free. A freed connection (a response done, a
// connect_ahead spare ready) is handed to the first blocked client of the
// highpri queue, then normal, then lowpri; a closed one lets the next
// blocked client dial. With queue_relief_size > 0 and at least that many
// normal clients blocked, each pick skips the highpri queue with
// queue_relief_chance percent probability (Perlbal's pressure relief).

// Queue priorities, the index of a loop's lists.
const (
	prioNormal = iota
	prioHigh
	prioLow
	numPrio
)

// NumQueues is the number of priority queues.
const NumQueues = numPrio

// QueueName is the name of queue i (an index of Service.Queues) as
// Perlbal's queues command prints it: normal, highpri or lowpri.
func QueueName(i int) string {
	switch i {
	case prioHigh:
		return "highpri"
	case prioLow:
		return "lowpri"
	}
	return "normal"
}

// queueLink is a client's place in its loop's queues.
type queueLink struct {
	prio       int8 // prioNormal, prioHigh or prioLow
	linked     bool // in a list (state clWait)
	blocked    bool // waiting for a free backend connection (max_backend_conns)
	qprev, qnx *client
}

// loopQueue is a service's queues on one loop. Only pub is read from other
// goroutines.
type loopQueue struct {
	conns      int // open backend connections of the service on the loop
	head, tail [numPrio]*client
	count      [numPrio]int
	blocked    [numPrio]int // of count, those blocked by max_backend_conns
	nblocked   int
	serving    *client // being served by serveQueue: may dial
	pub        [numPrio]queuePub
	_          [64]byte // keep loops off each other's cache lines
}

// queuePub is one queue's figures for other goroutines.
type queuePub struct {
	count  atomic.Int64
	oldest atomic.Int64 // UnixNano of the oldest client's wait, 0: empty
}

// QueueStatus is one queue of a service, over its loops.
type QueueStatus struct {
	Count  int64
	Oldest time.Time // when the longest-waiting client began (zero: empty)
}

// Queues returns the service's queues (index: see QueueName). Safe from
// any goroutine.
func (s *Service) Queues() [NumQueues]QueueStatus {
	var out [NumQueues]QueueStatus
	for i := range s.queues {
		q := &s.queues[i]
		for p := range out {
			out[p].Count += q.pub[p].count.Load()
			if t := q.pub[p].oldest.Load(); t != 0 {
				if o := time.Unix(0, t); out[p].Oldest.IsZero() || o.Before(out[p].Oldest) {
					out[p].Oldest = o
				}
			}
		}
	}
	return out
}

func (s *Service) loopQueue(l *engine.Loop) *loopQueue { return &s.queues[l.ID()] }

// linkWait puts cl at the end of its queue (it starts waiting). Runs on
// the loop.
func (cl *client) linkWait() {
	q := cl.svc.loopQueue(cl.conn.Loop())
	p := cl.prio
	cl.linked = true
	cl.qnx = nil
	cl.qprev = q.tail[p]
	if q.tail[p] != nil {
		q.tail[p].qnx = cl
	} else {
		q.head[p] = cl
		q.pub[p].oldest.Store(cl.conn.Loop().ClockTime(cl.waitSince).UnixNano())
	}
	q.tail[p] = cl
	q.count[p]++
	q.pub[p].count.Store(int64(q.count[p]))
}

// unlinkWait takes cl out of its queue. Runs on the loop.
func (cl *client) unlinkWait() {
	if !cl.linked {
		return
	}
	q := cl.svc.loopQueue(cl.conn.Loop())
	p := cl.prio
	cl.unblock(q)
	if cl.qprev != nil {
		cl.qprev.qnx = cl.qnx
	} else {
		q.head[p] = cl.qnx
		if h := q.head[p]; h != nil {
			q.pub[p].oldest.Store(h.conn.Loop().ClockTime(h.waitSince).UnixNano())
		} else {
			q.pub[p].oldest.Store(0)
		}
	}
	if cl.qnx != nil {
		cl.qnx.qprev = cl.qprev
	} else {
		q.tail[p] = cl.qprev
	}
	cl.qprev, cl.qnx, cl.linked = nil, nil, false
	q.count[p]--
	q.pub[p].count.Store(int64(q.count[p]))
}

func (cl *client) unblock(q *loopQueue) {
	if cl.blocked {
		cl.blocked = false
		q.blocked[cl.prio]--
		q.nblocked--
	}
}

// waitForSlot blocks cl when the service's loop is at max_backend_conns
// (or others are blocked already: no overtaking), and reports whether it
// did; connectBackend then returns, and the client is served when a
// connection frees up. Runs on the loop.
func (s *Service) waitForSlot(cl *client, l *engine.Loop, st *Settings) bool {
	q := s.loopQueue(l)
	if q.serving == cl {
		q.serving = nil
		return false
	}
	limit := st.Svc.MaxBackendConns
	if limit <= 0 || !cl.linked {
		if q.nblocked > 0 {
			s.serveQueue(l, st) // the cap was lifted: let them go
		}
		return false
	}
	if q.conns < limit && q.nblocked == 0 {
		return false
	}
	cl.blocked = true
	q.blocked[cl.prio]++
	q.nblocked++
	s.serveQueue(l, st)
	return true
}

// serveQueue lets blocked clients dial while the loop is under
// max_backend_conns. Runs on the loop.
func (s *Service) serveQueue(l *engine.Loop, st *Settings) {
	q := s.loopQueue(l)
	for q.nblocked > 0 {
		if limit := st.Svc.MaxBackendConns; limit > 0 && q.conns >= limit {
			return
		}
		cl := s.nextBlocked(q, st)
		if cl == nil {
			return
		}
		cl.unblock(q)
		q.serving = cl
		cl.connectBackend()
		q.serving = nil
	}
}

// nextBlocked returns the blocked client to serve next: highpri, normal,
// then lowpri, with queue relief. Runs on the loop.
func (s *Service) nextBlocked(q *loopQueue, st *Settings) *client {
	order := [numPrio]int8{prioHigh, prioNormal, prioLow}
	if n := st.Svc.QueueReliefSize; n > 0 && q.blocked[prioNormal] >= n &&
		st.Svc.QueueReliefChance > 0 && rand.IntN(100) < st.Svc.QueueReliefChance {
		order = [numPrio]int8{prioNormal, prioLow, prioHigh}
	}
	for _, p := range order {
		if q.blocked[p] == 0 {
			continue
		}
		for cl := q.head[p]; cl != nil; cl = cl.qnx {
			if cl.blocked && !cl.conn.Closing() {
				return cl
			}
		}
	}
	return nil
}

// handOff gives a backend connection that just became free to the next
// blocked client, and reports whether it took it (putIdle then keeps it
// out of the idle list). The node comes first: the client takes the
// connection when its balance method picks the connection's node (or the
// node it picked before it was blocked; with idle_first any node will
// do); otherwise the connection is closed, which makes room for the
// client to connect to its own node.
// Runs on the loop.
func (s *Service) handOff(be *backend) bool {
	l := be.conn.Loop()
	q := s.loopQueue(l)
	if q.nblocked == 0 || be.conn.Closing() || s.draining.Load() || s.stale(be) ||
		be.cool && l.Now().Before(be.coolUntil) {
		return false // cooling: offered when it is done (idle.go)
	}
	cl := s.nextBlocked(q, s.Settings())
	if cl == nil || cl.st.Pool != be.pool {
		return false
	}
	if cl.node == nil && !cl.fresh {
		if n := cl.stickyNode(); n != nil {
			cl.node = n
		} else if cl.st.Pool.ReuseFirst() && be.node.Available() {
			cl.node = be.node // idle_first: whichever connection is free first
		}
	}
	if cl.node == nil || !cl.node.Available() || !cl.st.Pool.Holds(cl.node) { // down, drained or removed since
		cl.node = cl.pick()
	}
	if cl.node != be.node || cl.fresh || !be.quiet() {
		be.conn.Close() // its OnClose lets the client dial (backendClosed)
		return true
	}
	cl.unblock(q)
	cl.node = nil
	be.client = nil
	cl.reuse(be)
	return true
}

// backendOpened counts a new backend connection of loop l. Runs on the
// loop.
func (s *Service) backendOpened(l *engine.Loop) { s.loopQueue(l).conns++ }

// backendClosed uncounts a closed backend connection and lets a blocked
// client dial in its place. Runs on the loop.
func (s *Service) backendClosed(be *backend) {
	l := be.conn.Loop()
	q := s.loopQueue(l)
	q.conns--
	if q.nblocked > 0 {
		s.serveQueue(l, s.Settings())
	}
}

// aheadRoom bounds the connect_ahead dials by max_backend_conns. Runs on
// the loop.
func (s *Service) aheadRoom(l *engine.Loop, st *Settings, need int) int {
	if limit := st.Svc.MaxBackendConns; limit > 0 {
		need = min(need, limit-s.loopQueue(l).conns)
	}
	return need
}

// queueInfo fills the plugins' view of this loop's queues (the Queues
// plugin's X-Queue-* headers). Runs on the loop.
func (s *Service) queueInfo(l *engine.Loop) (count, high int, age, highAge time.Duration) {
	q := s.loopQueue(l)
	now := l.Now()
	count, high = q.count[prioNormal], q.count[prioHigh]
	if h := q.head[prioNormal]; h != nil {
		age = now.Sub(l.ClockTime(h.waitSince))
	}
	if h := q.head[prioHigh]; h != nil {
		highAge = now.Sub(l.ClockTime(h.waitSince))
	}
	return count, high, age, highAge
}

// priority decides the queue of the request just parsed: high when the
// high_priority_cookie says so or a make_high_priority hook does, low when
// a make_low_priority hook (or AccessControl's queue_low) does.
//
// Perlbal made every request high priority when high_priority_cookie was
// set without high_priority_cookie_contents (the empty string is in every
// value, even a missing cookie's); plb requires the cookie to be present
// then, with any value.
func (cl *client) priority(st *Settings, r *http.RequestHead) int8 {
	if name := st.Svc.HighPriorityCookie; name != "" && cookieHas(r, name, st.Svc.HighPriorityCookieContents) {
		return prioHigh
	}
	if ps := cl.plug; ps != nil && ps.hooks != nil {
		if ps.req.HighPriority() {
			return prioHigh
		}
		if ps.req.LowPriority() {
			return prioLow
		}
	}
	return prioNormal
}
