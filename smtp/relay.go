// Package smtp is plb's SMTP relay front (role smtp_proxy) and plain TCP
// balancer (role tcp_proxy), on the engine's loops.
//
// An smtp_proxy stays silent to its client, connects a backend, and waits
// for its 2xx greeting. A refused or silent backend, or any other greeting,
// counts as a failure of that node (passive health, server_retry) and the
// next one is tried: the client sees none of it. Then plb optionally tells
// the backend who the client is (PROXY protocol header before the
// greeting, or XCLIENT after it when the backend's EHLO offers it), relays
// the greeting, and splices bytes both ways without parsing them, so
// STARTTLS, CHUNKING and the rest pass untouched; but with xclient (the
// backend trusts plb's address for XCLIENT) or smtp_starttls, plb reads
// the client's commands and answers XCLIENT, XFORWARD, STARTTLS and BDAT
// itself (commands.go, package inspect). No backend → "421
// <host> Service not available" and close. A client that talks before the
// greeting is held (its bytes follow the greeting) or, with
// smtp_reject_early_talkers, refused with 554.
//
// A tcp_proxy is the same without the greeting: the splice starts once
// the backend connection is up (after the PROXY header, if any).
package smtp

import (
	"context"
	"crypto/tls"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
	"github.com/plb/plb/health"
	"github.com/plb/plb/pool"
	"github.com/plb/plb/smtp/inspect"
)

// Settings is a service's immutable snapshot; Update publishes a new one.
type Settings struct {
	Svc  *config.Service
	Pool *pool.Pool
	// ServerRetry is the pool's server_retry: consecutive failures that
	// mark a node down (0: never).
	ServerRetry int
	// Hostname is the name in plb's own replies and EHLO (smtp_hostname,
	// else the host's name).
	Hostname string
	// StartTLS is the TLS configuration plb answers STARTTLS with
	// (smtp_starttls, the service's certificates); nil: plb has none, and
	// withholds STARTTLS when it reads the commands.
	StartTLS *tls.Config
	// TLSBuild is the builder's own record of what StartTLS was made from
	// (the server keeps a fingerprint there, to keep StartTLS, and its
	// session tickets, over a reload that changed nothing).
	TLSBuild any
}

// isSMTP reports whether the service speaks SMTP (smtp_proxy).
func (st *Settings) isSMTP() bool { return st.Svc.Role == config.RoleSMTPProxy }

// inspects reports whether plb reads the client's commands: with xclient
// (the backend trusts plb's address for XCLIENT, so the client's own must
// not reach it) and with smtp_starttls (plb answers STARTTLS).
func (st *Settings) inspects() bool {
	return st.isSMTP() && (st.Svc.ClientIPForwarding == config.ForwardXClient || st.Svc.SMTPStartTLS)
}

// Stats are a service's counters. Safe from any goroutine.
type Stats struct {
	Sessions        atomic.Int64 // client connections accepted
	Active          atomic.Int64 // open now
	Relayed         atomic.Int64 // sessions that reached a backend
	NoBackend       atomic.Int64 // refused for want of a backend (SMTP: 421)
	EarlyTalkers    atomic.Int64 // clients that talked before the greeting
	Refused         atomic.Int64 // client commands plb answered itself (XCLIENT, XFORWARD, too long, ...)
	StartTLS        atomic.Int64 // sessions whose STARTTLS plb answered (TLS with the client)
	BackendFailures atomic.Int64 // backend tries that failed
	BytesIn         atomic.Int64 // client to backend
	BytesOut        atomic.Int64 // backend to client, plb's replies included
}

// Service is a running smtp_proxy or tcp_proxy.
type Service struct {
	Name     string
	Stats    Stats
	log      *slog.Logger
	settings atomic.Pointer[Settings]
	draining atomic.Bool
}

// New makes the service name with its first settings.
func New(name string, st *Settings, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{Name: name, log: log}
	s.settings.Store(st)
	return s
}

// Update publishes new settings: sessions that start from now on use them.
// Safe from any goroutine.
func (s *Service) Update(st *Settings) { s.settings.Store(st) }

// Settings returns the current settings. Safe from any goroutine.
func (s *Service) Settings() *Settings { return s.settings.Load() }

// Drain marks the service as stopping: sessions in progress go on to
// their end (an SMTP session cannot be cut cleanly), the server closes what
// is left when its drain time is over.
func (s *Service) Drain() { s.draining.Store(true) }

// Accept returns the handler of an accepted client connection. Runs on
// the connection's loop.
func (s *Service) Accept(c *engine.Conn) engine.Handler {
	s.Stats.Sessions.Add(1)
	s.Stats.Active.Add(1)
	return &session{svc: s, st: s.Settings(), client: c}
}

// sessionState is a session's state.
type sessionState uint8

// Session states.
const (
	ssConnecting sessionState = iota // looking for a backend; client bytes are held
	ssRelay                          // splicing
	ssDone                           // closing
)

// upState is a backend attempt's state.
type upState uint8

