// Package proxy is the reverse_proxy role: it reads client requests with the
// incremental parser, picks a backend node from the service's pool (reusing
// an idle persistent backend connection on the same loop when it can),
// streams the request, and spoon-feeds the response back: the response is
// buffered in memory up to buffer_size and spilled to a temporary file beyond
// that, so the backend is released as soon as it has sent everything.
package proxy

import (
	"crypto/tls"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
	"github.com/plb/plb/http"
	"github.com/plb/plb/http/accesslog"
	"github.com/plb/plb/http/h2cli"
	"github.com/plb/plb/http/handoff"
	"github.com/plb/plb/http/plugin"
	"github.com/plb/plb/pool"
)

// Settings is the immutable per-service snapshot the loops read; a console
// SET publishes a new one.
type Settings struct {
	Svc  *config.Service
	Pool *pool.Pool // nil when the service has no pool (every request → 503)
	// ServerRetry is the pool's consecutive-failure limit (0: never down).
	ServerRetry int
	// Hooks are the instances of the service's plugins (nil: none, and the
	// data path builds no plugin.Request). Set before the settings are
	// published.
	Hooks *plugin.Hooks
	// DebugUploads adds X-PERLBAL-BUFFERED-UPLOAD-REASON to the backend
	// request of a spooled upload (Perlbal's PERLBAL_DEBUG_BUFFERED_UPLOADS).
	DebugUploads bool
	// AccessLog gets a combined-format line per request (nil: none).
	AccessLog    *accesslog.Log
	keepAliveHdr []byte        // "Connection: keep-alive\r\nKeep-Alive: timeout=N, max=100\r\n"
	sticky       *stickyCookie // sticky_cookie (nil: none)
	inserts      []hdr
	removes      [][]byte

	// Reproxy pools the connections fetching X-REPROXY-URL targets,
	// shared by the process's services (nil: the service's own).
	Reproxy *Reproxy
	// Resolve finds the service an X-REPROXY-SERVICE names (nil: none).
	Resolve handoff.Resolver
	// BackendTLS is the client TLS config of backend_ssl (nil: plain
	// backends). Without a ServerName (and with verification) each
	// connection verifies its node's IP address.
	BackendTLS *tls.Config
	// BackendH2 carries requests to the backends over HTTP/2
	// (backend_protocol h2 or h2c; nil: HTTP/1.1), its streams counted in
	// the service's H2 stats.
	BackendH2 *h2cli.Options
}

type hdr struct{ name, value []byte }

// NewSettings precomputes what the hot path needs from a service config.
func NewSettings(svc *config.Service, p *pool.Pool, serverRetry int) *Settings {
	s := &Settings{Svc: svc, Pool: p, ServerRetry: serverRetry}
	t := int(svc.PersistClientIdleTimeout / time.Second)
	s.sticky = newStickyCookie(svc)
	if svc.BackendH2() {
		s.BackendH2 = &h2cli.Options{ConnectTimeout: svc.ConnectTimeout}
	}
	s.keepAliveHdr = []byte("Connection: keep-alive\r\nKeep-Alive: timeout=" + strconv.Itoa(t) + ", max=100\r\n")
	for _, h := range svc.Headers {
		if h.Insert {
			s.inserts = append(s.inserts, hdr{[]byte(h.Name), []byte(h.Value)})
		} else {
			s.removes = append(s.removes, []byte(h.Name))
		}
	}
	if svc.EnableReproxy {
		s.inserts = append(s.inserts, hdr{[]byte("X-Proxy-Capabilities"), []byte("reproxy-file")})
	}
	// Insert replaces: remove the inserted names from the client's request.
	for _, h := range s.inserts {
		s.removes = append(s.removes, h.name)
	}
	return s
}

