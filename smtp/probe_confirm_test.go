package smtp

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/health"
	"github.com/plb/plb/internal/testutil"
	"github.com/plb/plb/pool"
)

// TestSMTPPolicyConfirmIsSMTP: an smtp_proxy's pool confirms suspects and
// brings down nodes back with the SMTP probe, never a bare TCP connect.
func TestSMTPPolicyConfirmIsSMTP(t *testing.T) {
	p, err := PolicyFor(&config.Pool{Name: "mx"}, probeTable(), "plb.test", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Confirm.(Probe); !ok {
		t.Fatalf("probe %v, confirm %v: a down SMTP node comes back on a TCP connect", p.Probe, p.Confirm)
	}
}

// TestSMTPNodeNotRevivedByTCP: end to end, a mail server that accepts and
// greets 421 (it refuses service) stays down.
func TestSMTPNodeNotRevivedByTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("421 mx.test Service not available\r\n"))
			c.Close()
		}
	}()
	pol, err := PolicyFor(&config.Pool{Name: "mx", TimeoutCleanup: time.Second}, probeTable(), "plb.test", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := pol.Probe.Check(context.Background(), netip.MustParseAddrPort(ln.Addr().String())); err == nil {
		t.Fatal("the SMTP probe passes a 421 greeting")
	}
	p, _ := pool.New("mx", "least_conn")
	p.SetNodes([]string{ln.Addr().String()})
	n := p.Nodes()[0]
	clock := testutil.NewClock(time.Unix(1000, 0))
	m := &health.Monitor{Now: clock.Now}
	n.MarkDown("smtp probe failed", clock.Now())
	for i := 0; i < 4; i++ {
		m.Tick(context.Background(), []health.Target{{Pool: p, Policy: pol}})
		m.Wait()
		clock.Advance(2 * time.Second)
	}
	if !n.Down() {
		t.Fatalf("an SMTP node that greets 421 came back up: %q", n.LastTransition().Reason)
	}
}
