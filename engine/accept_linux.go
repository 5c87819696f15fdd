package engine

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// accept4 accepts a connection on the listening socket fd (non-blocking,
// close-on-exec) and returns its peer's address. It is unix.Accept4
// without the getsockopt(SO_PROTOCOL) that x/sys makes for every IPv4 or
// IPv6 peer (to tell an L2TP socket apart): one system call fewer per
// client on a TCP listener. A raw system call, as readFd: every listener
// is non-blocking.
func accept4(fd int) (int, netip.AddrPort, error) {
	var rsa unix.RawSockaddrAny
	l := uint32(unix.SizeofSockaddrAny)
	for {
		nfd, _, errno := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&l)),
			unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return -1, netip.AddrPort{}, errno
		}
		return int(nfd), rawToAddrPort(&rsa), nil
	}
}

// rawToAddrPort reads an IPv4 or IPv6 socket address (zero for others),
// an IPv4-mapped one as IPv4, as sockaddrToAddrPort does.
func rawToAddrPort(rsa *unix.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		port := uint16(p.Port>>8) | uint16(p.Port<<8) // network byte order
		return netip.AddrPortFrom(netip.AddrFrom4(p.Addr), port)
	case unix.AF_INET6:
		p := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		port := uint16(p.Port>>8) | uint16(p.Port<<8)
		return netip.AddrPortFrom(netip.AddrFrom16(p.Addr).Unmap(), port)
	}
	return netip.AddrPort{}
}