// Backend attempt states.
const (
	upConnect upState = iota // dialing (then writing the PROXY header)
	upBanner                 // waiting for the greeting
	upEHLO                   // XCLIENT: waiting for the EHLO reply
	upXClient                // XCLIENT: waiting for its 220
	upRelay                  // splicing
	upFailed                 // given up; its close is not a session event
)

// holdMax bounds the bytes held from a client that talks before the
// greeting; reading pauses beyond (the kernel holds the rest).
const holdMax = 64 << 10

// Termination reasons in the session log line.
const (
	termClientClosed  = "client_closed"  // the client shut down first
	termServerClosed  = "server_closed"  // the backend shut down first
	termClientTimeout = "client_timeout" // client_timeout passed on the client's turn
	termServerTimeout = "server_timeout" // server_timeout passed on the backend's turn
	termClientError   = "client_error"   // the client connection failed (reset)
	termServerError   = "server_error"   // the backend connection failed after the greeting
	termNoBackend     = "no_backend"     // every node failed or is down
	termEarlyTalker   = "early_talker"   // refused: talked before the greeting
	termClientGone    = "client_gone"    // left before a backend was ready
)

// session is one client connection and its backend.
type session struct {
	svc    *Service
	st     *Settings
	client *engine.Conn
	up     *upstream // the current backend attempt (nil between tries)
	state  sessionState

	tried    []*pool.Node // the nodes tried, in order
	triedBuf [4]*pool.Node

	start      time.Time // accepted
	committed  time.Time // the greeting reached the client (zero: never)
	connDur    time.Duration
	bytesIn    int64 // client to backend
	bytesOut   int64 // backend (or plb) to client
	clientEOF  bool
	serverEOF  bool
	serverTurn bool // the client spoke last: the backend's turn
	term       string
	logged     bool
	scratch    []byte

	// inspect: plb reads the client's commands (Settings.inspects); conv
	// follows the conversation, ehlo holds a filtered EHLO reply.
	inspect bool
	conv    inspect.Conv
	ehlo    []byte
}

func (s *session) OnOpen(c *engine.Conn) {
	s.start = c.Loop().Now()
	s.tried = s.triedBuf[:0]
	s.tryNext()
}

func (s *session) OnData(c *engine.Conn, data []byte) int {
	switch s.state {
	case ssRelay:
		if s.inspect {
			return s.clientCommands(c, data)
		}
		up := s.up.conn
		if err := up.Write(data); err != nil {
			return len(data) // its OnClose ends the session
		}
		s.bytesIn += int64(len(data))
		s.svc.Stats.BytesIn.Add(int64(len(data)))
		if !s.serverTurn {
			s.serverTurn = true
			c.SetTimeout(s.st.Svc.ServerTimeout)
		}
		if up.Full() {
			c.PauseRead() // until the backend drains (upstream.OnDrain)
		}
		return len(data)
	case ssConnecting:
		if s.st.isSMTP() && s.st.Svc.SMTPRejectEarlyTalkers {
			s.svc.Stats.EarlyTalkers.Add(1)
			s.refuse(termEarlyTalker, "554 5.5.1 "+s.st.Hostname+" Error: SMTP protocol synchronization (talked before the greeting)\r\n")
			return len(data)
		}
		if len(data) > holdMax {
			c.PauseRead()
		}
		return 0 // held: delivered after the greeting
	}
	return len(data)
}

func (s *session) OnEOF(c *engine.Conn) {
	switch s.state {
	case ssConnecting:
		// Gone before a backend was ready: nothing was said to anyone.
		s.abortUp()
		s.finish(termClientGone)
	case ssRelay:
		s.clientEOF = true
		if s.term == "" {
			s.term = termClientClosed
		}
		s.up.conn.CloseWrite()
		s.maybeDone()
	}
}

func (s *session) OnDrain(c *engine.Conn) {
	if s.state == ssRelay && s.up != nil {
		s.up.conn.ResumeRead()
	}
}

func (s *session) OnTimeout(c *engine.Conn) {
	if s.state != ssRelay {
		return
	}
	if s.serverTurn {
		s.finish(termServerTimeout)
	} else {
		s.finish(termClientTimeout)
	}
}

func (s *session) OnClose(c *engine.Conn, err error) {
	if s.state != ssDone {
		if err != nil {
			s.term = termClientError
		} else if s.term == "" {
			s.term = termClientClosed
		}
		s.state = ssDone
	}
	if s.up != nil {
		if err != nil {
			s.up.conn.Abort(err)
		} else {
			s.up.conn.Close()
		}
	}
	s.svc.Stats.Active.Add(-1)
	s.logLine()
}

// maybeDone closes both connections once both sides shut down.
func (s *session) maybeDone() {
	if s.clientEOF && s.serverEOF {
		s.finish(s.term)
	}
}

// finish ends the session with reason term: both connections are closed
// after what is queued for them is sent.
func (s *session) finish(term string) {
	if s.state == ssDone {
		return
	}
	if s.term == "" || term != termClientClosed && term != termServerClosed {
		s.term = term
	}
	s.state = ssDone
	if s.up != nil {
		s.up.conn.Close()
	}
	s.client.Close()
	s.logLine() // now, not when the client's lingering close is over
}

