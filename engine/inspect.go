//go:build linux

package engine

import "time"

// ConnInfo describes a connection for diagnostics (the management
// console's socks, states, pending and queues commands).
type ConnInfo struct {
	// Class names the kind of connection, as Perlbal's class names do
	// ("Perlbal::ClientProxy", "Perlbal::BackendHTTP", ...).
	Class string
	// Service is the service the connection belongs to.
	Service string
	// State is the handler's state name ("" when it has none).
	State string
	// Detail is the rest of the one-line description, appended after
	// "open to <peer>" (for example ": localport=80; reqs=2; wait_res").
	Detail string
	// Since is when the connection started waiting for a backend (zero
	// when it is not waiting).
	Since time.Time
	// OpenFile reports an open file being sent (a spool or a static file).
	OpenFile bool
}

// Describer is implemented by handlers that describe their connection.
// Describe runs on the connection's loop.
type Describer interface {
	Describe(c *Conn) ConnInfo
}

// Created returns when the connection was accepted or dialed. Runs on the
// loop.
func (c *Conn) Created() time.Time { return c.loop.ClockTime(c.created) }

// FirstRequestGrace is how long a graceful drain leaves a connection
// accepted a moment ago that has sent nothing yet: its first request is
// likely on its way (a client does not resend one its new connection lost,
// as it may a keep-alive connection's), and a binary upgrade hands the
// listening sockets over while clients connect.
const FirstRequestGrace = time.Second

// Young reports whether the connection was accepted (or dialed) less than
// FirstRequestGrace ago. Runs on the loop.
func (c *Conn) Young() bool {
	return c.loop.Now().Sub(c.Created()) < FirstRequestGrace
}

// SendingFile reports whether a file region is queued for output. Runs on
// the loop.
func (c *Conn) SendingFile() bool {
	for _, s := range c.out.segs[c.out.head:] {
		if s.f != nil {
			return true
		}
	}
	return false
}

// EachListener calls fn for every listening socket of the loop with its
// descriptor and listener. Runs on the loop.
func (l *Loop) EachListener(fn func(fd int, ln *Listener)) {
	for _, p := range l.fds {
		if s, ok := p.(*lsock); ok && !s.closed {
			fn(s.fd, s.ln)
		}
	}
}

// Created returns when the listener was bound. Safe from any goroutine.
func (ln *Listener) Created() time.Time { return ln.created }
