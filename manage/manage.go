// Package manage is the management role: Perlbal's console on a TCP port.
// Each line is a command: configuration commands run through config.Interp
// against a clone of the live model, which the runtime then applies; the
// other commands print Perlbal's listings (reference/perlbal.md §2). A
// connection whose first bytes are "GET ", "HEAD " or "POST " is HTTP
// instead: Perlbal's small HTML pages, plus plb's status page, Prometheus
// metrics (/metrics) and a JSON status (/status.json).
//
// Commands never run on an event loop: a command may wait for every loop
// (socks, states) or for the server's lock (configuration), so each runs
// on its own goroutine while its connection stops reading; the reply is
// written back on the connection's loop, in order.
package manage

import (
	"bytes"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
	"github.com/plb/plb/pool"
)

// ServiceStatus is what the console shows about a running service.
// Counters count since the service started.
type ServiceStatus struct {
	Listening    string // bound address, "" when not listening
	PendClients  int64  // clients waiting for a backend
	PendBackends int64  // backend connects (and verifications) in progress
	Bored        int64  // idle backend connections (reverse_proxy)
	Requests     int64  // requests received
	// Responses counts responses by status class, 1xx..5xx at [1..5]
	// (backend responses and plb's own error pages).
	Responses [6]int64
	BytesIn   int64 // request bytes read (heads and bodies)
	BytesOut  int64 // response bytes sent
	Clients   int64 // open client connections
	Backends  int64 // open backend connections
	// Errors502, Errors503 and Errors504 count plb's own error pages:
	// broken backend reply, no node reachable, backend timeout.
	Errors502, Errors503, Errors504 int64
	// Resends counts requests a reverse proxy sent again on a fresh
	// backend connection after one failed before any response byte.
	Resends int64
	// Spooled is the size of a reverse proxy's response spool files now;
	// SpoolFull counts response pieces held in memory, their backend
	// paused, because buffer_dir_size was reached.
	Spooled, SpoolFull int64
	// Queues are a reverse proxy's clients waiting for a backend by
	// queue: normal, highpri, lowpri (QueueNames).
	Queues [3]QueueStatus
	// Latency is the time from a request head parsed to its response
	// complete (nil when the role does not measure it).
	Latency *Histogram
	// ReproxyCache is a reverse proxy's reproxy cache (nil: none).
	ReproxyCache *CacheStatus
	// Sessions are an smtp_proxy's or tcp_proxy's session counts (nil
	// for the other roles).
	Sessions *SessionStatus
	// HTTP2 counts the service's HTTP/2 connections and streams (nil:
	// http2 is off).
	HTTP2 *HTTP2Status
	// BackendHTTP2 counts a reverse proxy's HTTP/2 connections and
	// streams to its nodes (nil: backend_protocol is http/1.1).
	BackendHTTP2 *HTTP2Status
}

// SourceStatus is how a pool's node source is doing.
type SourceStatus struct {
	Source   string    `json:"source"`   // "dns:web.example.com:80"
	OK       bool      `json:"ok"`       // its last question was answered
	Err      string    `json:"error"`    // why not
	Since    time.Time `json:"since"`    // when OK last changed
	Nodes    int       `json:"nodes"`    // the nodes the pool has from it
	Failures int64     `json:"failures"` // questions that failed since the start
}

// HTTP2Status counts a service's HTTP/2 clients.
type HTTP2Status struct {
	Conns        int64 `json:"connections"`   // HTTP/2 connections open
	Streams      int64 `json:"streams"`       // streams in progress
	StreamsTotal int64 `json:"streams_total"` // streams since the start
}

// SessionStatus counts the sessions of an smtp_proxy or tcp_proxy.
type SessionStatus struct {
	Total           int64 // client connections accepted
	Relayed         int64 // that reached a backend
	NoBackend       int64 // refused for want of a backend (SMTP: 421)
	EarlyTalkers    int64 // refused for talking before the greeting
	BackendFailures int64 // backend tries that failed (connect, greeting, XCLIENT)
}

// QueueNames are the names of ServiceStatus.Queues, as Perlbal's queues
// command prints them.
func QueueNames() [3]string { return [3]string{"normal", "highpri", "lowpri"} }

// QueueStatus is one queue of clients waiting for a backend.
type QueueStatus struct {
	Count  int64
	Oldest time.Time // when the longest-waiting client began waiting (zero: none)
}

// Histogram is a distribution of durations.
type Histogram struct {
	Bounds []float64 // bucket upper bounds in seconds, increasing
	Counts []int64   // per bucket, not cumulative; the last is above every bound
	Count  int64
	Sum    float64 // seconds
}

