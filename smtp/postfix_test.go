package smtp

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/smtp/inspect"
)

// A real Postfix behind plb's xclient mode (issue 12): a private instance
// on loopback (its own config, queue and log under a temp dir, every
// message discarded, as smtp/testdata/real-mta.sh runs it) that trusts
// 127.0.0.1, plb's address, for XCLIENT. Clients connect from 127.0.0.2.
// Needs root and the postfix and swaks packages: skipped without them,
// except in CI.

// postfixMTA is a running private Postfix.
type postfixMTA struct {
	addr string
	log  string // its maillog file
}

func needRealMTA(t *testing.T, cmds ...string) {
	t.Helper()
	var missing []string
	for _, c := range cmds {
		if _, err := exec.LookPath(c); err != nil {
			missing = append(missing, c)
		}
	}
	if os.Getuid() != 0 {
		missing = append(missing, "root")
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("missing %v (apt-get install postfix swaks, as root)", missing)
	}
	t.Skipf("missing %v", missing)
}

func startPostfix(t *testing.T) *postfixMTA {
	t.Helper()
	needRealMTA(t, "/usr/sbin/postfix", "/usr/sbin/postconf")
	work, err := os.MkdirTemp("", "plb-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(work, 0o755) // Postfix's unprivileged daemons reach the data directory by name
	etc, queue, data := filepath.Join(work, "etc"), filepath.Join(work, "queue"), filepath.Join(work, "data")
	for _, d := range []string{etc, queue, data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("chown", "postfix", data).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	log := filepath.Join(work, "maillog")
	base, err := os.ReadFile(filepath.Join("testdata", "postfix-main.cf"))
	if err != nil {
		t.Fatal(err)
	}
	mainCF := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %s
data_directory = %s
mynetworks = 127.0.0.1/32
smtpd_authorized_xclient_hosts = 127.0.0.1
smtpd_authorized_xforward_hosts = 127.0.0.1
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
maillog_file = %s
maillog_file_prefixes = %s
`, queue, data, log, work) + string(base)
	daemons, err := os.ReadFile(filepath.Join("testdata", "postfix-master.cf"))
	if err != nil {
		t.Fatal(err)
	}
	masterCF := addr + " inet n - n - - smtpd\n" + string(daemons)
	if err := os.WriteFile(filepath.Join(etc, "main.cf"), []byte(mainCF), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "master.cf"), []byte(masterCF), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "/usr/sbin/postfix", "-c", etc, "start").CombinedOutput(); err != nil {
		logb, _ := os.ReadFile(log)
		t.Fatalf("postfix start: %v\n%s\n%s", err, out, logb)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		exec.CommandContext(ctx, "/usr/sbin/postfix", "-c", etc, "stop").Run()
		if t.Failed() {
			logb, _ := os.ReadFile(log)
			t.Logf("postfix log:\n%s", logb)
		}
		os.RemoveAll(work)
	})
	// Its smtpd listens once master has read master.cf.
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("postfix does not listen on %s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return &postfixMTA{addr: addr, log: log}
}

// waitLog waits for a line of the Postfix log matching re.
func (p *postfixMTA) waitLog(t *testing.T, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(testTimeout)
	for {
		b, _ := os.ReadFile(p.log)
		if m := rx.Find(b); m != nil {
			return string(m)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the Postfix log:\n%s", re, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dialFrom connects to addr from 127.0.0.2.
func dialFrom(t *testing.T, addr string) *client {
	t.Helper()
	d := net.Dialer{Timeout: testTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(testTimeout))
	return &client{t: t, c: c, r: bufio.NewReader(c)}
}

// TestPostfixXClientInjection: Postfix trusts plb's address for XCLIENT
// (checked first: straight from 127.0.0.1 an XCLIENT is obeyed); through
// plb, a client's XCLIENT and XFORWARD get 550 5.7.0, also in a pipelined
// group and after a bare-LF end of DATA (SMTP smuggling: Postfix 3.7
// takes "\n.\n" as the end), and Postfix logs the client's own address
// for its message, never the one it claimed.
func TestPostfixXClientInjection(t *testing.T) {
	pf := startPostfix(t)

	// Straight to Postfix from plb's address: XCLIENT works. That is
	// what a client would get if plb relayed its XCLIENT.
	d := net.Dialer{Timeout: testTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}}
	direct, err := d.Dial("tcp", pf.addr)
	if err != nil {
		t.Fatal(err)
	}
	dc := &client{t: t, c: direct, r: bufio.NewReader(direct)}
	direct.SetDeadline(time.Now().Add(testTimeout))
	dc.reply()
	if got := dc.cmd("EHLO plb.test"); !strings.Contains(got, "XCLIENT") {
		t.Fatalf("Postfix does not offer XCLIENT to 127.0.0.1: %q", got)
	}
	if got := dc.cmd("XCLIENT ADDR=10.7.7.7"); !strings.HasPrefix(got, "220") {
		t.Fatalf("Postfix refuses XCLIENT from 127.0.0.1: %q", got)
	}
	dc.cmd("QUIT")
	direct.Close()

	r := startRelay(t, smtpService(config.RoleSMTPProxy, func(s *config.Service) {
		s.ClientIPForwarding = config.ForwardXClient
	}), 5, pf.addr)
	c := dialFrom(t, r.addr)
	if got := c.reply(); !strings.HasPrefix(got, "220 mta.plb.test") {
		t.Fatalf("greeting %q", got)
	}
	ehlo := c.cmd("EHLO client.plb.test")
	if !strings.HasPrefix(ehlo, "250-mta.plb.test") || strings.Contains(ehlo, "XCLIENT") || strings.Contains(ehlo, "XFORWARD") || strings.Contains(ehlo, "STARTTLS") {
		t.Fatalf("EHLO reply %q", ehlo)
	}
	if got := c.cmd("XCLIENT ADDR=10.9.9.9 NAME=evil.test"); got != inspect.ReplyUnauthorized {
		t.Fatalf("XCLIENT %q", got)
	}
	if got := c.cmd("XFORWARD ADDR=10.9.9.9"); got != inspect.ReplyUnauthorized {
		t.Fatalf("XFORWARD %q", got)
	}
	c.c.Write([]byte("MAIL FROM:<sender@plb.test>\r\nXCLIENT ADDR=10.9.9.9\r\nRCPT TO:<rcpt@plb.test>\r\nDATA\r\n"))
	for _, want := range []string{"250 ", "550 5.7.0", "250 ", "354 "} {
		if got := c.reply(); !strings.HasPrefix(got, want) {
			t.Fatalf("pipelined: %q, want %s", got, want)
		}
	}
	// Smuggling: Postfix 3.7 ends DATA at "\n.\n"; plb must too, so the
	// XCLIENT after it is a command, and refused.
	c.c.Write([]byte("Subject: plb issue 12\r\n\r\nhello\n.\nXCLIENT ADDR=10.9.9.9\r\n"))
	got := c.reply()
	m := regexp.MustCompile(`^250 2\.0\.0 Ok: queued as ([0-9A-Za-z]+)`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("after the message: %q", got)
	}
	if got := c.reply(); got != inspect.ReplyUnauthorized {
		t.Fatalf("smuggled XCLIENT: %q", got)
	}
	if got := c.cmd("QUIT"); !strings.HasPrefix(got, "221") {
		t.Fatalf("QUIT %q", got)
	}
	pf.waitLog(t, m[1]+`: client=[^ ]*\[127\.0\.0\.2\]`)
	pf.waitLog(t, `disconnect from [^ ]*\[127\.0\.0\.2\]`)
	if b, _ := os.ReadFile(pf.log); strings.Contains(string(b), "10.9.9.9") {
		t.Fatalf("Postfix saw the claimed address:\n%s", b)
	}
}

// TestPostfixStartTLSSwaks: swaks sends a message with STARTTLS through
// plb (xclient, smtp_starttls): plb terminates TLS, Postfix gets the
// message in clear with the client's address, and never sees STARTTLS.
func TestPostfixStartTLSSwaks(t *testing.T) {
	needRealMTA(t, "swaks")
	pf := startPostfix(t)
	r := startRelay(t, smtpService(config.RoleSMTPProxy, func(s *config.Service) {
		s.ClientIPForwarding = config.ForwardXClient
		s.SMTPStartTLS = true
	}), 5, pf.addr)
	withStartTLS(t, r)
	host, port, _ := net.SplitHostPort(r.addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "swaks", "--server", host, "--port", port, "--local-interface", "127.0.0.2",
		"--tls", "--helo", "client.plb.test", "--from", "sender@plb.test", "--to", "rcpt@plb.test",
		"--header", "Subject: plb issue 12 STARTTLS", "--timeout", "20").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^ *<~ +250 2\.0\.0 Ok: queued as ([0-9A-Za-z]+)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no message queued over TLS:\n%s", out)
	}
	pf.waitLog(t, m[1]+`: client=[^ ]*\[127\.0\.0\.2\]`)
	if b, _ := os.ReadFile(pf.log); strings.Contains(string(b), "STARTTLS") || strings.Contains(string(b), "TLS connection established") {
		t.Fatalf("Postfix saw TLS:\n%s", b)
	}
	if r.svc.Stats.StartTLS.Load() != 1 {
		t.Errorf("starttls %d", r.svc.Stats.StartTLS.Load())
	}
}
