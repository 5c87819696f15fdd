package server

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/internal/testhttp"
	"github.com/plb/plb/internal/testutil"
)

// xclientMTA trusts every XCLIENT (as Postfix trusts plb's address) and
// records every command line it reads.
type xclientMTA struct {
	*testhttp.Backend
	mu   sync.Mutex
	seen []string
}

func newXClientMTA(t *testing.T) *xclientMTA {
	m := &xclientMTA{}
	m.Backend = testhttp.NewBackend(t, func(b *testhttp.Backend, c net.Conn, id int64) {
		io.WriteString(c, "220 mta.test ESMTP\r\n")
		r := bufio.NewReader(c)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			l = strings.TrimRight(l, "\r\n")
			m.mu.Lock()
			m.seen = append(m.seen, l)
			m.mu.Unlock()
			switch u := strings.ToUpper(l); {
			case strings.HasPrefix(u, "EHLO"):
				io.WriteString(c, "250-mta.test\r\n250-PIPELINING\r\n250-XCLIENT NAME ADDR PORT LOGIN\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
			case strings.HasPrefix(u, "XCLIENT"):
				io.WriteString(c, "220 mta.test ESMTP\r\n")
			case u == "QUIT":
				io.WriteString(c, "221 2.0.0 Bye\r\n")
				return
			default:
				io.WriteString(c, "250 2.0.0 Ok\r\n")
			}
		}
	})
	return m
}

func (m *xclientMTA) lines() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.seen...)
}

// smtpConn is a line client for these tests.
type smtpConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func (s *smtpConn) reply() string {
	s.t.Helper()
	var b strings.Builder
	for {
		l, err := s.r.ReadString('\n')
		if err != nil {
			s.t.Fatalf("after %q: %v", b.String(), err)
		}
		b.WriteString(l)
		if len(l) < 4 || l[3] != '-' {
			return b.String()
		}
	}
}

func (s *smtpConn) cmd(line string) string {
	s.t.Helper()
	fmt.Fprintf(s.c, "%s\r\n", line)
	return s.reply()
}

// TestSMTPStartTLSFromTOML: an smtp_proxy with client_ip_forwarding =
// xclient and smtp_starttls from a configuration: plb offers and answers
// STARTTLS with the service's ssl_cert_file and ssl_key_file, and inside
// TLS as outside, the client's XCLIENT gets 550 5.7.0 and never reaches
// the backend, which never sees STARTTLS either. A reload with the same
// files keeps the TLS configuration; a certificate that does not load is
// refused, as enable_ssl's is (without smtp_starttls, STARTTLS is withheld,
// 454: the smtp package's tests).
func TestSMTPStartTLSFromTOML(t *testing.T) {
	mta := newXClientMTA(t)
	ca := newTestCA(t)
	cert, key, _ := ca.issue("mx", false, "mx.test")
	junk := filepath.Join(t.TempDir(), "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	toml := fmt.Sprintf(`
[pool.mtas]
nodes = [%q]
[service.mx]
role = "smtp_proxy"
listen = "127.0.0.1:0"
pool = "mtas"
smtp_hostname = "plb.test"
client_ip_forwarding = "xclient"
smtp_starttls = true
ssl_cert_file = %q
ssl_key_file = %q
`, mta.Addr, cert, key)
	logs := &testutil.SyncBuffer{}
	ts := startServerOpts(t, toml, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})

	nc, err := net.DialTimeout("tcp", ts.addrOf("mx"), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(testTimeout))
	c := &smtpConn{t: t, c: nc, r: bufio.NewReader(nc)}
	if got := c.reply(); got != "220 mta.test ESMTP\r\n" {
		t.Fatalf("greeting %q", got)
	}
	if got := c.cmd("EHLO client.test"); got != "250-mta.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 STARTTLS\r\n" {
		t.Fatalf("EHLO %q", got)
	}
	if got := c.cmd("XCLIENT ADDR=10.9.9.9"); !strings.HasPrefix(got, "550 5.7.0 ") {
		t.Fatalf("XCLIENT %q", got)
	}
	if got := c.cmd("STARTTLS"); got != "220 2.0.0 Ready to start TLS\r\n" {
		t.Fatalf("STARTTLS %q", got)
	}
	tc := tls.Client(nc, ca.clientConfig("mx.test"))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	s := &smtpConn{t: t, c: tc, r: bufio.NewReader(tc)}
	if got := s.cmd("EHLO client.test"); got != "250-mta.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n" {
		t.Fatalf("EHLO in TLS %q", got)
	}
	if got := s.cmd("XCLIENT ADDR=10.9.9.9 LOGIN=root"); !strings.HasPrefix(got, "550 5.7.0 ") {
		t.Fatalf("XCLIENT in TLS %q", got)
	}
	if got := s.cmd("QUIT"); !strings.HasPrefix(got, "221") {
		t.Fatalf("QUIT %q", got)
	}
	port := nc.LocalAddr().(*net.TCPAddr).Port
	want := fmt.Sprintf("EHLO plb.test|XCLIENT NAME=[UNAVAILABLE] ADDR=127.0.0.1 PORT=%d|EHLO client.test|EHLO client.test|QUIT", port)
	if got := strings.Join(mta.lines(), "|"); got != want {
		t.Fatalf("backend read %q, want %q", got, want)
	}

	// A reload that changes nothing keeps the TLS configuration.
	before := ts.services["mx"].run.(relayRun).Settings().StartTLS
	cfg, err := config.Parse("test.toml", []byte(toml), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if after := ts.services["mx"].run.(relayRun).Settings().StartTLS; after == nil || after != before {
		t.Errorf("StartTLS config %p, then %p", before, after)
	}

	// A certificate that does not load: the reload is refused, naming the
	// service and the setting, and the running configuration stays.
	broken := strings.Replace(toml, fmt.Sprintf("ssl_cert_file = %q", cert), fmt.Sprintf("ssl_cert_file = %q", junk), 1)
	bad, err := config.Parse("test.toml", []byte(broken), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.Apply(bad); err == nil || !strings.Contains(err.Error(), "'mx': smtp_starttls") {
		t.Fatalf("Apply with a certificate that does not load: %v", err)
	}
	if after := ts.services["mx"].run.(relayRun).Settings().StartTLS; after != before {
		t.Errorf("a refused reload changed the StartTLS config")
	}
}
