package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/plb/plb/engine"
)

// notifier speaks systemd's sd_notify(3) protocol: datagrams of
// "KEY=VALUE" lines to $NOTIFY_SOCKET (Type=notify). The socket is
// connected once at start, so it still works after a chroot. A nil
// notifier does nothing.
type notifier struct {
	mu       sync.Mutex
	addr     *net.UnixAddr
	conn     *net.UnixConn
	stopOnce sync.Once
}

// newNotifier connects to $NOTIFY_SOCKET (a path, or "@name" for an
// abstract socket) and removes the variable from the environment, as
// sd_notify's unset_environment does. It returns nil without
// $NOTIFY_SOCKET.
func newNotifier() (*notifier, error) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil, nil
	}
	os.Unsetenv("NOTIFY_SOCKET")
	if path[0] != '/' && path[0] != '@' {
		return nil, fmt.Errorf("NOTIFY_SOCKET=%s: only unix sockets are supported", path)
	}
	n := &notifier{addr: &net.UnixAddr{Name: path, Net: "unixgram"}}
	conn, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return nil, err
	}
	n.conn = conn
	return n, nil
}

// send sends one notification (lines separated by "\n"). Errors are
// ignored, as sd_notify's callers do: systemd may be gone.
func (n *notifier) send(state string) {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, err := n.conn.Write([]byte(state)); err != nil {
		// systemd re-executed itself: connect again (impossible in a
		// chroot; then nothing more is said).
		if conn, err := net.DialUnix("unixgram", nil, n.addr); err == nil {
			n.conn.Close()
			n.conn = conn
			conn.Write([]byte(state))
		}
	}
}

// stopping sends STOPPING=1, once.
func (n *notifier) stopping() {
	if n == nil {
		return
	}
	n.stopOnce.Do(func() { n.send("STOPPING=1\nSTATUS=stopping") })
}

func (n *notifier) close() {
	if n != nil {
		n.conn.Close()
	}
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, for RELOADING=1
// (systemd 253 and later want it with the reload notification).
func monotonicUsec() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Sec*1e6 + ts.Nsec/1e3
}

// listenFDsStart is SD_LISTEN_FDS_START: the first passed descriptor.
const listenFDsStart = 3

// inheritListeners takes the listening sockets systemd passed (socket
// activation, sd_listen_fds(3)): when $LISTEN_PID is this process,
// descriptors 3 to 3+$LISTEN_FDS-1, named by $LISTEN_FDNAMES
// (colon-separated). The engine adopts each for the service whose listen
// address matches the socket's bound address, instead of binding. The
// variables are removed from the environment.
func inheritListeners(log *slog.Logger) []*engine.InheritedSocket {
	pid, nfds, names := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES")
	upgrade := os.Getenv(envUpgradeFDs)
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", envUpgradeFDs} {
		os.Unsetenv(k)
	}
	if upgrade != "" {
		// A binary upgrade's new process: the old one's listening sockets
		// (upgrade.go), by the same convention.
		nfds, pid, names = upgrade, strconv.Itoa(os.Getpid()), ""
	}
	if nfds == "" {
		return nil
	}
	if pid != strconv.Itoa(os.Getpid()) {
		log.Info("LISTEN_FDS is for another process; ignored", "LISTEN_PID", pid)
		return nil
	}
	n, err := strconv.Atoi(nfds)
	if err != nil || n <= 0 {
		log.Warn("LISTEN_FDS is not a positive number; ignored", "LISTEN_FDS", nfds)
		return nil
	}
	fds := make([]int, n)
	for i := range fds {
		fds[i] = listenFDsStart + i
	}
	var nameList []string
	if names != "" {
		nameList = strings.Split(names, ":")
	}
	socks, err := engine.Inherit(fds, nameList)
	if err != nil {
		log.Warn("socket activation: descriptors ignored", "err", err)
	}
	for _, is := range socks {
		log.Info("socket activation: inherited", "addr", is.Addr.String(), "fd", is.FD, "name", is.Name)
	}
	return socks
}