// refuse answers the client with line (a whole SMTP reply) and ends the
// session.
func (s *session) refuse(term, line string) {
	s.abortUp()
	if line != "" {
		s.bytesOut += int64(len(line))
		s.svc.Stats.BytesOut.Add(int64(len(line)))
		s.client.Write([]byte(line))
	}
	s.finish(term)
}

// abortUp drops the backend attempt in progress, if any.
func (s *session) abortUp() {
	if u := s.up; u != nil {
		u.state = upFailed
		s.up = nil
		u.conn.Abort(nil)
	}
}

// key is the session's Key for p's balance method: the client's address
// for hash_key = source_ip; a relay has no URI, header or cookie, so any
// other key is NoKey (round robin).
func (s *session) key(p *pool.Pool) pool.Key {
	if p.HashKey().Source != pool.KeySourceIP {
		return pool.NoKey
	}
	a := s.client.RemoteAddr().Addr().As16()
	return pool.HashBytes(a[:])
}

// tryNext connects the next usable node, or refuses the client when none
// is left.
func (s *session) tryNext() {
	for s.state == ssConnecting {
		var n *pool.Node
		if p := s.st.Pool; p != nil {
			n = p.Pick(s.key(p), s.skip)
		}
		if n == nil {
			s.svc.Stats.NoBackend.Add(1)
			if s.st.isSMTP() {
				s.refuse(termNoBackend, "421 "+s.st.Hostname+" Service not available\r\n")
			} else {
				s.refuse(termNoBackend, "")
			}
			return
		}
		s.tried = append(s.tried, n)
		now := s.client.Loop().Now()
		n.Attempts.Add(1)
		n.LastAttempt.Store(now.Unix())
		s.st.Pool.Take(n)
		u := &upstream{s: s, node: n, pool: s.st.Pool, dialed: now}
		s.up = u
		conn, err := s.client.Loop().Dial(n.Addr, u, s.st.Svc.ConnectTimeout)
		if err == nil {
			u.conn = conn
			return
		}
		u.state = upFailed
		u.released = true
		u.pool.Release(n)
		s.up = nil
		s.nodeFailed(n, err)
	}
}

// skip leaves out the nodes this session tried already.
func (s *session) skip(n *pool.Node) bool {
	for _, t := range s.tried {
		if t == n {
			return true
		}
	}
	return false
}

// nodeFailed counts a failed try against n (passive health: server_retry
// in a row mark it down) and logs it.
func (s *session) nodeFailed(n *pool.Node, err error) {
	s.svc.Stats.BackendFailures.Add(1)
	s.svc.log.Info("backend failed", "node", n.Name, "reason", health.Describe(err), "client", s.client.RemoteAddr().String())
	why, v := health.Failed(s.st.Pool.Nodes(), n, s.st.ServerRetry, err, s.client.Loop().Now())
	v.Log(s.svc.log, s.st.Pool.Name, n.Name, why)
}

// commit relays the greeting (greet; for a tcp_proxy nothing) and starts
// the splice; the client's held bytes follow.
func (s *session) commit(u *upstream, greet []byte) {
	now := s.client.Loop().Now()
	s.state = ssRelay
	u.state = upRelay
	s.committed = now
	u.node.Succeed()
	s.svc.Stats.Relayed.Add(1)
	u.conn.SetTimeout(0)
	if s.st.inspects() {
		s.inspect = true
		s.conv.Init(s.st.Svc.ClientIPForwarding == config.ForwardXClient)
	}
	if len(greet) > 0 {
		s.bytesOut += int64(len(greet))
		s.svc.Stats.BytesOut.Add(int64(len(greet)))
		s.client.Write(greet)
	}
	s.serverTurn = false
	s.client.SetTimeout(s.st.Svc.ClientTimeout)
	if s.client.Paused() {
		s.client.ResumeRead()
	} else {
		s.client.Kick()
	}
}

// logLine writes the session's line, once: in the spirit of HAProxy's
// tcplog, client, backend, times and bytes, and why it ended.
func (s *session) logLine() {
	if s.logged {
		return
	}
	s.logged = true
	if !s.svc.log.Enabled(context.Background(), slog.LevelInfo) {
		return // the line's strings cost more than the rest of a session
	}
	now := s.client.Loop().Now()
	backend := "-"
	if s.up != nil {
		backend = s.up.node.Name
	}
	wait := time.Duration(-1)
	if !s.committed.IsZero() {
		wait = s.committed.Sub(s.start)
	}
	s.svc.log.Info("session",
		"client", s.client.RemoteAddr().String(),
		"backend", backend,
		"tries", len(s.tried),
		"wait_ms", ms(wait),
		"connect_ms", ms(s.connDur),
		"total_ms", ms(now.Sub(s.start)),
		"bytes_in", s.bytesIn,
		"bytes_out", s.bytesOut,
		"term", s.term)
}

// ms is d in milliseconds, -1 for "never".
func ms(d time.Duration) int64 {
	if d < 0 {
		return -1
	}
	return d.Milliseconds()
}