// Sock is one listening socket or connection, for socks, states, queues,
// backends, pending and obj.
type Sock struct {
	Fd       int
	Created  time.Time
	Listener bool   // a listening socket: Info.Service names its service
	Addr     string // a listener's bound address, a connection's peer
	Reading  bool   // reading is not paused
	Writing  bool   // output is queued
	WriteBuf int    // bytes of output queued in memory
	Info     engine.ConnInfo
}

// Runtime is the running server as the console sees it. Its methods are
// safe from any goroutine but a loop.
type Runtime interface {
	// Config returns the live model; callers must not modify it.
	Config() *config.Config
	// Apply publishes an edited clone of the model.
	Apply(c *config.Config) error
	// ConfigOptions returns the options for a console interpreter.
	ConfigOptions() config.Options
	// Pool returns a running pool by name.
	Pool(name string) *pool.Pool
	// ServiceStatus returns a running service's figures.
	ServiceStatus(name string) ServiceStatus
	// PoolSource returns how a pool's node source is doing, for a source
	// that asks something (DNS); ok false for the others.
	PoolSource(name string) (st SourceStatus, ok bool)
	// Requests returns the requests received since start.
	Requests() int64
	// StartTime is when the process started.
	StartTime() time.Time
	// Now is the server's clock (injected; time.Now in production).
	Now() time.Time
	// Socks lists every listening socket and connection; it waits for
	// every loop.
	Socks() []Sock
	// MIME returns the web servers' MIME table (extension to type); the
	// caller may modify the copy and give it to SetMIME.
	MIME() map[string]string
	// SetMIME makes m the web servers' MIME table.
	SetMIME(m map[string]string)
	// Shutdown stops the process, gracefully (drain) or at once.
	Shutdown(graceful bool)
	// StopAfter stops the process at once after d, drained or not
	// ("shutdown graceful N").
	StopAfter(d time.Duration)
	// Draining reports a graceful stop in progress (GET /healthz then
	// answers 503, so that a VRRP peer takes the address over).
	Draining() bool
}

// Service is a running management service.
type Service struct {
	Name   string
	rt     Runtime
	access atomic.Pointer[access]
	// HeadTimeout bounds the wait for a connection's first command line
	// or HTTP head; IdleTimeout the wait for each next command. Past
	// either the connection is closed, so that forgotten or hostile
	// console connections do not pile up (HAProxy's stats socket has a
	// 10 s default; a console is interactive). Set before serving.
	HeadTimeout, IdleTimeout time.Duration
}

// Console timeouts by default.
const (
	defaultHeadTimeout = 30 * time.Second
	defaultIdleTimeout = 10 * time.Minute
)

// access is who may connect.
type access struct {
	loopback bool // the listen address is a loopback one
	allow    []netip.Prefix
}

// New creates a management service. Until Update gives it its
// configuration it admits loopback peers only.
func New(name string, rt Runtime) *Service {
	return &Service{Name: name, rt: rt, HeadTimeout: defaultHeadTimeout, IdleTimeout: defaultIdleTimeout}
}

// Update publishes the service's configuration: who may connect. Safe from
// any goroutine.
func (s *Service) Update(sc *config.Service) {
	s.access.Store(&access{loopback: config.ListenIsLoopback(sc.Listen), allow: append([]netip.Prefix(nil), sc.Allow...)})
}

// Allowed reports whether peer may use the console: a peer inside one of
// the allow prefixes; with none, anyone when the service listens on
// loopback only, else (a listener that escaped the start-up check) loopback
// peers only. Safe from any goroutine.
func (s *Service) Allowed(peer netip.Addr) bool { return s.admits(peer, true) }

