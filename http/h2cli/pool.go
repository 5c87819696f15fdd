// Package h2cli carries a reverse proxy's backend exchanges over HTTP/2
// (backend_protocol h2 or h2c): each exchange is a connection the role
// dials as to any backend, an engine pair whose other end turns the
// HTTP/1.1 requests the role writes into streams of a few HTTP/2
// connections per node, and the streams' responses back into HTTP/1.1.
// The role keeps its rules (balancing, reuse, verification, retries,
// spoon-feeding); requests from many exchanges share one connection up to
// the backend's SETTINGS_MAX_CONCURRENT_STREAMS.
package h2cli

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/plb/plb/engine"
	"github.com/plb/plb/health"
	"github.com/plb/plb/http/h2"
)

// Options are a service's HTTP/2 backend settings.
type Options struct {
	// Limits bound what a backend can make plb hold; MaxConcurrentStreams
	// caps the streams of one connection (the backend's own limit
	// applies too).
	Limits h2.Limits
	// ConnectTimeout bounds a connection's connect and TLS handshake
	// (0: 5 s).
	ConnectTimeout time.Duration
	// IdleTimeout closes a connection without a stream for that long
	// (0: 60 s).
	IdleTimeout time.Duration
	// MaxConns bounds the connections to one node from one loop
	// (0: 8); requests beyond what they carry wait for a stream.
	MaxConns int
}

// Stats are HTTP/2 backend counters. Safe from any goroutine.
type Stats struct {
	Conns, Streams, StreamsTotal atomic.Int64
}

// ErrNoH2 is a TLS backend that did not agree to h2 by ALPN.
var ErrNoH2 = errors.New("h2cli: the backend did not agree to HTTP/2 (ALPN)")

// Pool is one loop's HTTP/2 connections to a service's nodes. Every
// method runs on its loop.
type Pool struct {
	l     *engine.Loop
	o     *Options
	log   *slog.Logger
	stats *Stats
	nodes map[nodeKey]*node
}

// nodeKey names a node's connections: its address and the service's TLS
// config (connections of an older config are not used for new
// exchanges).
type nodeKey struct {
	addr netip.AddrPort
	tls  *tls.Config
}

// node is the connections to one node, and the exchanges waiting for
// them.
type node struct {
	key   nodeKey
	tls   *tls.Config // the handshake's: key.tls for this node, asking for h2
	conns []*conn
	// pending: exchanges made while no connection was up, opened when
	// one is; waiting: requests waiting for a stream.
	pending, waiting []*exchange
}

// NewPool returns loop l's pool, which counts in stats (shared by the
// service's loops).
func NewPool(l *engine.Loop, o *Options, log *slog.Logger, stats *Stats) *Pool {
	return &Pool{l: l, o: o, log: log, stats: stats, nodes: map[nodeKey]*node{}}
}

// SetOptions replaces the options (a reloaded configuration): new
// connections take them.
func (p *Pool) SetOptions(o *Options) { p.o = o }

// Dial returns the role's end of a new exchange with addr, whose handler
// is h. Its OnOpen comes once a connection to addr is up (at once when
// one is); a failed connection aborts it with the connect's error, as a
// failed dial closes a socket. base is the service's TLS config (nil:
// h2c), which names the node's connections.
func (p *Pool) Dial(addr netip.AddrPort, base *tls.Config, h engine.Handler) (*engine.Conn, error) {
	key := nodeKey{addr, base}
	n := p.node(key)
	up := n.up()
	if !up && !n.connecting() {
		if err := p.dial(n); err != nil {
			p.forget(n)
			return nil, err
		}
	}
	ex := &exchange{p: p, key: key}
	ex.parser.Limits = roleHead()
	info := engine.PairInfo{Remote: addr, Secure: base != nil, Proto: "HTTP/2.0"}
	ex.inner, ex.outer = p.l.DialPair(info, h, ex)
	ex.outer.SetWatermarks(64<<10, 16<<10)
	if up {
		p.l.Defer(ex.inner.Open)
	} else {
		n.pending = append(n.pending, ex)
	}
	return ex.inner, nil
}

