package smtp

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/smtp/inspect"
)

// The client's own XCLIENT and XFORWARD with client_ip_forwarding =
// xclient (issue 12): the backend trusts plb's address for them, so plb
// reads the client's commands and answers those itself.

// fullMTA offers everything plb must not pass on.
func fullMTA() func(b *backend, c net.Conn, r *bufio.Reader) {
	return mta("220 first.test ESMTP\r\n", "PIPELINING", "XCLIENT NAME ADDR PORT PROTO HELO LOGIN", "XFORWARD NAME ADDR PROTO HELO", "STARTTLS", "CHUNKING", "BINARYMIME", "SIZE 10240000")
}

func xclientRelay(t *testing.T, be *backend, set func(*config.Service)) *relay {
	t.Helper()
	return startRelay(t, smtpService(config.RoleSMTPProxy, func(s *config.Service) {
		s.ClientIPForwarding = config.ForwardXClient
		if set != nil {
			set(s)
		}
	}), 5, be.addr)
}

// injected lists what the backend got that a client sent as XCLIENT,
// XFORWARD or STARTTLS (plb's own XCLIENT, the first, excepted).
func injected(be *backend) []string {
	var bad []string
	for i, l := range be.recorded() {
		u := strings.ToUpper(l)
		if i == 1 && strings.HasPrefix(l, "XCLIENT NAME=[UNAVAILABLE] ADDR=127.0.0.1 PORT=") {
			continue
		}
		if strings.HasPrefix(u, "XCLIENT") || strings.HasPrefix(u, "XFORWARD") || u == "STARTTLS" {
			bad = append(bad, l)
		}
	}
	return bad
}

const filteredEHLO = "250-mx.test hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n"

// TestSMTPXClientInjectionRefused: a client's XCLIENT and XFORWARD get
// 550 5.7.0 from plb, in their place among pipelined replies, and never
// reach the backend; the EHLO reply lacks XCLIENT, XFORWARD, STARTTLS (no
// certificate: 454) and CHUNKING (BDAT: 502); an XCLIENT line inside a
// message is the message's; a line too long gets 500.
func TestSMTPXClientInjectionRefused(t *testing.T) {
	be := startBackend(t, fullMTA())
	r := xclientRelay(t, be, nil)
	c := dial(t, r.addr)
	if got := c.reply(); got != "220 mx.test ESMTP after XCLIENT\r\n" {
		t.Fatalf("greeting %q", got)
	}
	if got := c.cmd("EHLO client.test"); got != filteredEHLO {
		t.Fatalf("EHLO reply %q, want %q", got, filteredEHLO)
	}
	for _, cmd := range []string{"XCLIENT ADDR=10.9.9.9 LOGIN=root", "xforward addr=10.9.9.9", " \tXClient\tNAME=evil.test"} {
		if got := c.cmd(cmd); got != inspect.ReplyUnauthorized {
			t.Fatalf("%s: %q", cmd, got)
		}
	}
	if got := c.cmd("STARTTLS"); got != inspect.ReplyTLSNotAvailable {
		t.Fatalf("STARTTLS: %q", got)
	}
	if got := c.cmd("BDAT 10 LAST"); got != inspect.ReplyBDAT {
		t.Fatalf("BDAT: %q", got)
	}
	if got := c.cmd("NOOP " + strings.Repeat("x", inspect.MaxCommand)); got != inspect.ReplyTooLong {
		t.Fatalf("long line: %q", got)
	}
	// Pipelined: plb's 550 comes between the backend's two replies.
	io.WriteString(c.c, "MAIL FROM:<a@b.test>\r\nXCLIENT ADDR=10.9.9.9\r\nRCPT TO:<c@d.test>\r\nDATA\r\n")
	for _, want := range []string{"250 2.0.0", "550 5.7.0", "250 2.0.0", "354 "} {
		if got := c.reply(); !strings.HasPrefix(got, want) {
			t.Fatalf("pipelined: %q, want %s", got, want)
		}
	}
	msg := "Subject: about XCLIENT\r\n\r\nXCLIENT ADDR=10.9.9.9\r\n..stuffed\r\n"
	sum := sha256.Sum256([]byte(msg))
	if got := c.cmd(msg + "."); !strings.Contains(got, hex.EncodeToString(sum[:])) {
		t.Fatalf("after the dot: %q", got)
	}
	if got := c.cmd("QUIT"); !strings.HasPrefix(got, "221") {
		t.Fatalf("QUIT %q", got)
	}
	c.expectClosed()
	if bad := injected(be); len(bad) > 0 {
		t.Fatalf("the backend got %q", bad)
	}
	if n := r.svc.Stats.Refused.Load(); n != 6 {
		t.Errorf("refused %d, want 6", n)
	}
	waitFor(t, "the refusal logged", func() bool { return strings.Contains(r.logs.String(), "command refused") })
	if !strings.Contains(r.logs.String(), "command=XCLIENT") || !strings.Contains(r.logs.String(), "command=xforward") {
		t.Errorf("logs:\n%s", r.logs.String())
	}
}

