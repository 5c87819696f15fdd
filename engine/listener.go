//go:build linux

package engine

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

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
	// At the cap a new client is refused cleanly: accepted and closed at
	// once (a FIN, its early input read and discarded so it gets no RST),
	// with a warning logged at most every 10 s; the connections already
	// open are not touched. Clients therefore learn at once instead of
	// waiting in the backlog for a slot.
	MaxConns int
	// Exempt keeps the listener's clients out of the engine's client cap
	// (SetMaxClients), so a flood of clients cannot lock out the console.
	Exempt bool
	// SndBuf sets SO_SNDBUF on accepted sockets when > 0.
	SndBuf int
	// OnAccept runs on the accepting loop and returns the connection's
	// handler; nil closes the connection at once.
	OnAccept func(c *Conn) Handler
}

// Listener is one service's listening address: one SO_REUSEPORT socket per
// loop, so each loop accepts for itself, or, for an inherited socket (see
// Inherit), one duplicate of it per loop.
type Listener struct {
	eng    *Engine
	cfg    ListenConfig
	addr   *net.TCPAddr
	socks  []*lsock
	conns  atomic.Int64
	closed atomic.Bool
	// created is when Listen bound it (for the console's socks).
	created time.Time
	// inherited is the socket adopted instead of binding (nil: bound);
	// inheritedAll every one of its address.
	inherited    *InheritedSocket
	inheritedAll []*InheritedSocket
	// open counts the sockets not closed yet.
	open atomic.Int32

	// refusing counts the clients refused at MaxConns that are still
	// lingering (its connClosed is theirs, so they do not count against
	// the cap); refused counts every refusal, refusedSince those since the
	// last warning, at lastWarn (a Loop.Clock reading).
	refusing     *Listener
	refused      atomic.Int64
	refusedSince atomic.Int64
	lastWarn     atomic.Int64
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

const (
	// acceptPause is how long a loop stops accepting after EMFILE/ENFILE.
	acceptPause = 100 * time.Millisecond
	// refuseWarnEvery rate-limits the "max_clients reached" warning.
	refuseWarnEvery = 10 * time.Second
	// refuseLingerMax bounds the refused clients of a listener that linger
	// (reading until the peer closes, at most Config.LingerTimeout); beyond
	// it a refused client's socket is closed at once, so a flood cannot
	// eat the descriptors the open connections need.
	refuseLingerMax = 128
)

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
	ln := &Listener{eng: e, cfg: cfg, created: e.cfg.Now(), refusing: &Listener{}}
	fds := make([]int, 0, len(e.loops))
	if iss := e.findInherited(cfg.Network, addr); len(iss) > 0 {
		// Socket activation: every loop accepts on a duplicate of the
		// inherited socket (one accept queue; the loops race for each
		// client, the losers get EAGAIN). Binding SO_REUSEPORT siblings
		// instead would need the manager's socket to have SO_REUSEPORT
		// and the privileges to bind the port. Several sockets of one
		// address (a binary upgrade hands over each loop's SO_REUSEPORT
		// socket, each with its own queue) are all accepted on, spread
		// over the loops: none is left with clients nobody takes.
		for i := range max(len(e.loops), len(iss)) {
			is := iss[i%len(iss)]
			fd, err := unix.FcntlInt(uintptr(is.FD), unix.F_DUPFD_CLOEXEC, 0)
			if err != nil {
				for _, fd := range fds {
					unix.Close(fd)
				}
				return nil, fmt.Errorf("engine: listen %s: inherited fd %d: %w", cfg.Addr, is.FD, err)
			}
			fds = append(fds, fd)
		}
		for _, is := range iss {
			is.used.Add(1)
		}
		ln.inherited, ln.inheritedAll, ln.addr = iss[0], iss, iss[0].Addr
		e.log.Info("listening on an inherited socket", "addr", iss[0].Addr.String(), "fd", iss[0].FD, "name", iss[0].Name, "sockets", len(iss))
	}
	if ln.inherited == nil && addr.Port != 0 && !e.ownListener(addr) {
		// SO_REUSEPORT would let this join another process's listeners
		// on the port (a second plb started by mistake, sharing the
		// traffic): a plain bind first finds it in use.
		if _, _, err := bindSocket(cfg.Network, addr, 0, false); err != nil {
			return nil, fmt.Errorf("engine: listen %s: %w", cfg.Addr, err)
		}
	}
	for len(fds) < len(e.loops) {
		fd, bound, err := bindSocket(cfg.Network, addr, cfg.Backlog, true)
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
	e.lnMu.Lock()
	e.listening[ln] = struct{}{}
	e.lnMu.Unlock()
	ln.open.Store(int32(len(fds)))
	for i, fd := range fds {
		s := &lsock{fd: fd, loop: e.loops[i%len(e.loops)], ln: ln}
		ln.socks = append(ln.socks, s)
	}
	for _, s := range ln.socks {
		if !s.loop.Run(s.start) {
			s.close() // loop gone
		}
	}
	return ln, nil
}

// ownListener reports whether one of the engine's listeners has a port
// and address that overlap addr's (a reload moving a service to a new
// role opens its listener before closing the old one).
func (e *Engine) ownListener(addr *net.TCPAddr) bool {
	e.lnMu.Lock()
	defer e.lnMu.Unlock()
	for ln := range e.listening {
		a := ln.addr
		if a.Port == addr.Port && (addr.IP == nil || addr.IP.IsUnspecified() || a.IP.IsUnspecified() || a.IP.Equal(addr.IP)) {
			return true
		}
	}
	return false
}

// Addr returns the bound address (with the real port when 0 was asked).
// Safe from any goroutine.
func (ln *Listener) Addr() *net.TCPAddr { return ln.addr }

// Conns returns the number of open accepted connections. Safe from any
// goroutine.
func (ln *Listener) Conns() int64 { return ln.conns.Load() }

// Refused returns how many clients were refused because the listener was
// at MaxConns. Safe from any goroutine.
func (ln *Listener) Refused() int64 { return ln.refused.Load() }

// Inherited returns the inherited socket the listener accepts on, or nil
// when it bound its own. Safe from any goroutine.
func (ln *Listener) Inherited() *InheritedSocket { return ln.inherited }

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
	if err := s.loop.poller.add(s.fd, unix.EPOLLIN); err != nil {
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
		s.loop.poller.del(s.fd)
	}
	s.loop.unregister(s.fd)
	unix.Close(s.fd)
	if e := s.ln.eng; s.ln.open.Add(-1) == 0 {
		e.lnMu.Lock()
		delete(e.listening, s.ln)
		e.lnMu.Unlock()
	}
}