// node returns key's node, made when it has none.
func (p *Pool) node(key nodeKey) *node {
	n := p.nodes[key]
	if n == nil {
		n = &node{key: key}
		if key.tls != nil {
			n.tls = health.NodeTLS(key.tls, key.addr.Addr(), "h2") // once per node, not per dial
		}
		p.nodes[key] = n
	}
	return n
}

// forget drops n from the pool once nothing is left of it.
func (p *Pool) forget(n *node) {
	if len(n.conns) == 0 && len(n.pending) == 0 && len(n.waiting) == 0 && p.nodes[n.key] == n {
		delete(p.nodes, n.key)
	}
}

// up reports whether a connection to n is ready.
func (n *node) up() bool {
	for _, c := range n.conns {
		if c.codec != nil && !c.codec.PeerGone() && !c.c.Closing() {
			return true
		}
	}
	return false
}

// connecting reports whether a connection to n is on its way.
func (n *node) connecting() bool {
	for _, c := range n.conns {
		if c.codec == nil {
			return true
		}
	}
	return false
}

// dial starts a connection to n.
func (p *Pool) dial(n *node) error {
	to := p.o.ConnectTimeout
	if to <= 0 {
		to = 5 * time.Second
	}
	cc := &conn{p: p, n: n, live: map[*exchange]struct{}{}, paused: map[*exchange]struct{}{}}
	c, err := p.l.Dial(n.key.addr, cc, to)
	if err != nil {
		return err
	}
	cc.c = c
	if n.tls != nil {
		c.StartTLSClient(n.tls)
	}
	n.conns = append(n.conns, cc)
	return nil
}

// stream opens a stream for ex's request on a connection to its node
// with room, dialing one more when none has (up to MaxConns); nil when
// the request must wait (it is then in n.waiting).
func (p *Pool) stream(ex *exchange) *conn {
	n := p.node(ex.key)
	if c := n.open(); c != nil {
		return c
	}
	n.waiting = append(n.waiting, ex)
	p.grow(n)
	return nil
}

// open returns a connection of n that can open a stream now, or nil.
func (n *node) open() *conn {
	for _, c := range n.conns {
		if c.codec != nil && c.codec.CanOpen() && !c.c.Closing() {
			return c
		}
	}
	return nil
}

// grow dials one more connection to n for its waiting requests, unless
// one is on its way or n has MaxConns; when none can be had (the dial
// fails, and no connection is up or coming), the waiting requests are
// lost, as the role then sees.
func (p *Pool) grow(n *node) {
	limit := p.o.MaxConns
	if limit <= 0 {
		limit = 8
	}
	if len(n.waiting) == 0 || n.connecting() || len(n.conns) >= limit {
		return
	}
	err := p.dial(n)
	if err == nil {
		return
	}
	p.log.Warn("HTTP/2 backend connect failed", "node", n.key.addr, "err", err)
	if !n.up() {
		wait := n.waiting
		n.waiting = nil
		for _, ex := range wait {
			ex.lost()
		}
	}
}

// freed follows a stream's end on the exchange's side: a request waiting
// for a stream of its node may take it (after the current event).
func (p *Pool) freed(key nodeKey) {
	if n := p.nodes[key]; n != nil && len(n.waiting) > 0 {
		p.l.Defer(func() { p.serve(n) })
	}
}

// serve gives the waiting requests of n the streams its connections can
// open now, and opens the exchanges made while none was up.
func (p *Pool) serve(n *node) {
	if n.up() && len(n.pending) > 0 {
		pend := n.pending
		n.pending = nil
		for _, ex := range pend {
			ex.inner.Open()
		}
	}
	for len(n.waiting) > 0 {
		c := n.open()
		if c == nil {
			p.grow(n)
			return
		}
		ex := n.waiting[0]
		n.waiting = n.waiting[1:]
		ex.open(c)
	}
}

// drop forgets ex's place in its node's lists.
func (p *Pool) drop(ex *exchange) {
	if n := p.nodes[ex.key]; n != nil {
		n.pending = remove(n.pending, ex)
		n.waiting = remove(n.waiting, ex)
	}
}

