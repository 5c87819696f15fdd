package smtp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/health"
	"github.com/plb/plb/smtp/proxyproto"
	"github.com/plb/plb/smtp/reply"
)

// NewProbe is the maker of an "smtp" check's probe (Probe{}: EHLO
// localhost, no PROXY header), for a health.Probes table; PolicyFor sets
// both for a pool an smtp_proxy uses.
func NewProbe(*config.Pool) (health.Probe, error) { return Probe{}, nil }

// Probe is HAProxy's "option smtpchk EHLO <Helo>": connect, send the PROXY
// header Proxy names (if any) in one write, expect a 2xx banner, send
// EHLO Helo and expect a 2xx reply (multi-line), send QUIT and expect a
// 2xx reply (221), close. Any other reply, a malformed or overlong one, the
// connection closing early or ctx ending fails the check; the error says
// which step ("banner 554", "EHLO 502", "malformed banner").
type Probe struct {
	// Helo is the EHLO argument (default DefaultHelo).
	Helo string
	// Proxy is the PROXY header sent first: "proxy_v1" (version 1 with the
	// check connection's own addresses, as HAProxy), "proxy_v2" (a version
	// 2 LOCAL header), or "" or "none" (no header).
	Proxy string
	// XClient requires XCLIENT in the EHLO reply: the service forwards the
	// client's address with it, and a relay that does not offer it would
	// fail every session.
	XClient bool
}

var _ health.Probe = Probe{}

// DefaultHelo is the EHLO argument of a Probe without Helo (as
// HAProxy's).
const DefaultHelo = "localhost"

// ErrSMTP is an SMTP probe's failure on the SMTP level: a reply that is
// not 2xx, a malformed or overlong reply, the node closing early, or an
// invalid Helo or Proxy.
var ErrSMTP = health.NewProbeError("health: smtp")

// Check implements health.Probe.
func (s Probe) Check(ctx context.Context, addr netip.AddrPort) error {
	helo, err := s.helo()
	if err != nil {
		return err
	}
	proxy, err := smtpProxy(s.Proxy)
	if err != nil {
		return err
	}
	c, done, err := health.Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer done()

	var hdr []byte
	switch proxy {
	case config.ForwardProxyV1:
		// PROXY UNKNOWN when an address is not TCP's.
		hdr = proxyproto.AppendV1(nil, tcpAddrPort(c.LocalAddr()), tcpAddrPort(c.RemoteAddr()))
	case config.ForwardProxyV2:
		hdr = proxyproto.AppendLocalV2(nil)
	}
	if hdr != nil {
		if _, err := c.Write(hdr); err != nil {
			return fmt.Errorf("%w: sending PROXY header: %w", ErrSMTP, err)
		}
	}

	r := smtpReader{c: c, buf: make([]byte, 0, reply.Max)}
	if err := r.expect2xx(ctx, "banner"); err != nil {
		return err
	}
	if _, err := c.Write([]byte("EHLO " + helo + "\r\n")); err != nil {
		return fmt.Errorf("%w: sending EHLO: %w", ErrSMTP, err)
	}
	ehlo, err := r.reply2xx(ctx, "EHLO")
	if err != nil {
		if hdr != nil {
			err = r.proxyAnswered(ctx, proxy, err)
		}
		return err
	}
	if s.XClient && !reply.HasExtension(ehlo, []byte("XCLIENT")) {
		return fmt.Errorf("%w: XCLIENT not offered in the EHLO reply", ErrSMTP)
	}
	if _, err := c.Write([]byte("QUIT\r\n")); err != nil {
		return fmt.Errorf("%w: sending QUIT: %w", ErrSMTP, err)
	}
	return r.expect2xx(ctx, "QUIT")
}

func (s Probe) String() string {
	switch s.Proxy {
	case "", config.ForwardNone:
		return config.CheckSMTP
	}
	return config.CheckSMTP + " " + s.Proxy
}

// helo returns the EHLO argument, or an error when it could not be one
// (a space or control character would make another command).
func (s Probe) helo() (string, error) {
	if s.Helo == "" {
		return DefaultHelo, nil
	}
	if len(s.Helo) > 255 {
		return "", fmt.Errorf("%w: EHLO name longer than 255 bytes", ErrSMTP)
	}
	for i := 0; i < len(s.Helo); i++ {
		if c := s.Helo[i]; c <= ' ' || c == 0x7f {
			return "", fmt.Errorf("%w: invalid EHLO name %q", ErrSMTP, s.Helo)
		}
	}
	return s.Helo, nil
}

