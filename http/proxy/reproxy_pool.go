package proxy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plb/plb/engine"
)

// Timing of the reproxy fetch connections (Perlbal's ReproxyManager).
const (
	reproxyConnectTimeout = 5 * time.Second // a connect (and a name lookup)
	reproxyIdleTimeout    = 5 * time.Second // an idle connection is closed after
	reproxyCapRetry       = 100 * time.Millisecond
)

// Reproxy pools the connections that fetch X-REPROXY-URL targets
// (Perlbal's ReproxyManager): per loop and host:port, kept alive and
// reused, idle ones closed after 5 s, connects bounded by 5 s, and the
// connections to one host:port, over all loops, capped by SERVER
// max_reproxy_connections (per host, else global; 0: no cap). One Reproxy
// serves every service of a process. Each loop's pools are touched only
// on that loop; the counts behind the cap and reproxy_state are shared.
type Reproxy struct {
	loops  []reproxyLoop
	limits atomic.Pointer[reproxyLimits]
	mu     sync.Mutex
	counts map[string]*hostCounts // by host:port, while some loop uses it
}

type reproxyLoop struct {
	hosts map[string]*reproxyHost
	loop  atomic.Pointer[engine.Loop] // set on first use, for shed
}

type reproxyLimits struct {
	global  int
	perHost map[string]int
}

// hostCounts are one host:port's figures over all loops.
type hostCounts struct {
	conns      atomic.Int64 // connected or connecting
	connecting atomic.Int64
	idle       atomic.Int64
	queued     atomic.Int64
	refs       int // loops with a pool for it (under Reproxy.mu)
}

// reproxyHost is one loop's pool for a host:port.
type reproxyHost struct {
	key        string
	url        reproxyURL // host and port
	addr       netip.AddrPort
	resolved   bool
	addrs      []netip.Addr // a name's addresses, tried in turn
	ai         int          // addr is addrs[ai]
	resolving  bool
	counts     *hostCounts
	idle       []*fetchConn
	queue      []*client
	connecting int // dials in progress
	open       int // connected
	retry      *engine.Timer
}

// NewReproxy makes the fetch pools for an engine of nloops loops.
func NewReproxy(nloops int) *Reproxy {
	m := &Reproxy{loops: make([]reproxyLoop, nloops), counts: map[string]*hostCounts{}}
	m.limits.Store(&reproxyLimits{})
	return m
}

// SetLimits takes max_reproxy_connections and
// max_reproxy_connections(host:port) from the SERVER settings
// (config.Global.Extra). Safe from any goroutine.
func (m *Reproxy) SetLimits(extra map[string]string) {
	l := &reproxyLimits{perHost: map[string]int{}}
	const k = "max_reproxy_connections"
	for key, v := range extra {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			continue
		}
		if key == k {
			l.global = n
		} else if h, ok := strings.CutPrefix(key, k+"("); ok && strings.HasSuffix(h, ")") {
			l.perHost[strings.TrimSuffix(h, ")")] = n
		}
	}
	m.limits.Store(l)
}

// limit is the cap for host:port key (0: none).
func (m *Reproxy) limit(key string) int {
	l := m.limits.Load()
	if n, ok := l.perHost[key]; ok {
		return n
	}
	return l.global
}

// State returns reproxy_state's lines about connections, sorted by
// host:port: "connecting h:p N", "bored h:p N", "clients_queued h:p N",
// "backends h:p N". Safe from any goroutine.
func (m *Reproxy) State() []string {
	m.mu.Lock()
	keys := make([]string, 0, len(m.counts))
	for k := range m.counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []string
	for _, k := range keys {
		c := m.counts[k]
		if n := c.connecting.Load(); n > 0 {
			out = append(out, fmt.Sprintf("connecting %s %d", k, n))
		}
		out = append(out, fmt.Sprintf("bored %s %d", k, c.idle.Load()),
			fmt.Sprintf("clients_queued %s %d", k, c.queued.Load()),
			fmt.Sprintf("backends %s %d", k, c.conns.Load()-c.connecting.Load()))
	}
	m.mu.Unlock()
	return out
}

