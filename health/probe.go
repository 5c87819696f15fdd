package health

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Probe checks one node. The SMTP relay adds its own (a banner check)
// beside TCP and HTTP.
type Probe interface {
	// Check returns nil when the node at addr is healthy. It returns when
	// ctx is done at the latest. Safe from any goroutine.
	Check(ctx context.Context, addr netip.AddrPort) error
	// String names the probe in logs and reasons ("tcp", "http GET /ping").
	String() string
}

// Check kinds of a pool (its check key).
const (
	CheckTCP  = "tcp"
	CheckHTTP = "http"
)

// NewProbe returns the probe for a pool's check and check_path keys: "tcp"
// (or "") connects; "http" sends OPTIONS * (path "") or GET path.
func NewProbe(kind, path string) (Probe, error) {
	switch kind {
	case "", CheckTCP:
		return TCP{}, nil
	case CheckHTTP:
		return HTTP{Path: path}, nil
	}
	return nil, fmt.Errorf("health: unknown check %q", kind)
}

// TCP succeeds when a TCP connect to the node completes (PLB's revival
// probe).
type TCP struct{}

var _ Probe = TCP{}

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

// HTTP sends one request and expects a 2xx or 3xx status: OPTIONS * when
// Path is empty (what verify_backend sends), else GET Path.
type HTTP struct {
	Path string
	// Host is the Host header (default: the node's address).
	Host string
}

var _ Probe = HTTP{}

// maxStatusLine bounds what an HTTP probe reads of the reply.
const maxStatusLine = 4 << 10

// ErrBadStatus is a probe reply outside 2xx and 3xx.
var ErrBadStatus = errors.New("health: bad status")

// Check implements Probe.
func (h HTTP) Check(ctx context.Context, addr netip.AddrPort) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	method, target := h.request()
	host := h.Host
	if host == "" {
		host = addr.String()
	}
	if _, err := fmt.Fprintf(c, "%s %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: plb-health\r\nConnection: close\r\n\r\n", method, target, host); err != nil {
		return err
	}
	line, err := bufio.NewReaderSize(c, maxStatusLine).ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("%w: status line too long", ErrBadStatus)
		}
		return fmt.Errorf("reading status: %w", err)
	}
	code, ok := parseStatusLine(string(line))
	if !ok {
		return fmt.Errorf("%w: malformed status line %q", ErrBadStatus, strings.TrimSpace(string(line)))
	}
	if code < 200 || code >= 400 {
		return fmt.Errorf("%w %d", ErrBadStatus, code)
	}
	return nil
}

func (h HTTP) request() (method, target string) {
	if h.Path == "" {
		return "OPTIONS", "*"
	}
	return "GET", h.Path
}

func (h HTTP) String() string {
	m, t := h.request()
	return "http " + m + " " + t
}

// parseStatusLine reads the code of "HTTP/1.x NNN reason".
func parseStatusLine(s string) (int, bool) {
	s = strings.TrimRight(s, "\r\n")
	if !strings.HasPrefix(s, "HTTP/") || len(s) < 12 || s[8] != ' ' {
		return 0, false
	}
	code, err := strconv.Atoi(s[9:12])
	if err != nil || code < 100 || (len(s) > 12 && s[12] != ' ') {
		return 0, false
	}
	return code, true
}

// ProbeFunc adapts a function to Probe (tests, embedders).
type ProbeFunc func(ctx context.Context, addr netip.AddrPort) error

var _ Probe = ProbeFunc(nil)

// Check implements Probe.
func (f ProbeFunc) Check(ctx context.Context, addr netip.AddrPort) error { return f(ctx, addr) }

func (ProbeFunc) String() string { return "probe" }