// smtpProxy checks an SMTP probe's Proxy, "" meaning no header.
func smtpProxy(p string) (string, error) {
	switch p {
	case "", config.ForwardNone:
		return "", nil
	case config.ForwardProxyV1, config.ForwardProxyV2:
		return p, nil
	}
	return "", fmt.Errorf("%w: unknown PROXY header %q (want proxy_v1, proxy_v2 or none)", ErrSMTP, p)
}

// tcpAddrPort is a's address and port, the zero AddrPort when a is not
// a TCP address.
func tcpAddrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	return netip.AddrPort{}
}

// smtpReader reads the replies of one SMTP probe; buf holds what was read
// and not yet consumed (a node may pipeline).
type smtpReader struct {
	c   net.Conn
	buf []byte
}

// maxReplyText bounds the reply text an SMTP probe's error quotes.
const maxReplyText = 64

// expect2xx reads the next reply and fails unless it is 2xx; step names
// the reply in errors.
func (r *smtpReader) expect2xx(ctx context.Context, step string) error {
	_, err := r.reply2xx(ctx, step)
	return err
}

// reply2xx is expect2xx returning the reply (a copy).
func (r *smtpReader) reply2xx(ctx context.Context, step string) ([]byte, error) {
	code, reply, err := r.reply(ctx, step)
	if err == nil && code/100 != 2 {
		return nil, &replyError{step: step, code: code, text: quoteLine(reply[min(4, len(reply)):])}
	}
	return reply, err
}

// replyError is an SMTP probe's reply that is not 2xx.
type replyError struct {
	step string // "banner", "EHLO" or "QUIT"
	code int
	text string // the first line's text, at most maxReplyText bytes
}

func (e *replyError) Error() string {
	return fmt.Sprintf("%v: %s %d %q", ErrSMTP, e.step, e.code, e.text)
}

func (e *replyError) Unwrap() error { return ErrSMTP }

// ErrProxyRefused is an SMTP probe's finding that the relay read the
// PROXY header as SMTP command lines and answered them: it is not set up
// for the PROXY protocol, so every session would get those answers as
// the replies to its first commands.
var ErrProxyRefused = errors.New("health: the relay answered the PROXY header")

// proxyGrace is how long an SMTP probe that sent a PROXY header waits,
// after an error reply to its EHLO, for one more reply: a relay that read
// the header as a command line answered it first, and its answer to EHLO
// follows at once.
const proxyGrace = 300 * time.Millisecond

// proxyAnswered tells, after the EHLO reply failed (err), whether the
// relay was answering the PROXY header (proxy) sent before the banner: it
// was when another reply follows, since one EHLO gets one reply. That is
// reported as such (ErrProxyRefused); an error reply that could be the
// header's answer (500-504: a line not understood) gets a hint; any other
// err is returned as it is.
func (r *smtpReader) proxyAnswered(ctx context.Context, proxy string, err error) error {
	var re *replyError
	if !errors.As(err, &re) {
		return err
	}
	dl := time.Now().Add(proxyGrace)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	gctx, cancel := context.WithDeadline(ctx, dl)
	defer cancel()
	r.c.SetReadDeadline(dl)
	if _, _, next := r.reply(gctx, "EHLO"); next == nil {
		return &proxyRefusedError{proxy: proxy, code: re.code, text: re.text}
	}
	if re.code >= 500 && re.code <= 504 {
		return fmt.Errorf("%w (sent after a %s header: a relay not set up for the PROXY protocol answers it so)", err, proxy)
	}
	return err
}

// proxyRefusedError is ErrProxyRefused with the relay's answer.
type proxyRefusedError struct {
	proxy string // proxy_v1 or proxy_v2
	code  int
	text  string
}

func (e *proxyRefusedError) Error() string {
	postfix := "smtpd_upstream_proxy_protocol = haproxy"
	if e.proxy == config.ForwardProxyV2 {
		postfix += ", Postfix 3.5 or later"
	}
	return fmt.Sprintf("%v: the relay answered the PROXY header (%s) as an SMTP command, with %d %q: it is not set up for the PROXY protocol; configure it (Postfix: %s) or set client_ip_forwarding = none",
		ErrSMTP, e.proxy, e.code, e.text, postfix)
}

// Unwrap makes the error both ErrSMTP and ErrProxyRefused.
func (e *proxyRefusedError) Unwrap() []error { return []error{ErrSMTP, ErrProxyRefused} }

