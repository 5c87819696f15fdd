package engine

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// echoOn listens on addr with an echo handler.
func echoOn(t *testing.T, e *Engine, cfg ListenConfig) *Listener {
	t.Helper()
	cfg.OnAccept = func(*Conn) Handler { return echoHandler() }
	ln, err := e.Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ln.Close)
	return ln
}

// checkEcho dials addr and expects its bytes back.
func checkEcho(t *testing.T, network, addr string) {
	t.Helper()
	nc, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	msg := []byte("ping " + addr)
	if _, err := nc.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(nc, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo on %s: %q, %v", addr, got, err)
	}
}

// inheritFrom returns a descriptor for a listening socket the test made, as
// a service manager would pass it.
func inheritFrom(t *testing.T, network, addr string) (int, string) {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	defer l.Close() // the descriptor below keeps the socket
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return int(f.Fd()), l.Addr().String()
}

// TestInheritAdopt: a listener on an inherited socket's address adopts it
// instead of binding (which would fail: the socket has no SO_REUSEPORT),
// and every loop accepts on it.
func TestInheritAdopt(t *testing.T) {
	fd, addr := inheritFrom(t, "tcp", "127.0.0.1:0")
	wild, wildAddr := inheritFrom(t, "tcp", "[::]:0")
	socks, err := Inherit([]int{fd, wild}, []string{"web"})
	if err != nil || len(socks) != 2 {
		t.Fatalf("Inherit: %v, %d sockets", err, len(socks))
	}
	if socks[0].Name != "web" || socks[0].Addr.String() != addr || socks[1].Name != "" {
		t.Fatalf("inherited %+v %+v", socks[0], socks[1])
	}
	e := runEngine(t, Config{Loops: 2, Tick: 10 * time.Millisecond, Inherited: socks})
	ln := echoOn(t, e, ListenConfig{Addr: addr})
	if ln.Inherited() != socks[0] || !socks[0].Used() || ln.Addr().String() != addr {
		t.Fatalf("listener on %s: inherited %v, addr %v", addr, ln.Inherited(), ln.Addr())
	}
	for range 8 { // both loops' duplicates
		checkEcho(t, "tcp", addr)
	}
	// A wildcard listener adopts the wildcard socket, whatever its family.
	_, port, _ := net.SplitHostPort(wildAddr)
	ln2 := echoOn(t, e, ListenConfig{Addr: "0.0.0.0:" + port})
	if ln2.Inherited() != socks[1] {
		t.Fatalf("0.0.0.0:%s did not adopt %s", port, wildAddr)
	}
	checkEcho(t, "tcp", "127.0.0.1:"+port)
	// Closing the listener leaves the inherited socket open: a reload may
	// listen there again.
	ln.Close()
	ln3 := echoOn(t, e, ListenConfig{Addr: addr})
	if ln3.Inherited() != socks[0] {
		t.Fatal("not adopted again after a close")
	}
	checkEcho(t, "tcp", addr)
	// Other addresses bind as usual.
	ln4 := echoOn(t, e, ListenConfig{Addr: "127.0.0.1:0"})
	if ln4.Inherited() != nil {
		t.Fatal("port 0 adopted an inherited socket")
	}
}

// TestInheritRejects: descriptors that are not listening TCP sockets are
// reported and left alone.
func TestInheritRejects(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	c, err := net.Dial("tcp", freeListener(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cf, _ := c.(*net.TCPConn).File()
	defer cf.Close()
	fd, _ := inheritFrom(t, "tcp", "127.0.0.1:0")
	socks, err := Inherit([]int{int(r.Fd()), int(cf.Fd()), fd}, nil)
	if len(socks) != 1 || socks[0].FD != fd {
		t.Fatalf("registered %v", socks)
	}
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("fd %d", r.Fd())) ||
		!strings.Contains(err.Error(), "not a listening socket") {
		t.Fatalf("error %v", err)
	}
}

// freeListener returns the address of a Go listener that accepts nothing.
func freeListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().String()
}

// TestBacklog: the listen(2) backlog is the one configured, on every
// loop's socket (ss shows it as a listening socket's Send-Q).
func TestBacklog(t *testing.T) {
	if _, err := exec.LookPath("ss"); err != nil {
		t.Skip("ss (iproute2) not installed")
	}
	e := startEngine(t, 2)
	ln := echoOn(t, e, ListenConfig{Addr: "127.0.0.1:0", Backlog: 37})
	port := ln.Addr().Port
	out, err := exec.Command("ss", "-ltnH", fmt.Sprintf("sport = :%d", port)).CombinedOutput()
	if err != nil {
		t.Skipf("ss: %v %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one listening socket per loop, ss says:\n%s", out)
	}
	for _, line := range lines {
		if f := strings.Fields(line); len(f) < 4 || f[2] != "37" {
			t.Fatalf("backlog (Send-Q) not 37:\n%s", out)
		}
	}
}

