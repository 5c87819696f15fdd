package health

import (
	"context"
	"net"
	"net/netip"

	"github.com/plb/plb/config"
)

// TCP succeeds when a TCP connect to the node completes (PLB's revival
// probe).
type TCP struct{}

var _ Probe = TCP{}

func newTCP(*config.Pool) (Probe, error) { return TCP{}, nil }

// Check implements Probe.
func (TCP) Check(ctx context.Context, addr netip.AddrPort) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return err
	}
	return c.Close()
}

func (TCP) String() string { return CheckTCP }