// Stats are a service's counters. Safe from any goroutine.
type Stats struct {
	Requests, Responses    atomic.Int64
	Status                 [6]atomic.Int64 // by class: 1xx..5xx at [1..5]
	BytesIn, BytesOut      atomic.Int64
	ClientsOpen, Backends  atomic.Int64
	Errors502, Errors503   atomic.Int64
	Errors504, SpoolWrites atomic.Int64
	// SpoolFull counts response pieces kept in memory, their backend
	// paused, because buffer_dir_size was reached.
	SpoolFull atomic.Int64
	// Resends counts requests sent again on a fresh connection after
	// one failed before any byte of a response (client.resend).
	Resends atomic.Int64
	// Waiting counts clients waiting for a backend (Perlbal's pend
	// clients); Connecting counts backend connects (and verifications) in
	// progress (pend backend).
	Waiting, Connecting atomic.Int64
	// Latency is the time from a request head parsed to its response
	// complete.
	Latency Latency
}

// Service is a running reverse_proxy service.
type Service struct {
	Name     string
	log      *slog.Logger
	settings atomic.Pointer[Settings]
	idle     []idlePool    // per loop: idle persistent backend connections (idle.go)
	ahead    []int         // per loop: connect_ahead dials in progress
	free     [][]*reqState // per loop: request memory of idle clients
	queues   []loopQueue   // per loop: waiting clients (queue.go)
	h2       []*h2cli.Pool // per loop: HTTP/2 backend connections (backend_protocol h2, h2c)
	// Bored counts idle backend connections over all loops. Safe from any
	// goroutine.
	Bored atomic.Int64
	Stats Stats
	// spooled is the size of the service's response spool files, over
	// all loops (buffer_dir_size bounds it).
	spooled  atomic.Int64
	draining atomic.Bool

	h2stats h2cli.Stats
	// rp is the reproxy cache and fetch pools (reproxy.go).
	rp serviceReproxy
}

// New creates a service for an engine with nloops loops.
func New(name string, s *Settings, nloops int, log *slog.Logger) *Service {
	svc := &Service{Name: name, log: log, idle: make([]idlePool, nloops), ahead: make([]int, nloops),
		free: make([][]*reqState, nloops), queues: make([]loopQueue, nloops), h2: make([]*h2cli.Pool, nloops)}
	svc.Stats.Latency.init(nloops)
	svc.settings.Store(s)
	return svc
}

// Settings returns the current snapshot. Safe from any goroutine.
func (s *Service) Settings() *Settings { return s.settings.Load() }

// Update publishes new settings; idle backends of another pool are dropped
// lazily by the loops. Safe from any goroutine.
func (s *Service) Update(st *Settings) { s.settings.Store(st) }

// Drain makes every client close after its current response; idle
// connections are closed by CloseIdle. Safe from any goroutine.
func (s *Service) Drain() { s.draining.Store(true) }

// Accept returns the handler for a new client connection; it is the
// engine's OnAccept. Runs on the loop.
func (s *Service) Accept(c *engine.Conn) engine.Handler {
	cl := &client{svc: s, conn: c}
	s.Stats.ClientsOpen.Add(1)
	return cl
}

// Adopt takes over a client connection a selector hands on (see package
// handoff): the request at the start of its buffered input is read again
// here, the selector's persist_client and HEADER rules apply, and after
// the response the connection goes back to hc.Base. Runs on the loop,
// inside the selector's OnData.
func (s *Service) Adopt(c *engine.Conn, hc *handoff.Client) {
	cl := &client{svc: s, conn: c, ho: hc}
	s.Stats.ClientsOpen.Add(1)
	c.SetHandler(cl)
	cl.OnOpen(c)
	c.ResumeRead()
	c.Kick()
}

// Spooled returns the bytes in the service's response spool files. Safe
// from any goroutine.
func (s *Service) Spooled() int64 { return s.spooled.Load() }

// reserveSpool takes n bytes of the spool's budget max (0: no limit); it
// reports false, taking nothing, when they do not fit.
func (s *Service) reserveSpool(n, max int64) bool {
	if s.spooled.Add(n) > max && max > 0 {
		s.spooled.Add(-n)
		return false
	}
	return true
}