// reply reads the next reply, whatever its code, and returns it (a copy).
func (r *smtpReader) reply(ctx context.Context, step string) (int, []byte, error) {
	// Each turn reads at least a byte or fails, and reply.Parse fails once
	// reply.Max bytes hold no reply; the bound is for a Read returning 0, nil.
	for range reply.Max + 16 {
		code, n, err := reply.Parse(r.buf)
		switch {
		case errors.Is(err, reply.ErrTooLong):
			return 0, nil, fmt.Errorf("%w: %s too long: %w", ErrSMTP, step, err)
		case err != nil:
			return 0, nil, fmt.Errorf("%w: malformed %s %q: %w", ErrSMTP, step, quoteLine(r.buf), err)
		case n > 0:
			reply := append([]byte(nil), r.buf[:n]...)
			r.buf = r.buf[:copy(r.buf, r.buf[n:])]
			return code, reply, nil
		}
		m, err := r.c.Read(r.buf[len(r.buf):cap(r.buf)])
		r.buf = r.buf[:len(r.buf)+m]
		if err != nil && m == 0 {
			var te interface{ Timeout() bool }
			if cerr := ctx.Err(); cerr != nil {
				return 0, nil, &smtpTimeout{step: step, err: cerr}
			}
			if errors.As(err, &te) && te.Timeout() {
				return 0, nil, &smtpTimeout{step: step, err: err}
			}
			if errors.Is(err, io.EOF) {
				return 0, nil, fmt.Errorf("%w: connection closed before %s reply", ErrSMTP, step)
			}
			return 0, nil, fmt.Errorf("%w: reading %s: %w", ErrSMTP, step, err)
		}
	}
	return 0, nil, fmt.Errorf("%w: reading %s: no progress", ErrSMTP, step)
}

// smtpTimeout is an SMTP probe running out of time (or ctx ending) while
// waiting for a reply; Describe names the step.
type smtpTimeout struct {
	step string // "banner", "EHLO" or "QUIT"
	err  error
}

// Describe names the step for health.Describe: "timeout waiting for
// banner reply".
func (e *smtpTimeout) Describe() string { return "timeout waiting for " + e.step + " reply" }

func (e *smtpTimeout) Error() string {
	return fmt.Sprintf("%v: timeout waiting for %s reply: %v", ErrSMTP, e.step, e.err)
}

// Unwrap makes the error both ErrSMTP and the cause (a timeout,
// context.DeadlineExceeded or context.Canceled).
func (e *smtpTimeout) Unwrap() []error { return []error{ErrSMTP, e.err} }

// quoteLine returns the first line of b without its line end, at most
// maxReplyText bytes of it.
func quoteLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) > maxReplyText {
		b = b[:maxReplyText]
	}
	return string(b)
}

// PolicyFor returns the policy of a pool that an smtp_proxy service
// uses: as health.PolicyFor with probes, but when the pool's check is "tcp" (the default) or
// "smtp" the probe is Probe{Helo: helo, Proxy: forwarding's PROXY header},
// so a node is up only when it greets. helo is the service's
// smtp_hostname (DefaultHelo when ""); forwarding is its
// client_ip_forwarding: "proxy_v1" or "proxy_v2" make the probe send that
// header (nodes that expect one greet nobody without it), "", "none" and
// "xclient" send none. An "http" check is kept as configured.
func PolicyFor(pc *config.Pool, probes health.Probes, helo, forwarding string) (health.Policy, error) {
	p, err := health.PolicyFor(pc, probes)
	if err != nil {
		return health.Policy{}, err
	}
	var proxy string
	switch forwarding {
	case "", config.ForwardNone, config.ForwardXClient:
	case config.ForwardProxyV1, config.ForwardProxyV2:
		proxy = forwarding
	default:
		return health.Policy{}, fmt.Errorf("pool %s: %w: unknown client_ip_forwarding %q", pc.Name, ErrSMTP, forwarding)
	}
	switch pc.Check {
	case "", health.CheckTCP, config.CheckSMTP:
		pr := Probe{Helo: helo, Proxy: proxy, XClient: forwarding == config.ForwardXClient}
		if _, err := pr.helo(); err != nil {
			return health.Policy{}, fmt.Errorf("pool %s: %w", pc.Name, err)
		}
		p.Probe, p.Confirm = pr, pr
	}
	return p, nil
}