// admits is Allowed; byListener false ignores a loopback-only listener
// (a peer reaching the service some other way, as through a selector).
func (s *Service) admits(peer netip.Addr, byListener bool) bool {
	peer = peer.Unmap()
	a := s.access.Load()
	switch {
	case a == nil:
		return peer.IsLoopback()
	case len(a.allow) == 0:
		return byListener && a.loopback || peer.IsLoopback()
	}
	for _, p := range a.allow {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// Accept is the engine's OnAccept for this service: a peer that may not
// connect is closed at once, without a word. Runs on the loop.
func (s *Service) Accept(c *engine.Conn) engine.Handler {
	if !s.Allowed(c.RemoteAddr().Addr()) {
		return nil
	}
	return &conn{con: &console{svc: s}, idle: s.IdleTimeout}
}

// Connection modes, decided by the first bytes.
const (
	modeUnknown = iota
	modeLines
	modeHTTP
)

// Input limits.
const (
	maxLine     = 64 << 10
	maxHTTPHead = 16 << 10
)

// conn is the engine handler of one console connection. Its fields are
// used on the loop only; con is used by one command goroutine at a time.
type conn struct {
	con   *console
	mode  int
	busy  bool // a command is running: input waits
	eof   bool // the peer is done sending: close once idle
	drain bool // the server drains: close once idle
	dead  bool // closed
	idle  time.Duration
}

func (mc *conn) OnOpen(c *engine.Conn) { c.SetTimeout(mc.con.svc.HeadTimeout) }

func (mc *conn) OnData(c *engine.Conn, data []byte) int {
	if mc.busy {
		c.PauseRead()
		return 0
	}
	if mc.mode == modeUnknown {
		mc.mode = sniff(data)
		if mc.mode == modeUnknown {
			return 0
		}
	}
	if mc.mode == modeHTTP {
		end := headEnd(data)
		if end < 0 {
			if len(data) > maxHTTPHead {
				c.Close()
				return len(data)
			}
			return 0
		}
		head := append([]byte(nil), data[:end]...)
		mc.start(c, func() ([]byte, bool) { return mc.con.serveHTTP(head), true })
		return len(data)
	}
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		if len(data) > maxLine {
			c.Write([]byte("ERROR: line too long\r\n"))
			c.Close()
			return len(data)
		}
		return 0
	}
	line := string(bytes.TrimSuffix(data[:i], []byte("\r")))
	mc.start(c, func() ([]byte, bool) { return mc.con.exec(line) })
	return i + 1
}

// sniff decides the mode from the first bytes: HTTP when they start with
// "GET ", "HEAD " or "POST " (Perlbal's test), lines otherwise; unknown
// while they could still be either.
func sniff(data []byte) int {
	for _, m := range [...]string{"GET ", "HEAD ", "POST "} {
		if bytes.HasPrefix(data, []byte(m)) {
			return modeHTTP
		}
		if len(data) < len(m) && bytes.HasPrefix([]byte(m), data) && bytes.IndexByte(data, '\n') < 0 {
			return modeUnknown
		}
	}
	return modeLines
}

// headEnd returns the length of an HTTP head through its blank line, or -1.
func headEnd(data []byte) int {
	if i := bytes.Index(data, []byte("\r\n\r\n")); i >= 0 {
		return i + 4
	}
	if i := bytes.Index(data, []byte("\n\n")); i >= 0 {
		return i + 2
	}
	return -1
}

// start runs job on its own goroutine and writes its output back on the
// loop; input waits until then. Runs on the loop.
func (mc *conn) start(c *engine.Conn, job func() (out []byte, closeAfter bool)) {
	mc.busy = true
	c.PauseRead()
	c.SetTimeout(0) // a command takes what it takes
	l := c.Loop()
	go func() {
		out, closeAfter := job()
		l.Run(func() { mc.finish(c, out, closeAfter) })
	}()
}

// finish writes a command's output and reads on. Runs on the loop.
func (mc *conn) finish(c *engine.Conn, out []byte, closeAfter bool) {
	mc.busy = false
	if mc.dead {
		return
	}
	c.Write(out)
	if closeAfter || mc.drain || mc.eof && bytes.IndexByte(c.Inbound(), '\n') < 0 {
		c.Close()
		return
	}
	c.SetTimeout(mc.idle)
	c.ResumeRead()
	c.Kick()
}

func (mc *conn) OnEOF(c *engine.Conn) {
	if mc.busy || mc.mode == modeLines && bytes.IndexByte(c.Inbound(), '\n') >= 0 {
		mc.eof = true // the commands already sent still get their answers
		return
	}
	c.Close()
}

func (mc *conn) OnDrain(c *engine.Conn)            {}
func (mc *conn) OnTimeout(c *engine.Conn)          { c.Close() }
func (mc *conn) OnClose(c *engine.Conn, err error) { mc.dead = true }

// DrainIdle closes a console connection when the server drains (Perlbal
// exits once only management clients are left), after the reply of a
// command in progress. Runs on the loop.
func (mc *conn) DrainIdle(c *engine.Conn) {
	if mc.busy {
		mc.drain = true
		return
	}
	c.Close()
}

// Describe implements engine.Describer. Runs on the loop.
func (mc *conn) Describe(c *engine.Conn) engine.ConnInfo {
	return engine.ConnInfo{Class: "Perlbal::ClientManage", Service: mc.con.svc.Name}
}
