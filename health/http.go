package health

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/plb/plb/config"
)

// HTTP sends one request: GET Path, which must answer 2xx or 3xx; or,
// when Path is empty, OPTIONS * (what verify_backend sends), which any
// answer but 502, 503 or 504 passes: it asks whether a web server is
// there, and web servers answer it as they like (nginx 400, python's
// http.server 501), while those three say that what is behind the server
// is down.
type HTTP struct {
	Path string
	// Host is the Host header (default: the node's address).
	Host string
	// TLS, when set, is the client config of nodes spoken to over TLS
	// (backend_ssl): the request goes over it (DialTLS).
	TLS *tls.Config
}

var _ Probe = HTTP{}

// newHTTP is the probe of an "http" check: HTTP with its check_path.
func newHTTP(pc *config.Pool) (Probe, error) { return HTTP{Path: pc.CheckPath}, nil }

// maxStatusLine bounds what an HTTP probe reads of the reply.
const maxStatusLine = 4 << 10

// ErrBadStatus is a probe reply outside 2xx and 3xx.
var ErrBadStatus = errors.New("health: bad status")

// Check implements Probe.
func (h HTTP) Check(ctx context.Context, addr netip.AddrPort) error {
	c, done, err := DialTLS(ctx, addr, h.TLS, "http/1.1")
	if err != nil {
		return err
	}
	defer done()
	method, target := h.Request()
	host := h.HostFor(addr)
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
	return h.Judge(code)
}

// HostFor is the Host of a probe of addr.
func (h HTTP) HostFor(addr netip.AddrPort) string {
	if h.Host != "" {
		return h.Host
	}
	return addr.String()
}

// Judge is the verdict on a probe's answer, its status code (another
// protocol's probe, HTTP/2's, asks the same).
func (h HTTP) Judge(code int) error {
	if h.Path == "" {
		if code >= 502 && code <= 504 {
			return fmt.Errorf("%w %d", ErrBadStatus, code)
		}
		return nil
	}
	if code < 200 || code >= 400 {
		return fmt.Errorf("%w %d", ErrBadStatus, code)
	}
	return nil
}

// Request is the probe's method and target.
func (h HTTP) Request() (method, target string) {
	if h.Path == "" {
		return "OPTIONS", "*"
	}
	return "GET", h.Path
}

func (h HTTP) String() string {
	m, t := h.Request()
	if h.TLS != nil {
		return "https " + m + " " + t
	}
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
