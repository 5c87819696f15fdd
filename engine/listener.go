package engine

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2/pkg/netpoll"
	"github.com/panjf2000/gnet/v2/pkg/socket"
	"golang.org/x/sys/unix"
)

// ListenConfig describes a listener.
type ListenConfig struct {
	// Addr is "ip:port", ":port" (every address, dual-stack) or "[::]:port".
	Addr string
	// Network is "tcp" (default), "tcp4" or "tcp6".
	Network string
	// Backlog is the listen(2) backlog (default 1024, Perlbal's).
	Backlog int
	// MaxConns caps open accepted connections over all loops (0: no cap).
	// At the cap the listener stops accepting; clients wait in the backlog.
	MaxConns int
	// SndBuf sets SO_SNDBUF on accepted sockets when > 0.
	SndBuf int
	// OnAccept runs on the accepting loop and returns the connection's
	// handler; nil closes the connection at once.
	OnAccept func(c *Conn) Handler
}

// Listener is one service's listening address: one SO_REUSEPORT socket per
// loop, so each loop accepts for itself.
type Listener struct {
	eng    *Engine
	cfg    ListenConfig
	addr   *net.TCPAddr
	socks  []*lsock
	conns  atomic.Int64
	closed atomic.Bool
	// created is when Listen bound it (for the console's socks).
	created time.Time
}

// lsock is a listener's socket on one loop.
type lsock struct {
	fd     int
	loop   *Loop
	ln     *Listener
	paused bool
	resume *Timer
	closed bool
}

// acceptPause is how long a loop stops accepting after EMFILE/ENFILE.
const acceptPause = 100 * time.Millisecond

// Listen binds cfg.Addr on every loop and starts accepting (once the engine
// runs). Safe from any goroutine.
func (e *Engine) Listen(cfg ListenConfig) (*Listener, error) {
	if cfg.OnAccept == nil {
		return nil, errors.New("engine: ListenConfig.OnAccept is nil")
	}
	if cfg.Backlog <= 0 {
		cfg.Backlog = 1024
	}
	if cfg.Network == "" {
		cfg.Network = "tcp"
	}
	addr, err := net.ResolveTCPAddr(cfg.Network, cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("engine: listen %s: %w", cfg.Addr, err)
	}
	ln := &Listener{eng: e, cfg: cfg, created: e.cfg.Now()}
	fds := make([]int, 0, len(e.loops))
	for range e.loops {
		fd, bound, err := listenSocket(cfg.Network, addr, cfg.Backlog)
		if err != nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
			return nil, fmt.Errorf("engine: listen %s: %w", cfg.Addr, err)
		}
		if ln.addr == nil {
			ln.addr = bound
			addr = bound // port 0: every loop binds the port the first got
		}
		fds = append(fds, fd)
	}
	for i, l := range e.loops {
		s := &lsock{fd: fds[i], loop: l, ln: ln}
		ln.socks = append(ln.socks, s)
		l.Run(s.start)
	}
	return ln, nil
}

// Addr returns the bound address (with the real port when 0 was asked).
// Safe from any goroutine.
func (ln *Listener) Addr() *net.TCPAddr { return ln.addr }

// Conns returns the number of open accepted connections. Safe from any
// goroutine.
func (ln *Listener) Conns() int64 { return ln.conns.Load() }

// Close stops accepting on every loop; open connections are not touched.
// Safe from any goroutine.
func (ln *Listener) Close() {
	if !ln.closed.CompareAndSwap(false, true) {
		return
	}
	for _, s := range ln.socks {
		s := s
		if !s.loop.Run(s.close) {
			s.close() // loop gone: its poller is closed too
		}
	}
}

func (s *lsock) start() {
	if s.closed || s.ln.closed.Load() {
		s.close()
		return
	}
	s.loop.register(s.fd, s)
	if err := s.loop.poller.AddRead(&netpoll.PollAttachment{FD: s.fd}, false); err != nil {
		s.loop.log.Error("listener not polled", "addr", s.ln.addr, "err", err)
	}
}

func (s *lsock) close() {
	if s.closed {
		return
	}
	s.closed = true
	if s.resume != nil {
		s.resume.Stop()
	}
	if !s.paused {
		s.loop.poller.Delete(s.fd)
	}
	s.loop.unregister(s.fd)
	unix.Close(s.fd)
}

func (s *lsock) pause(d time.Duration) {
	if s.paused || s.closed {
		return
	}
	s.paused = true
	s.loop.poller.Delete(s.fd)
	if d > 0 {
		if s.resume == nil {
			s.resume = s.loop.AfterFunc(d, s.unpause)
		} else {
			s.resume.Reset(d)
		}
	}
}

func (s *lsock) unpause() {
	if !s.paused || s.closed {
		return
	}
	s.paused = false
	if err := s.loop.poller.AddRead(&netpoll.PollAttachment{FD: s.fd}, false); err != nil {
		s.loop.log.Error("listener not polled", "addr", s.ln.addr, "err", err)
	}
}

