package testutil

import (
	"net"
	"net/netip"
	"testing"
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