// host returns loop l's pool for u's host:port.
func (m *Reproxy) host(l *engine.Loop, u *reproxyURL) *reproxyHost {
	lp := &m.loops[l.ID()]
	if h := lp.hosts[u.Key]; h != nil {
		return h
	}
	if lp.hosts == nil {
		lp.hosts = map[string]*reproxyHost{}
		lp.loop.Store(l)
	}
	h := &reproxyHost{key: u.Key, url: *u}
	h.addr, h.resolved = u.addr()
	m.mu.Lock()
	c := m.counts[u.Key]
	if c == nil {
		c = &hostCounts{}
		m.counts[u.Key] = c
	}
	c.refs++
	m.mu.Unlock()
	h.counts = c
	lp.hosts[u.Key] = h
	return h
}

// gc forgets loop l's pool h once nothing uses it.
func (m *Reproxy) gc(l *engine.Loop, h *reproxyHost) {
	if len(h.idle) > 0 || len(h.queue) > 0 || h.connecting > 0 || h.open > 0 || h.resolving {
		return
	}
	lp := &m.loops[l.ID()]
	if lp.hosts[h.key] != h {
		return
	}
	delete(lp.hosts, h.key)
	if h.retry != nil {
		h.retry.Stop()
		h.retry = nil
	}
	m.mu.Lock()
	if h.counts.refs--; h.counts.refs == 0 {
		delete(m.counts, h.key)
	}
	m.mu.Unlock()
}

// request gives cl a connection for u: an idle one, else it waits for
// one being opened.
func (m *Reproxy) request(l *engine.Loop, cl *client, u *reproxyURL) {
	h := m.host(l, u)
	for len(h.idle) > 0 {
		fc := h.idle[len(h.idle)-1]
		h.idle[len(h.idle)-1] = nil
		h.idle = h.idle[:len(h.idle)-1]
		h.counts.idle.Add(-1)
		if q, _ := fc.conn.Quiet(); !q {
			// Closed, or it sent bytes unasked: they would be taken for
			// this client's response.
			fc.state = fcDone
			fc.conn.Close()
			continue
		}
		fc.start(cl, u)
		return
	}
	h.queue = append(h.queue, cl)
	h.counts.queued.Add(1)
	cl.rp.waiting = h
	m.spawn(l, h)
}

// waits reports whether cl still waits in h's queue.
func (h *reproxyHost) waits(cl *client) bool {
	return cl.rp != nil && cl.rp.waiting == h && !cl.conn.Closing()
}

// spawn opens connections for h's waiting clients, within the cap.
func (m *Reproxy) spawn(l *engine.Loop, h *reproxyHost) {
	q := h.queue[:0]
	for _, cl := range h.queue {
		if h.waits(cl) {
			q = append(q, cl)
		}
	}
	clear(h.queue[len(q):])
	h.counts.queued.Add(int64(len(q) - len(h.queue)))
	h.queue = q
	for need := len(h.queue) - h.connecting; need > 0; need-- {
		if !h.resolved {
			m.resolve(l, h)
			return
		}
		if !m.reserve(h) {
			// Capped: a connection of this loop that frees up serves the
			// queue; the timer covers caps held by other loops, which
			// are asked to close their idle ones.
			if h.counts.idle.Load() > 0 {
				m.shed(l, h.key)
			}
			if h.retry == nil {
				h.retry = l.AfterFunc(reproxyCapRetry, func() {
					h.retry = nil
					m.spawn(l, h)
					m.gc(l, h)
				})
			}
			return
		}
		fc := &fetchConn{m: m, h: h}
		c, err := l.Dial(h.addr, fc, reproxyConnectTimeout)
		if err != nil {
			h.counts.conns.Add(-1)
			m.connectFailed(l, h)
			return
		}
		fc.conn = c
		h.connecting++
		h.counts.connecting.Add(1)
	}
}

