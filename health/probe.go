package health

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/plb/plb/config"
)

// Probe checks one node: TCP, HTTP, a protocol package's (smtp.Probe) or
// an embedder's own.
type Probe interface {
	// Check returns nil when the node at addr is healthy. It returns when
	// ctx is done at the latest. Safe from any goroutine.
	Check(ctx context.Context, addr netip.AddrPort) error
	// String names the probe in logs and reasons ("tcp", "http GET /ping").
	String() string
}

// Check kinds of a pool (its check key) that health's own probes answer.
const (
	CheckTCP  = "tcp"
	CheckHTTP = "http"
)

// ProbeMaker makes the probe of a pool's check from the pool's settings
// (check_path and whatever else of the pool the probe reads).
type ProbeMaker func(pc *config.Pool) (Probe, error)

// Probes is a name table: a pool's check key to the maker of its probe.
// NewProbes makes one with health's own probes; a protocol's probe is
// supplied by its package and added by whoever builds the table (the
// server adds smtp's "smtp"). A table is not changed once in use.
type Probes map[string]ProbeMaker

// NewProbes returns a new table of health's own probes: "tcp" (TCP) and
// "http" (HTTP with the pool's check_path).
func NewProbes() Probes {
	return Probes{
		CheckTCP:  newTCP,
		CheckHTTP: newHTTP,
	}
}

// New returns the probe of pc's check key ("" is "tcp").
func (t Probes) New(pc *config.Pool) (Probe, error) {
	kind := pc.Check
	if kind == "" {
		kind = CheckTCP
	}
	if mk := t[kind]; mk != nil {
		return mk(pc)
	}
	return nil, fmt.Errorf("health: unknown check %q", pc.Check)
}

// Dial connects to addr for a probe whose reads and writes end when ctx
// does (its deadline, or its cancellation); done closes the connection.
func Dial(ctx context.Context, addr netip.AddrPort) (c net.Conn, done func(), err error) {
	var d net.Dialer
	c, err = d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return nil, nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	return c, func() { stop(); c.Close() }, nil
}

// DialTLS is Dial, then, when cfg is set, a TLS handshake with NodeTLS's
// config, asking for proto by ALPN.
func DialTLS(ctx context.Context, addr netip.AddrPort, cfg *tls.Config, proto string) (c net.Conn, done func(), err error) {
	c, done, err = Dial(ctx, addr)
	if err != nil || cfg == nil {
		return c, done, err
	}
	tc := tls.Client(c, NodeTLS(cfg, addr.Addr(), proto))
	if err := tc.HandshakeContext(ctx); err != nil {
		done()
		return nil, nil, err
	}
	return tc, done, nil
}

// NodeTLS is cfg for a connection to the node at ip, asking for proto by
// ALPN ("": cfg's own protocols): without a ServerName (and with
// verification) the node's IP is what its certificate must name. The
// proxy's connections, the HTTP/2 ones and the probes all verify a node
// so. cfg itself when nothing changes, else a copy.
func NodeTLS(cfg *tls.Config, ip netip.Addr, proto string) *tls.Config {
	byIP := cfg.ServerName == "" && !cfg.InsecureSkipVerify
	if !byIP && proto == "" {
		return cfg
	}
	c := cfg.Clone()
	if byIP {
		c.ServerName = ip.String()
	}
	if proto != "" {
		c.NextProtos = []string{proto}
	}
	return c
}

// NewProbeError returns the sentinel of a protocol probe's own failures
// (a bad reply, not the network's refusal or timeout): Describe gives an
// error wrapping it without text and ": " in front ("health: smtp: banner
// 554 ..." is described "banner 554 ...").
func NewProbeError(text string) error { return &probeError{text: text} }

type probeError struct{ text string }

func (e *probeError) Error() string { return e.text }

// describer is an error that names itself in Describe (a protocol probe's
// timeout naming its step, "timeout waiting for banner reply").
type describer interface{ Describe() string }

// ProbeFunc adapts a function to Probe (tests, embedders).
type ProbeFunc func(ctx context.Context, addr netip.AddrPort) error

var _ Probe = ProbeFunc(nil)

// Check implements Probe.
func (f ProbeFunc) Check(ctx context.Context, addr netip.AddrPort) error { return f(ctx, addr) }

func (ProbeFunc) String() string { return "probe" }
