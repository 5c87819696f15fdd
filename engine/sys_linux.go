//go:build linux

package engine

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The system calls a connection makes, each a small function, so that
// conn.go and conn_events.go read as the connection's logic.

// errAgain is what readFd returns when nothing is there to read.
const errAgain = unix.EAGAIN

// localAddrFd returns the socket's local address (getsockname).
func localAddrFd(fd int) netip.AddrPort {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}
	}
	return sockaddrToAddrPort(sa)
}

// peekFd asks the socket, without reading, whether a byte waits: quiet
// when none does (EAGAIN), spoke when one does.
func peekFd(fd int) (quiet, spoke bool) {
	var b [1]byte
	n, err := sockIO(unix.SYS_RECVFROM, fd, b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	return err == unix.EAGAIN, err == nil && n > 0
}

// quickAckFd acknowledges what was received at once (TCP_QUICKACK).
func quickAckFd(fd int) { unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1) }

// shutdownWriteFd sends the FIN (shutdown SHUT_WR).
func shutdownWriteFd(fd int) { unix.Shutdown(fd, unix.SHUT_WR) }

// closeFd closes the descriptor.
func closeFd(fd int) { unix.Close(fd) }

// connectErrFd is the outcome of a non-blocking connect (SO_ERROR): nil
// when it succeeded.
func connectErrFd(fd int) error {
	soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err == nil && soerr != 0 {
		err = unix.Errno(soerr)
	}
	return err
}

// readFd reads with recv(2) and writeFd writes with send(2): on a socket
// they skip the VFS layer read(2) and write(2) go through (HAProxy and nginx
// use them too), and MSG_NOSIGNAL spares the thread a SIGPIPE when the peer
// is gone. Every engine conn is a non-blocking socket, so these and writev
// are raw system calls: they never block, and the runtime's entersyscall and
// exitsyscall bookkeeping around each (about 1.5% of the CPU per SMTP
// message, bench/smtp.sh) buys nothing on a loop locked to its thread.
func readFd(fd int, p []byte) (int, error) {
	for {
		n, err := sockIO(unix.SYS_RECVFROM, fd, p, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		return n, nil
	}
}

func writeFd(fd int, p []byte) (int, error) { return sendFd(fd, p, unix.MSG_NOSIGNAL) }

// writeMoreFd is writeFd with MSG_MORE: the kernel holds a partial segment
// for what follows (a FIN, more bytes) until a send without it, a shutdown,
// a close or uncorkFd.
func writeMoreFd(fd int, p []byte) (int, error) {
	return sendFd(fd, p, unix.MSG_NOSIGNAL|unix.MSG_MORE)
}

// sendFd is send(2) with flags; a full socket is 0 bytes written.
func sendFd(fd int, p []byte, flags uintptr) (int, error) {
	for {
		n, err := sockIO(unix.SYS_SENDTO, fd, p, flags)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		return n, nil
	}
}

// uncorkFd sends what MSG_MORE held back: clearing TCP_CORK (never set
// here) pushes the pending segments and changes nothing else.
func uncorkFd(fd int) {
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_CORK, 0)
}

// sockIO is recvfrom(2) or sendto(2) on fd with no address.
func sockIO(trap uintptr, fd int, p []byte, flags uintptr) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	r, _, e := unix.RawSyscall6(trap, uintptr(fd), uintptr(ptr), uintptr(len(p)), flags, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// maxIov bounds one writev: the output queue gathers at most this many
// segments.
const maxIov = 16

func writevFd(fd int, iov [][]byte) (int, error) {
	var vec [maxIov]unix.Iovec
	n := 0
	for _, b := range iov {
		if len(b) == 0 || n == maxIov {
			continue
		}
		vec[n].Base = &b[0]
		vec[n].SetLen(len(b))
		n++
	}
	if n == 0 {
		return 0, nil
	}
	for {
		r, _, e := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&vec[0])), uintptr(n))
		if e == unix.EINTR {
			continue
		}
		if e == unix.EAGAIN {
			return 0, nil
		}
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	}
}
