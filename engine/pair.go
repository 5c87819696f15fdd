//go:build linux

package engine

import (
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Pair makes a connected pair of local stream sockets on loop l: inner,
// whose handler accept returns as for a client that connected from
// remote (RemoteAddr is remote; TLS reports secure, the state of the
// client's own connection), and outer, whose handler is h. A codec that
// carries several exchanges on one client connection (HTTP/2) gives each
// to a role through a pair: the role reads and writes inner as it would
// a client, the codec outer. Neither counts against a listener's or the
// engine's client cap: the client's connection does. outer's OnOpen
// comes first, then inner's. An error means neither was made; accept
// returning nil closes both. Runs on the loop.
func (l *Loop) Pair(remote netip.AddrPort, secure bool, accept func(*Conn) Handler, h Handler) (inner, outer *Conn, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("engine: socketpair: %w", err)
	}
	outer = l.adopt(fds[1], remote, h)
	inner = l.adopt(fds[0], remote, nil)
	inner.secure = secure
	ih := accept(inner)
	if ih == nil {
		inner.h = nopHandler{}
		inner.destroy(nil)
		outer.destroy(nil)
		return nil, nil, fmt.Errorf("engine: pair refused")
	}
	inner.h = ih
	outer.updateInterest()
	inner.updateInterest()
	if outer.closed || inner.closed {
		inner.destroy(nil)
		outer.destroy(nil)
		return nil, nil, fmt.Errorf("engine: pair: poll failed")
	}
	h.OnOpen(outer)
	if !inner.closed {
		ih.OnOpen(inner)
	}
	return inner, outer, nil
}

// adopt makes a connection of fd on l, registered but not yet polled.
func (l *Loop) adopt(fd int, remote netip.AddrPort, h Handler) *Conn {
	c := newConn(l, fd, h)
	c.remote = remote
	l.conns++
	l.eng.conns.Add(1)
	l.register(fd, c)
	return c
}