func (s *lsock) pause(d time.Duration) {
	if s.paused || s.closed {
		return
	}
	s.paused = true
	s.loop.poller.del(s.fd)
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
	if err := s.loop.poller.add(s.fd, unix.EPOLLIN); err != nil {
		s.loop.log.Error("listener not polled", "addr", s.ln.addr, "err", err)
	}
}

func (s *lsock) onEvent(uint32) {
	l := s.loop
	ln := s.ln
	for i := 0; i < 64 && !s.closed; i++ {
		nfd, remote, err := accept4(s.fd)
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
		if limit := ln.reserve(); limit != 0 {
			ln.refuse(l, nfd, remote, limit)
			continue
		}
		if ln.inherited != nil {
			socket.SetNoDelay(nfd, 1) // the manager's socket may lack it
		}
		if ln.cfg.SndBuf > 0 {
			socket.SetSendBuffer(nfd, ln.cfg.SndBuf)
		}
		c := newConn(l, nfd, nil)
		c.ln = ln
		c.remote = remote
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

// reserve counts one more open connection unless the listener is at
// MaxConns or the engine at its client cap (exact over all loops); it
// returns the cap that was reached (0: none, the connection is counted).
func (ln *Listener) reserve() int64 {
	if !ln.cfg.Exempt {
		if max := ln.eng.maxClients.Load(); !take(&ln.eng.clients, max) {
			return max
		}
	}
	if max := int64(ln.cfg.MaxConns); !take(&ln.conns, max) {
		if !ln.cfg.Exempt {
			ln.eng.clients.Add(-1)
		}
		return max
	}
	return 0
}

// take adds one to n unless that would pass max (0: no limit).
func take(n *atomic.Int64, max int64) bool {
	for {
		v := n.Load()
		if max > 0 && v >= max {
			return false
		}
		if n.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

// refuse turns away a client accepted at MaxConns: a FIN at once, so it
// learns now rather than after waiting in the backlog. Its input is read
// and discarded until it closes (at most Config.LingerTimeout), so it gets
// no RST for a request it had already sent. Runs on the loop.
func (ln *Listener) refuse(l *Loop, fd int, remote netip.AddrPort, limit int64) {
	ln.refused.Add(1)
	ln.refusedSince.Add(1)
	now := l.Clock() // the monotonic clock: a step of the wall clock does not silence it
	if last := ln.lastWarn.Load(); (last == 0 || now-last >= int64(refuseWarnEvery)) && ln.lastWarn.CompareAndSwap(last, now) {
		l.log.Warn("max_clients reached: refusing new clients", "addr", ln.addr, "max_clients", limit,
			"refused", ln.refusedSince.Swap(0))
	}
	if ln.refusing.conns.Load() >= refuseLingerMax {
		// Too many lingering already: read what came, then close (a FIN
		// unless more input arrives later).
		for range 4 {
			if n, err := readFd(fd, l.readBuf); err != nil || n == 0 {
				break
			}
		}
		unix.Close(fd)
		return
	}
	c := newConn(l, fd, refusedHandler{})
	c.ln = ln.refusing // its close is not counted against the cap
	c.remote = remote
	ln.refusing.conns.Add(1)
	l.conns++
	l.eng.conns.Add(1)
	l.register(fd, c)
	c.Close() // FIN now, then linger reading until the peer's FIN
}

// refusedHandler is the handler of a client refused at MaxConns.
type refusedHandler struct{ nopHandler }

// Describe names the refused client for the console.
func (refusedHandler) Describe(*Conn) ConnInfo {
	return ConnInfo{Class: "plb::Refused", State: "refused", Detail: ": max_clients reached"}
}

// connClosed is called on loop l when one of ln's connections closed. A
// descriptor was freed: a socket paused on EMFILE may accept again.
func (ln *Listener) connClosed(l *Loop) {
	ln.conns.Add(-1)
	if ln.eng != nil && !ln.cfg.Exempt { // ln.refusing has no engine
		ln.eng.clients.Add(-1)
	}
	for _, s := range ln.socks {
		if s.loop == l && s.paused {
			s.unpause()
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

// bindSocket binds a socket to addr: with listen, an SO_REUSEPORT socket
// listening with backlog; without, a probe that is closed at once (it
// fails if anything listens there).
func bindSocket(network string, addr *net.TCPAddr, backlog int, listen bool) (int, *net.TCPAddr, error) {
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
	if listen {
		if err := socket.SetReuseport(fd, 1); err != nil {
			return fail(err)
		}
		// Accepted sockets inherit TCP_NODELAY from the listening one
		// (Linux): one setsockopt here instead of one per client.
		if err := socket.SetNoDelay(fd, 1); err != nil {
			return fail(err)
		}
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
	if !listen {
		unix.Close(fd)
		return -1, nil, nil
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

// InheritedSocket is a listening socket the process was given rather than
// one it bound: systemd socket activation (sd_listen_fds(3)) passes them
// as descriptors 3 and up. See Inherit.
type InheritedSocket struct {
	FD     int          // the descriptor as received (kept open)
	Name   string       // its LISTEN_FDNAMES entry ("" when none)
	Addr   *net.TCPAddr // its bound address (getsockname)
	used   atomic.Int64 // listeners that adopted it
	closed atomic.Bool  // Close: adopted by no listener
}

// Used reports whether a listener adopted the socket. Safe from any
// goroutine.
func (is *InheritedSocket) Used() bool { return is.used.Load() > 0 }

// Close closes a socket no listener adopted: no listener adopts it from
// then on. Safe from any goroutine, once the engine's first listeners are
// made.
func (is *InheritedSocket) Close() {
	if is.closed.CompareAndSwap(false, true) && !is.Used() {
		unix.Close(is.FD)
	}
}

// Inherit checks listening sockets the process inherited and describes
// them, for Config.Inherited. An engine's Listen then adopts one whose
// bound address matches the address asked instead of binding: same port,
// and the same IP, or both a wildcard ("0.0.0.0" and "::" match each
// other, as systemd's ListenStream=80 is a dual-stack [::]:80); a port 0
// never matches. Each loop accepts on a duplicate of the descriptor. The
// descriptors stay open (a reload may listen on the address again; the
// service manager keeps its own copy in any case); they are made
// non-blocking and close-on-exec. A descriptor that is not a listening TCP
// socket is left alone and reported in the error; the others are
// returned. names are the sockets' names (LISTEN_FDNAMES), if any. Safe
// from any goroutine.
func Inherit(fds []int, names []string) ([]*InheritedSocket, error) {
	var socks []*InheritedSocket
	var errs []error
	for i, fd := range fds {
		is := &InheritedSocket{FD: fd}
		if i < len(names) {
			is.Name = names[i]
		}
		addr, err := inheritedAddr(fd)
		if err != nil {
			errs = append(errs, fmt.Errorf("engine: inherited fd %d: %w", fd, err))
			continue
		}
		is.Addr = addr
		unix.CloseOnExec(fd)
		if err := unix.SetNonblock(fd, true); err != nil {
			errs = append(errs, fmt.Errorf("engine: inherited fd %d: %w", fd, err))
			continue
		}
		socks = append(socks, is)
	}
	return socks, errors.Join(errs...)
}

// inheritedAddr checks that fd is a listening TCP socket and returns its
// address.
func inheritedAddr(fd int) (*net.TCPAddr, error) {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return nil, err
	}
	if typ != unix.SOCK_STREAM {
		return nil, errors.New("not a stream socket")
	}
	if on, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || on == 0 {
		return nil, errors.New("not a listening socket")
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil, err
	}
	switch sa.(type) {
	case *unix.SockaddrInet4, *unix.SockaddrInet6:
	default:
		return nil, errors.New("not a TCP socket")
	}
	return net.TCPAddrFromAddrPort(sockaddrToAddrPort(sa)), nil
}

// findInherited returns the inherited sockets (Config.Inherited) for a
// listener on addr: usually one, several after a binary upgrade.
func (e *Engine) findInherited(network string, addr *net.TCPAddr) []*InheritedSocket {
	if addr.Port == 0 {
		return nil
	}
	var out []*InheritedSocket
	for _, is := range e.cfg.Inherited {
		if e.inheritedFits(is, network, addr) {
			out = append(out, is)
		}
	}
	return out
}

// inheritedFits reports whether is serves a listener on addr.
func (e *Engine) inheritedFits(is *InheritedSocket, network string, addr *net.TCPAddr) bool {
	if is.closed.Load() {
		return false
	}
	have := is.Addr
	if have.Port != addr.Port {
		return false
	}
	v4 := have.IP.To4() != nil
	if network == "tcp4" && !v4 || network == "tcp6" && v4 {
		return false
	}
	if addr.IP == nil || addr.IP.IsUnspecified() {
		return have.IP.IsUnspecified()
	}
	return addr.IP.Equal(have.IP)
}

// ListenerFiles returns duplicates of the sockets the open listeners
// accept on, for a binary upgrade to hand over: each loop's SO_REUSEPORT
// socket of a bound listener (each has its own queue), an adopted
// listener's inherited sockets. The caller closes them. Safe from any
// goroutine.
func (e *Engine) ListenerFiles() ([]*os.File, error) {
	e.lnMu.Lock()
	defer e.lnMu.Unlock()
	var out []*os.File
	add := func(fd int, name string) error {
		d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("engine: listener %s: %w", name, err)
		}
		out = append(out, os.NewFile(uintptr(d), name))
		return nil
	}
	for ln := range e.listening {
		if ln.closed.Load() {
			continue
		}
		var err error
		if ln.inherited != nil {
			for _, is := range ln.inheritedAll {
				if err = add(is.FD, ln.addr.String()); err != nil {
					break
				}
			}
		} else {
			for _, s := range ln.socks {
				if err = add(s.fd, ln.addr.String()); err != nil {
					break
				}
			}
		}
		if err != nil {
			for _, f := range out {
				f.Close()
			}
			return nil, err
		}
	}
	return out, nil
}