// shed asks the loops other than l to close one idle connection to key
// each: under a cap, idle connections on one loop must not starve the
// clients of another.
func (m *Reproxy) shed(l *engine.Loop, key string) {
	for i := range m.loops {
		other := m.loops[i].loop.Load()
		if other == nil || other == l {
			continue
		}
		other.Run(func() {
			if h := m.loops[other.ID()].hosts[key]; h != nil && len(h.idle) > 0 {
				h.idle[0].conn.Close() // OnClose takes it off the list
			}
		})
	}
}

// reserve counts a new connection to h unless the cap is reached.
func (m *Reproxy) reserve(h *reproxyHost) bool {
	max := int64(m.limit(h.key))
	for {
		n := h.counts.conns.Load()
		if max > 0 && n >= max {
			return false
		}
		if h.counts.conns.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// connectFailed: a connect (or name lookup) to h failed. With no other
// connection to the host on this loop, it is taken as down and its
// waiting clients move on to their next URL.
func (m *Reproxy) connectFailed(l *engine.Loop, h *reproxyHost) {
	if h.open > 0 || h.connecting > 0 {
		return
	}
	if _, literal := h.url.addr(); !literal {
		if h.ai+1 < len(h.addrs) {
			// The name has another address: the waiting clients try it.
			h.ai++
			h.addr = netip.AddrPortFrom(h.addrs[h.ai], h.url.Port)
			m.spawn(l, h)
			return
		}
		h.resolved = false // look the name up again next time
	}
	q := h.queue
	h.queue = nil
	h.counts.queued.Add(-int64(len(q)))
	for _, cl := range q {
		if h.waits(cl) {
			cl.rp.waiting = nil
			cl.reproxyNext()
		}
	}
	m.gc(l, h)
}

// resolve looks h's name up off the loop, then spawns again.
func (m *Reproxy) resolve(l *engine.Loop, h *reproxyHost) {
	if h.resolving {
		return
	}
	h.resolving = true
	name := h.url.Host
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), reproxyConnectTimeout)
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", name)
		cancel()
		l.Run(func() {
			h.resolving = false
			if err != nil || len(addrs) == 0 {
				m.connectFailed(l, h)
				return
			}
			h.addrs = h.addrs[:0]
			for _, a := range addrs {
				h.addrs = append(h.addrs, a.Unmap())
			}
			h.ai = 0
			h.addr = netip.AddrPortFrom(h.addrs[0], h.url.Port)
			h.resolved = true
			m.spawn(l, h)
			m.gc(l, h)
		})
	}()
}

// bored gives a free connection to the next waiting client, or keeps it
// idle; one on which anything arrived since its response is closed.
func (m *Reproxy) bored(fc *fetchConn) {
	h := fc.h
	if q, _ := fc.conn.Quiet(); !q {
		fc.state = fcDone
		fc.conn.Close()
		return
	}
	for len(h.queue) > 0 {
		cl := h.queue[0]
		h.queue[0] = nil
		h.queue = h.queue[1:]
		h.counts.queued.Add(-1)
		if !h.waits(cl) {
			continue
		}
		cl.rp.waiting = nil
		fc.start(cl, &cl.rp.urls[cl.rp.cur])
		return
	}
	h.queue = nil
	timeout := reproxyIdleTimeout
	if fc.kaTimeout > 0 {
		// Leave before the server's announced Keep-Alive timeout does.
		timeout = min(timeout, time.Duration(fc.kaTimeout)*time.Second-kaMargin)
	}
	if timeout <= 0 {
		fc.state = fcDone
		fc.conn.Close()
		return
	}
	fc.state = fcIdle
	fc.reused = true
	fc.conn.SetTimeout(timeout)
	fc.conn.ResumeRead() // notice a close while idle
	h.idle = append(h.idle, fc)
	h.counts.idle.Add(1)
}