// spoolDir is where responses beyond buffer_size are spilled.
func (st *Settings) spoolDir() string {
	if st.Svc.BufferDir != "" {
		return st.Svc.BufferDir
	}
	return os.TempDir()
}

// trusted reports whether X-Forwarded-For from peer is trusted.
func (st *Settings) trusted(peer netip.Addr) bool {
	if st.Svc.AlwaysTrusted {
		return true
	}
	for _, p := range st.Svc.TrustedUpstreamProxies {
		if p.Contains(peer.Unmap()) {
			return true
		}
	}
	return false
}

// h2Pool returns loop l's HTTP/2 backend connections, with o's options.
func (s *Service) h2Pool(l *engine.Loop, o *h2cli.Options) *h2cli.Pool {
	p := s.h2[l.ID()]
	if p == nil {
		p = h2cli.NewPool(l, o, s.log, &s.h2stats)
		s.h2[l.ID()] = p
	} else {
		p.SetOptions(o)
	}
	return p
}

// H2Stats counts the service's HTTP/2 backend connections and streams.
func (s *Service) H2Stats() *h2cli.Stats { return &s.h2stats }

// fillAhead dials spare backend connections until connect_ahead idle (and
// verified, with verify_backend) connections exist on loop l or are on
// their way (Perlbal's connect_ahead). Runs on the loop.
func (s *Service) fillAhead(l *engine.Loop, st *Settings) {
	id := l.ID()
	need := s.aheadRoom(l, st, st.Svc.ConnectAhead-s.idle[id].n-s.ahead[id])
	for i := 0; i < need && st.Pool != nil && !s.draining.Load(); i++ {
		node := st.Pool.Pick(pool.NoKey, nil)
		if node == nil {
			return
		}
		be, err := dialBackend(s, st, l, node)
		if err != nil {
			s.nodeFailed(node, st, err, l.Now())
			return
		}
		be.ahead = true
		s.ahead[id]++
	}
}

// aheadDone ends the connect_ahead accounting of be.
func (s *Service) aheadDone(be *backend) {
	if be.ahead {
		be.ahead = false
		s.ahead[be.conn.Loop().ID()]--
	}
}

// maxFreeStates bounds each loop's free list of request memory.
const maxFreeStates = 512

func (s *Service) getReqState(l *engine.Loop) *reqState {
	list := s.free[l.ID()]
	if n := len(list); n > 0 {
		rs := list[n-1]
		list[n-1] = nil
		s.free[l.ID()] = list[:n-1]
		return rs
	}
	rs := &reqState{}
	rs.parser.Limits.ChunkedHTTP10 = true // de-chunked, or refused by holdBody
	return rs
}

func (s *Service) putReqState(l *engine.Loop, rs *reqState) {
	rs.parser.Reset()
	// Nothing of this client's request may show with the next one's
	// (the console lists a client's "where" before its head is read).
	rs.where, rs.head, rs.tried = rs.where[:0], rs.head[:0], rs.tried[:0]
	rs.pend = rs.pend[:0]
	rs.key, rs.sticky, rs.hasSticky = pool.NoKey, 0, false
	// The parsed head's views point into this client's input: dropped,
	// so that a state kept on the free list holds none of its bytes. Up to
	// cap: an earlier head of the connection may have had more fields
	// than the last: up to the most any had (hdrMax).
	hs := rs.req.Headers
	clear(hs[:max(rs.hdrMax, len(hs))])
	rs.hdrMax = 0
	rs.req = http.RequestHead{Headers: hs[:0]}
	rs.body = rs.body[:0]
	if cap(rs.body) > coalesceMax {
		rs.body = nil
	}
	if len(s.free[l.ID()]) < maxFreeStates {
		s.free[l.ID()] = append(s.free[l.ID()], rs)
	}
}
