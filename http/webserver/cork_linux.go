package webserver

import "golang.org/x/sys/unix"

// setCork sets or clears TCP_CORK on a socket.
func setCork(fd int, on bool) bool {
	v := 0
	if on {
		v = 1
	}
	return unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_CORK, v) == nil
}
