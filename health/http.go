package health

import (
	"bufio"
	"context"
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
	// H2C: the request goes as HTTP/2 in the clear (backend_protocol
	// h2c), a stream on a connection of its own.
	H2C bool
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
	c, done, err := Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer done()
	method, target := h.request()
	host := h.Host
	if host == "" {
		host = addr.String()
	}
	if h.H2C {
		code, err := h2Status(c, method, target, host)
		if err != nil {
			return err
		}
		return h.judge(code)
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
	return h.judge(code)
}

// judge is the verdict on a probe's answer.
func (h HTTP) judge(code int) error {
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

func (h HTTP) request() (method, target string) {
	if h.Path == "" {
		return "OPTIONS", "*"
	}
	return "GET", h.Path
}

func (h HTTP) String() string {
	m, t := h.request()
	if h.H2C {
		return "h2c " + m + " " + t
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
