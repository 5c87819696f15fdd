package testutil

import (
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// ServeConns listens on 127.0.0.1:0 and hands each connection to handle,
// one at a time, until the test ends; it returns the address.
func ServeConns(t *testing.T, handle func(net.Conn)) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			handle(c)
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// ClosedAddr returns a loopback address nothing listens on (one that was
// just closed).
func ClosedAddr(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	return a
}

// QuietPort returns a free loopback port outside the kernel's ephemeral
// range (32768-60999), for servers that must be told their port.
func QuietPort(t testing.TB) int {
	t.Helper()
	for i := 0; i < 200; i++ {
		p := 20000 + mrand.IntN(12000)
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			ln.Close()
			return p
		}
	}
	t.Fatal("no free port between 20000 and 32000")
	return 0
}

// StartMemcached starts Debian's memcached on a quiet loopback port until
// the test ends and returns its address; without memcached the test is
// skipped (failed under CI, whose .ci/run installs it). stop kills it.
func StartMemcached(t testing.TB) (addr string, stop func()) {
	t.Helper()
	bin, err := exec.LookPath("memcached")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("memcached is not installed (.ci/run installs it)")
		}
		t.Skip("memcached is not installed")
	}
	port := QuietPort(t)
	cmd := exec.Command(bin, "-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-m", "16", "-u", "root")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop = sync.OnceFunc(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	t.Cleanup(stop)
	addr = "127.0.0.1:" + strconv.Itoa(port)
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, stop
		}
		if i == 50 {
			t.Fatal("memcached does not listen")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
