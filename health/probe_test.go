package health

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/internal/testutil"
)

// scriptedServer answers each connection with reply(request line) on
// 127.0.0.1:0; reply "" closes without a word, "hang" never answers.
func scriptedServer(t *testing.T, reply func(line string) string) (netip.AddrPort, chan string) {
	t.Helper()
	lines := make(chan string, 16)
	a := testutil.ServeConns(t, func(c net.Conn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		line, _ := br.ReadString('\n')
		for { // the rest of the head
			l, err := br.ReadString('\n')
			if err != nil || l == "\r\n" {
				break
			}
			if strings.HasPrefix(l, "Host: ") {
				line += l
			}
		}
		lines <- line
		r := reply(line)
		if r == "hang" {
			br.ReadString('\n') // until the prober gives up
		} else {
			c.Write([]byte(r))
		}
	})
	return a, lines
}

func check(p Probe, a netip.AddrPort, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return p.Check(ctx, a)
}

func TestTCPProbe(t *testing.T) {
	a, _ := scriptedServer(t, func(string) string { return "" })
	if err := check(TCP{}, a, 5*time.Second); err != nil {
		t.Fatalf("listening node: %v", err)
	}
	err := check(TCP{}, testutil.ClosedAddr(t), 5*time.Second)
	if err == nil || Describe(err) != "connection refused" {
		t.Fatalf("closed port: %v (%s)", err, Describe(err))
	}
}

func TestHTTPProbe(t *testing.T) {
	status := "200 OK"
	a, lines := scriptedServer(t, func(line string) string {
		switch status {
		case "garbage":
			return "SSH-2.0-OpenSSH\r\n"
		case "hang", "":
			return status
		}
		return "HTTP/1.1 " + status + "\r\nContent-Length: 0\r\n\r\n"
	})
	host := "Host: " + a.String() + "\r\n"
	for _, c := range []struct {
		probe  Probe
		status string
		line   string
		ok     bool
	}{
		{HTTP{}, "200 OK", "OPTIONS * HTTP/1.0\r\n" + host, true},
		{HTTP{Path: "/health"}, "204 No Content", "GET /health HTTP/1.0\r\n" + host, true},
		{HTTP{Path: "/health", Host: "www"}, "302 Found", "GET /health HTTP/1.0\r\nHost: www\r\n", true},
		{HTTP{Path: "/health"}, "503 Service Unavailable", "GET /health HTTP/1.0\r\n" + host, false},
		{HTTP{Path: "/health"}, "404 Not Found", "GET /health HTTP/1.0\r\n" + host, false},
		{HTTP{}, "400 Bad Request", "OPTIONS * HTTP/1.0\r\n" + host, true},
		{HTTP{}, "501 Unsupported method", "OPTIONS * HTTP/1.0\r\n" + host, true},
		{HTTP{}, "503 Service Unavailable", "OPTIONS * HTTP/1.0\r\n" + host, false},
		{HTTP{}, "502 Bad Gateway", "OPTIONS * HTTP/1.0\r\n" + host, false},
		{HTTP{}, "garbage", "OPTIONS * HTTP/1.0\r\n" + host, false},
		{HTTP{}, "", "OPTIONS * HTTP/1.0\r\n" + host, false},
	} {
		status = c.status
		err := check(c.probe, a, 5*time.Second)
		if (err == nil) != c.ok {
			t.Errorf("%s answered %q: err %v, want ok=%v", c.probe, c.status, err, c.ok)
		}
		if line := <-lines; line != c.line {
			t.Errorf("%s sent %q, want %q", c.probe, line, c.line)
		}
		if !c.ok && strings.HasPrefix(c.status, "5") && !errors.Is(err, ErrBadStatus) {
			t.Errorf("503: %v is not ErrBadStatus", err)
		}
	}
	status = "hang"
	start := time.Now()
	err := check(HTTP{}, a, 200*time.Millisecond)
	if err == nil || Describe(err) != "timeout" {
		t.Fatalf("hanging node: %v (%s)", err, Describe(err))
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("probe took %v past its timeout", d)
	}
	if err := check(HTTP{}, testutil.ClosedAddr(t), 5*time.Second); err == nil {
		t.Fatal("closed port passed")
	}
}

