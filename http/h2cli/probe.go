package h2cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/net/http2/hpack"

	"github.com/plb/plb/health"
	"github.com/plb/plb/http/h2"
)

// Probe is the http check over HTTP/2 (backend_protocol h2c, or h2 with
// TLS set): the request of health.HTTP, as a stream on a connection of
// its own, judged as health.HTTP judges its answer.
type Probe struct {
	health.HTTP
	// TLS is the client config of h2 (nil: h2c): ALPN h2 is asked for,
	// and without a ServerName (and with verification) the node's IP is
	// what its certificate must name, as for the proxy's connections.
	TLS *tls.Config
}

var _ health.Probe = Probe{}

// Check implements health.Probe.
func (p Probe) Check(ctx context.Context, addr netip.AddrPort) error {
	c, done, err := health.DialTLS(ctx, addr, p.TLS, "h2")
	if err != nil {
		return err
	}
	defer done()
	if tc, ok := c.(*tls.Conn); ok && tc.ConnectionState().NegotiatedProtocol != "h2" {
		return ErrNoH2
	}
	method, target := p.Request()
	code, err := h2Status(c, method, target, p.HostFor(addr))
	if err != nil {
		return err
	}
	return p.Judge(code)
}

func (p Probe) String() string {
	m, t := p.Request()
	if p.TLS != nil {
		return "h2 " + m + " " + t
	}
	return "h2c " + m + " " + t
}

// maxH2Read bounds what an h2c probe reads before its answer's head.
const maxH2Read = 256 << 10

// errH2Reset is a probe's stream reset, or its connection ended, before
// an answer.
var errH2Reset = errors.New("h2cli: HTTP/2 stream reset before an answer")

// h2Status sends one request over HTTP/2 with prior knowledge on c and
// returns the status of its answer (the final one, not an interim 1xx).
// c's deadline bounds it.
func h2Status(c net.Conn, method, target, host string) (int, error) {
	ph := &h2Probe{}
	cc := h2.NewClientConn(connOutput{c}, ph, h2.Limits{MaxHeaderListSize: 16 << 10})
	cc.Open([]hpack.HeaderField{
		{Name: ":method", Value: method}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: host}, {Name: ":path", Value: target},
		{Name: "user-agent", Value: "plb-health"},
	}, true)
	buf := make([]byte, 0, 32<<10)
	read := 0
	for ph.status == 0 {
		if ph.err != nil {
			return 0, ph.err
		}
		if len(buf) == cap(buf) || read > maxH2Read {
			return 0, fmt.Errorf("%w: no answer in %d bytes", health.ErrBadStatus, read)
		}
		n, err := c.Read(buf[len(buf):cap(buf)])
		read += n
		buf = buf[:len(buf)+n]
		used, ferr := cc.Feed(buf)
		buf = buf[:copy(buf, buf[used:])]
		if ferr != nil {
			return 0, fmt.Errorf("%w: HTTP/2 connection error %s", health.ErrBadStatus, cc.Err)
		}
		if ph.status == 0 && err != nil {
			return 0, fmt.Errorf("reading status: %w", err)
		}
	}
	return ph.status, nil
}

// connOutput writes a probe's frames to its connection.
type connOutput struct{ c net.Conn }

func (o connOutput) Write(p []byte) error {
	_, err := o.c.Write(p)
	return err
}
func (o connOutput) Buffered() int { return 0 }

// h2Probe is the probe's stream handler: the status it got, or why none.
type h2Probe struct {
	status int
	err    error
}

func (p *h2Probe) Response(_ *h2.Stream, code int, _ []hpack.HeaderField, _ bool) {
	if code >= 200 {
		p.status = code
	}
}
func (p *h2Probe) Data(s *h2.Stream, b []byte, _ bool) { s.Consumed(len(b)) }
func (p *h2Probe) Closed(_ *h2.Stream, code h2.ErrCode) {
	p.err = fmt.Errorf("%w (%s)", errH2Reset, code)
}