// TestIPv6 listens on [::1] and dials an IPv6 node from a loop.
func TestIPv6(t *testing.T) {
	back, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 on lo: %v", err)
	}
	defer back.Close()
	go func() {
		for {
			c, err := back.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "from v6")
			c.Close()
		}
	}()
	e := startEngine(t, 2)
	ln := echoOn(t, e, ListenConfig{Addr: "[::1]:0"})
	if !ln.Addr().AddrPort().Addr().Is6() || ln.Addr().IP.String() != "::1" {
		t.Fatalf("bound %v", ln.Addr())
	}
	checkEcho(t, "tcp6", ln.Addr().String())
	got := make(chan string, 1)
	ap := netip.MustParseAddrPort(back.Addr().String())
	e.Loops()[0].Run(func() {
		var buf []byte
		_, err := e.Loops()[0].Dial(ap, &funcHandler{
			data:   func(c *Conn, p []byte) int { buf = append(buf, p...); return len(p) },
			eof:    func(c *Conn) { c.Close() },
			closed: func(_ *Conn, err error) { got <- fmt.Sprint(string(buf), err) },
		}, 5*time.Second)
		if err != nil {
			got <- err.Error()
		}
	})
	select {
	case s := <-got:
		if s != "from v6<nil>" {
			t.Fatalf("dial [::1]: %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("dial [::1]: no answer")
	}
}

// TestListenBusy: an address another socket listens on is refused, even
// though the loops' sockets use SO_REUSEPORT (which would join another
// process's listeners); the process's own listeners may share one (a
// service changing role on reload opens its new listener first).
func TestListenBusy(t *testing.T) {
	busy := freeListener(t)
	e := startEngine(t, 2)
	_, err := e.Listen(ListenConfig{Addr: busy, OnAccept: func(*Conn) Handler { return nil }})
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("listen on a busy address: %v", err)
	}
	ln := echoOn(t, e, ListenConfig{Addr: "127.0.0.1:0"})
	ln2 := echoOn(t, e, ListenConfig{Addr: ln.Addr().String()})
	for range 4 {
		checkEcho(t, "tcp", ln2.Addr().String())
	}
}

// TestRemoteUnmapped: an IPv4 client of a dual-stack listener has an IPv4
// remote address, not an IPv4-mapped IPv6 one.
func TestRemoteUnmapped(t *testing.T) {
	e := startEngine(t, 1)
	got := make(chan netip.AddrPort, 1)
	ln, err := e.Listen(ListenConfig{Addr: "[::]:0", OnAccept: func(c *Conn) Handler {
		got <- c.RemoteAddr()
		return echoHandler()
	}})
	if err != nil {
		t.Skipf("no dual-stack listener: %v", err)
	}
	t.Cleanup(ln.Close)
	nc, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", ln.Addr().Port))
	if err != nil {
		t.Skipf("no IPv4 to a [::] listener: %v", err)
	}
	defer nc.Close()
	select {
	case ap := <-got:
		if !ap.Addr().Is4() || ap.Addr().String() != "127.0.0.1" {
			t.Fatalf("remote %v, want 127.0.0.1", ap)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not accepted")
	}
}

// TestInheritSeveralSockets: a binary upgrade hands over each loop's
// SO_REUSEPORT socket of an address, each with its own queue; an engine
// with fewer loops accepts on all of them, and hands every socket back
// for the next upgrade (ListenerFiles).
func TestInheritSeveralSockets(t *testing.T) {
	var fds []int
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
	for range 3 {
		fd, bound, err := bindSocket("tcp", addr, 64, true)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		addr = bound
		fds = append(fds, fd)
	}
	socks, err := Inherit(fds, nil)
	if err != nil || len(socks) != 3 {
		t.Fatalf("Inherit: %v, %d", err, len(socks))
	}
	e := runEngine(t, Config{Loops: 2, Tick: 10 * time.Millisecond, Inherited: socks})
	echoOn(t, e, ListenConfig{Addr: addr.String()})
	for _, is := range socks {
		if !is.Used() {
			t.Fatalf("socket %d not adopted", is.FD)
		}
	}
	// The kernel spreads new clients over the three queues: every one is
	// answered.
	for range 30 {
		checkEcho(t, "tcp", addr.String())
	}
	files, err := e.ListenerFiles()
	if err != nil || len(files) != 3 {
		t.Fatalf("ListenerFiles: %v, %d files", err, len(files))
	}
	for _, f := range files {
		f.Close()
	}
}