func (s *lsock) onEvent(netpoll.IOEvent) {
	l := s.loop
	ln := s.ln
	for i := 0; i < 64 && !s.closed; i++ {
		if max := ln.cfg.MaxConns; max > 0 && ln.conns.Load() >= int64(max) {
			s.pause(acceptPause) // resumed early by connClosed
			return
		}
		nfd, sa, err := unix.Accept4(s.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			switch err {
			case unix.EAGAIN:
				return
			case unix.EINTR, unix.ECONNABORTED, unix.EPROTO:
				continue
			case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
				// Out of descriptors or memory: leave the clients in the
				// backlog and try again shortly; never stop the process.
				l.log.Warn("accept paused", "addr", ln.addr, "err", err)
				s.pause(acceptPause)
				return
			default:
				l.log.Error("accept", "addr", ln.addr, "err", err)
				s.pause(acceptPause)
				return
			}
		}
		socket.SetNoDelay(nfd, 1)
		if ln.cfg.SndBuf > 0 {
			socket.SetSendBuffer(nfd, ln.cfg.SndBuf)
		}
		c := newConn(l, nfd, nil)
		c.ln = ln
		c.remote = sockaddrToAddrPort(sa)
		ln.conns.Add(1)
		l.conns++
		l.eng.conns.Add(1)
		h := ln.cfg.OnAccept(c)
		if h == nil {
			c.h = nopHandler{}
			c.destroy(nil)
			continue
		}
		c.h = h
		l.register(nfd, c)
		c.updateInterest()
		if c.closed {
			continue
		}
		h.OnOpen(c)
	}
}

// connClosed is called on loop l when one of ln's connections closed.
func (ln *Listener) connClosed(l *Loop) {
	n := ln.conns.Add(-1)
	if max := ln.cfg.MaxConns; max > 0 && n < int64(max) {
		for _, s := range ln.socks {
			if s.loop == l && s.paused {
				s.unpause()
			}
		}
	}
}

// Dial starts a non-blocking connect to addr on loop l. OnOpen follows on
// success; OnClose with the error on failure or when timeout (> 0) passes
// first. An error returned here means no callback will follow. Runs on the
// loop.
func (l *Loop) Dial(addr netip.AddrPort, h Handler, timeout time.Duration) (*Conn, error) {
	family := unix.AF_INET
	if addr.Addr().Is6() && !addr.Addr().Is4In6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("engine: socket: %w", err)
	}
	socket.SetNoDelay(fd, 1)
	err = unix.Connect(fd, addrPortToSockaddr(addr))
	if err != nil && err != unix.EINPROGRESS && err != unix.EINTR {
		unix.Close(fd)
		return nil, fmt.Errorf("engine: connect %s: %w", addr, err)
	}
	c := newConn(l, fd, h)
	c.remote = addr
	c.connecting = true
	l.conns++
	l.eng.conns.Add(1)
	l.register(fd, c)
	c.updateInterest()
	if c.closed {
		return nil, fmt.Errorf("engine: connect %s: poll failed", addr)
	}
	if timeout > 0 {
		c.SetTimeout(timeout)
	}
	return c, nil
}

func listenSocket(network string, addr *net.TCPAddr, backlog int) (int, *net.TCPAddr, error) {
	family := unix.AF_INET
	ip := addr.IP
	dual := false
	switch {
	case network == "tcp4":
	case ip == nil:
		family, dual = unix.AF_INET6, network == "tcp"
	case ip.To4() != nil:
	default:
		family, dual = unix.AF_INET6, network == "tcp" && ip.IsUnspecified()
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil && ip == nil && family == unix.AF_INET6 {
		family, dual = unix.AF_INET, false // no IPv6 on this host
		fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	}
	if err != nil {
		return -1, nil, err
	}
	fail := func(err error) (int, *net.TCPAddr, error) {
		unix.Close(fd)
		return -1, nil, err
	}
	if err := socket.SetReuseAddr(fd, 1); err != nil {
		return fail(err)
	}
	if err := socket.SetReuseport(fd, 1); err != nil {
		return fail(err)
	}
	if family == unix.AF_INET6 {
		v6only := 1
		if dual {
			v6only = 0
		}
		if err := socket.SetIPv6Only(fd, v6only); err != nil {
			return fail(err)
		}
	}
	var sa unix.Sockaddr
	if family == unix.AF_INET {
		s4 := &unix.SockaddrInet4{Port: addr.Port}
		if ip4 := ip.To4(); ip4 != nil {
			copy(s4.Addr[:], ip4)
		}
		sa = s4
	} else {
		s6 := &unix.SockaddrInet6{Port: addr.Port}
		if ip != nil && ip.To4() == nil {
			copy(s6.Addr[:], ip.To16())
		}
		sa = s6
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail(fmt.Errorf("bind: %w", err))
	}
	if err := unix.Listen(fd, backlog); err != nil {
		return fail(fmt.Errorf("listen: %w", err))
	}
	bound, err := unix.Getsockname(fd)
	if err != nil {
		return fail(err)
	}
	ap := sockaddrToAddrPort(bound)
	return fd, net.TCPAddrFromAddrPort(ap), nil
}

func sockaddrToAddrPort(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		a := netip.AddrFrom16(sa.Addr)
		if a.Is4In6() {
			a = a.Unmap()
		}
		return netip.AddrPortFrom(a, uint16(sa.Port))
	}
	return netip.AddrPort{}
}

func addrPortToSockaddr(ap netip.AddrPort) unix.Sockaddr {
	a := ap.Addr()
	if a.Is4() || a.Is4In6() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.Unmap().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
}

// nopHandler is used for connections closed before they got a handler.
type nopHandler struct{}

func (nopHandler) OnOpen(*Conn)             {}
func (nopHandler) OnData(*Conn, []byte) int { return 0 }
func (nopHandler) OnEOF(*Conn)              {}
func (nopHandler) OnDrain(*Conn)            {}
func (nopHandler) OnTimeout(*Conn)          {}
func (nopHandler) OnClose(*Conn, error)     {}