// TestSMTPXClientAfterRefusedData: when the backend refuses DATA, the
// next line is a command again, and an XCLIENT there is refused (a
// client sending it in the same write as DATA, hoping plb takes it for
// message content).
func TestSMTPXClientAfterRefusedData(t *testing.T) {
	be := startBackend(t, func(b *backend, c net.Conn, r *bufio.Reader) {
		io.WriteString(c, "220 x.test ESMTP\r\n")
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			b.record(strings.TrimRight(l, "\r\n"))
			switch cmd := strings.ToUpper(strings.TrimSpace(l)); {
			case strings.HasPrefix(cmd, "EHLO"):
				io.WriteString(c, "250-x.test\r\n250 XCLIENT ADDR\r\n")
			case strings.HasPrefix(cmd, "XCLIENT"):
				io.WriteString(c, "220 x.test ESMTP\r\n")
			case cmd == "DATA":
				io.WriteString(c, "554 5.5.1 Error: no valid recipients\r\n")
			case cmd == "QUIT":
				io.WriteString(c, "221 bye\r\n")
				return
			default:
				io.WriteString(c, "250 ok\r\n")
			}
		}
	})
	r := xclientRelay(t, be, nil)
	c := dial(t, r.addr)
	c.reply()
	io.WriteString(c.c, "DATA\r\nXCLIENT ADDR=10.9.9.9\r\n.\r\nQUIT\r\n")
	for _, want := range []string{"554 ", "550 5.7.0", "250 ", "221 "} {
		if got := c.reply(); !strings.HasPrefix(got, want) {
			t.Fatalf("%q, want %s", got, want)
		}
	}
	if got := strings.Join(be.recorded()[2:], "|"); got != "DATA|.|QUIT" {
		t.Fatalf("backend got %q", got)
	}
}