func TestParseStatusLine(t *testing.T) {
	for _, c := range []struct {
		line string
		code int
		ok   bool
	}{
		{"HTTP/1.1 200 OK\r\n", 200, true},
		{"HTTP/1.0 302\r\n", 302, true},
		{"HTTP/1.1 404 Not Found\n", 404, true},
		{"HTTP/1.1 20 OK\r\n", 0, false},
		{"HTTP/1.1 2000 OK\r\n", 0, false},
		{"ICY 200 OK\r\n", 0, false},
		{"HTTP/1.1 abc\r\n", 0, false},
		{"", 0, false},
	} {
		code, ok := parseStatusLine(c.line)
		if code != c.code || ok != c.ok {
			t.Errorf("parseStatusLine(%q) = %d, %v", c.line, code, ok)
		}
	}
	if _, err := NewProbes().New(&config.Pool{Check: "icmp"}); err == nil {
		t.Error("unknown probe kind accepted")
	}
	if p, _ := NewProbes().New(&config.Pool{}); p != (TCP{}) {
		t.Errorf("default probe %v", p)
	}
}

// TestProbes: the table names health's own probes, a protocol's is known
// only once added, and each NewProbes is a table of its own.
func TestProbes(t *testing.T) {
	for _, c := range []struct {
		check, path string
		want        Probe
	}{
		{"", "", TCP{}},
		{"tcp", "/ignored", TCP{}},
		{"http", "", HTTP{}},
		{"http", "/ping", HTTP{Path: "/ping"}},
	} {
		p, err := NewProbes().New(&config.Pool{Check: c.check, CheckPath: c.path})
		if err != nil || p != c.want {
			t.Errorf("%q %q: %v, %v; want %v", c.check, c.path, p, err, c.want)
		}
	}
	_, err := NewProbes().New(&config.Pool{Check: "smtp"})
	if err == nil || err.Error() != `health: unknown check "smtp"` {
		t.Errorf("smtp without its maker: %v", err)
	}
	probes := NewProbes()
	probes["smtp"] = func(*config.Pool) (Probe, error) { return namedProbe{name: "smtp"}, nil }
	if p, err := probes.New(&config.Pool{Check: "smtp"}); err != nil || p.String() != "smtp" {
		t.Errorf("added smtp: %v, %v", p, err)
	}
	if _, ok := NewProbes()["smtp"]; ok {
		t.Error("adding to one table changed another")
	}
	if _, err := PolicyFor(&config.Pool{Name: "p", Check: "smtp"}, NewProbes()); err == nil || err.Error() != `pool p: health: unknown check "smtp"` {
		t.Errorf("PolicyFor smtp without its maker: %v", err)
	}
}

// TestDescribeProbeErrors: a NewProbeError sentinel's text is left out,
// an error naming itself is described so, the network's errors first.
func TestDescribeProbeErrors(t *testing.T) {
	errProto := NewProbeError("health: proto")
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w: banner 554 %q", errProto, "go away"), `banner 554 "go away"`},
		{fmt.Errorf("%w: reading EHLO: %w", errProto, syscall.ECONNRESET), "connection reset"},
		{stepTimeout("EHLO"), "timeout waiting for EHLO reply"},
		{errProto, "health: proto"},
	} {
		if got := Describe(c.err); got != c.want {
			t.Errorf("Describe(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

type stepTimeout string

func (s stepTimeout) Error() string    { return "proto: timeout waiting for " + string(s) }
func (s stepTimeout) Describe() string { return "timeout waiting for " + string(s) + " reply" }