func remove(list []*exchange, ex *exchange) []*exchange {
	for i, e := range list {
		if e == ex {
			return append(list[:i], list[i+1:]...)
		}
	}
	return list
}

// conn is one HTTP/2 connection to a node: the socket's handler, the
// codec's Output and ClientHandler.
type conn struct {
	p     *Pool
	n     *node
	c     *engine.Conn
	codec *h2.Conn // nil until the connection is up
	live  map[*exchange]struct{}
	// paused are the exchanges whose request body waits for the window:
	// what a read from the node may let go on (not every live one).
	paused map[*exchange]struct{}
}

func (cc *conn) Write(p []byte) error { return cc.c.Write(p) }
func (cc *conn) Buffered() int        { return cc.c.Buffered() }

func (cc *conn) OnOpen(c *engine.Conn) {
	if cc.n.key.tls != nil {
		if st, ok := c.TLSConnectionState(); !ok || st.NegotiatedProtocol != "h2" {
			c.Abort(ErrNoH2)
			return
		}
	}
	cc.codec = h2.NewClientConn(cc, cc, cc.p.o.Limits)
	loop := c.Loop()
	flush := cc.codec.Flush
	cc.codec.SetFlushHook(func() { loop.Defer(flush) })
	cc.p.stats.Conns.Add(1)
	cc.idle()
	cc.p.serve(cc.n)
}

// idle arms the idle timeout of a connection without a stream.
func (cc *conn) idle() {
	if cc.codec.Streams() == 0 {
		to := cc.p.o.IdleTimeout
		if to <= 0 {
			to = 60 * time.Second
		}
		cc.c.SetTimeout(to)
	} else {
		cc.c.SetTimeout(0) // the roles time their exchanges
	}
}

func (cc *conn) OnData(c *engine.Conn, data []byte) int {
	n, err := cc.codec.Feed(data)
	if err != nil {
		cc.p.log.Warn("HTTP/2 backend connection error", "node", cc.n.key.addr, "code", cc.codec.Err)
		c.Close() // after the GOAWAY written
		return len(data)
	}
	if cc.codec.PeerGone() && cc.codec.Streams() == 0 {
		c.Close()
		return len(data)
	}
	for ex := range cc.paused {
		ex.resume()
	}
	cc.idle()
	cc.p.serve(cc.n)
	return n
}

func (cc *conn) OnEOF(c *engine.Conn) { c.Close() }

func (cc *conn) OnDrain(*engine.Conn) {}

func (cc *conn) OnTimeout(c *engine.Conn) {
	if cc.codec == nil {
		c.Abort(engine.ErrTimeout) // connect or handshake
		return
	}
	if cc.codec.Streams() == 0 {
		cc.codec.Shutdown()
		c.Close()
	}
}

func (cc *conn) OnClose(c *engine.Conn, err error) {
	n := cc.n
	for i, x := range n.conns {
		if x == cc {
			n.conns = append(n.conns[:i], n.conns[i+1:]...)
			break
		}
	}
	if cc.codec != nil {
		cc.p.stats.Conns.Add(-1)
	}
	for ex := range cc.live {
		ex.lost()
	}
	if err == nil {
		err = fmt.Errorf("h2cli: connection to %s closed", n.key.addr)
	}
	p := cc.p
	if !n.up() && !n.connecting() && len(n.pending)+len(n.waiting) > 0 && cc.codec != nil {
		// A connection that was up ended (a GOAWAY'd one done, an idle
		// one timed out): a new one for what waits.
		if p.dial(n) == nil {
			return
		}
	}
	if !n.up() && !n.connecting() {
		// No connection to open them on: what waited fails as a failed
		// connect does (the role tries the next node).
		pend, wait := n.pending, n.waiting
		n.pending, n.waiting = nil, nil
		for _, ex := range pend {
			ex.inner.Abort(err)
			ex.outer.Abort(err)
		}
		for _, ex := range wait {
			ex.lost()
		}
		p.forget(n)
		return
	}
	p.serve(n)
}