// testTLS is a certificate for 127.0.0.1 and a client config trusting it.
func testTLS(t testing.TB) (*tls.Config, *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "plb test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}}},
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

// startTLSRelay is an xclient smtp_proxy with smtp_starttls in front of
// be.
func startTLSRelay(t *testing.T, be *backend) (*relay, *tls.Config) {
	r := xclientRelay(t, be, func(s *config.Service) { s.SMTPStartTLS = true })
	return r, withStartTLS(t, r)
}

// withStartTLS gives r a certificate to answer STARTTLS with (what the
// server does for smtp_starttls) and returns a client config that trusts
// it.
func withStartTLS(t testing.TB, r *relay) *tls.Config {
	srv, cli := testTLS(t)
	st := *r.svc.Settings()
	st.StartTLS = srv
	r.svc.Update(&st)
	return cli
}

// TestSMTPXClientStartTLS: with a certificate plb offers STARTTLS itself,
// answers it, and reads the commands inside TLS: an XCLIENT there is
// refused too; the backend never sees STARTTLS. Bytes sent in clear after
// STARTTLS (a man in the middle's) are dropped; inside TLS the client
// must say EHLO again first (RFC 3207 4.2), and that EHLO's reply no
// longer offers STARTTLS.
func TestSMTPXClientStartTLS(t *testing.T) {
	be := startBackend(t, fullMTA())
	r, cli := startTLSRelay(t, be)
	c := dial(t, r.addr)
	c.reply()
	want := "250-mx.test hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250 STARTTLS\r\n"
	if got := c.cmd("EHLO client.test"); got != want {
		t.Fatalf("EHLO reply %q, want %q", got, want)
	}
	// STARTTLS and an injection in the same clear-text write.
	io.WriteString(c.c, "STARTTLS\r\nXCLIENT ADDR=10.6.6.6\r\nRCPT TO:<injected@evil.test>\r\n")
	if got := c.reply(); got != inspect.ReplyTLSReady {
		t.Fatalf("STARTTLS: %q", got)
	}
	if c.r.Buffered() > 0 {
		t.Fatalf("bytes after the 220: %d", c.r.Buffered())
	}
	tc := tls.Client(c.c, cli)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	s := &client{t: t, c: tc, r: bufio.NewReader(tc)}
	if got := s.cmd("MAIL FROM:<a@b.test>"); got != inspect.ReplyNeedHelo {
		t.Fatalf("MAIL before EHLO in TLS: %q", got)
	}
	if got := s.cmd("EHLO client.test"); got != filteredEHLO {
		t.Fatalf("EHLO in TLS %q", got)
	}
	if got := s.cmd("STARTTLS"); got != inspect.ReplyTLSActive {
		t.Fatalf("STARTTLS in TLS %q", got)
	}
	if got := s.cmd("XCLIENT ADDR=10.9.9.9 LOGIN=root"); got != inspect.ReplyUnauthorized {
		t.Fatalf("XCLIENT in TLS: %q", got)
	}
	// A message, pipelined, an XCLIENT line in it.
	msg := "Subject: t\r\n\r\nXCLIENT ADDR=10.9.9.9\r\n"
	io.WriteString(tc, "MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n")
	for _, want := range []string{"250 ", "250 ", "354 "} {
		if got := s.reply(); !strings.HasPrefix(got, want) {
			t.Fatalf("%q, want %s", got, want)
		}
	}
	sum := sha256.Sum256([]byte(msg))
	if got := s.cmd(msg + "."); !strings.Contains(got, hex.EncodeToString(sum[:])) {
		t.Fatalf("after the dot: %q", got)
	}
	if got := s.cmd("QUIT"); !strings.HasPrefix(got, "221") {
		t.Fatalf("QUIT %q", got)
	}
	if bad := injected(be); len(bad) > 0 {
		t.Fatalf("the backend got %q", bad)
	}
	rec := be.recorded()
	port := c.c.LocalAddr().(*net.TCPAddr).Port
	if want := fmt.Sprintf("EHLO plb.test|XCLIENT NAME=[UNAVAILABLE] ADDR=127.0.0.1 PORT=%d|EHLO client.test|EHLO client.test", port); strings.Join(rec, "|") != want {
		t.Fatalf("backend saw %q, want %q", rec, want)
	}
	if r.svc.Stats.StartTLS.Load() != 1 {
		t.Errorf("starttls %d", r.svc.Stats.StartTLS.Load())
	}
	waitFor(t, "the dropped bytes logged", func() bool { return strings.Contains(r.logs.String(), "bytes after STARTTLS dropped") })
}

// TestSMTPStartTLSWithoutXClient: smtp_starttls with a PROXY header: plb
// answers STARTTLS, the client's XCLIENT is the backend's business (it
// authorises the client's own address, from the header).
func TestSMTPStartTLSWithoutXClient(t *testing.T) {
	be := startBackend(t, proxyHeaderBackend(false))
	r := startRelay(t, smtpService(config.RoleSMTPProxy, func(s *config.Service) {
		s.ClientIPForwarding = config.ForwardProxyV1
		s.SMTPStartTLS = true
	}), 5, be.addr)
	cli := withStartTLS(t, r)
	c := dial(t, r.addr)
	c.reply()
	if got := c.cmd("STARTTLS"); got != inspect.ReplyTLSReady {
		t.Fatal(got)
	}
	tc := tls.Client(c.c, cli)
	s := &client{t: t, c: tc, r: bufio.NewReader(tc)}
	if got := s.cmd("EHLO client.test"); got != "250-mx.test hello\r\n250 8BITMIME\r\n" {
		t.Fatalf("EHLO %q", got)
	}
	if got := s.cmd("XCLIENT ADDR=10.9.9.9"); !strings.HasPrefix(got, "220 ") {
		t.Fatalf("XCLIENT %q", got)
	}
	s.cmd("QUIT")
}
