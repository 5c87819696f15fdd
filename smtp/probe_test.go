package smtp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/health"
	"github.com/plb/plb/internal/testutil"
	"github.com/plb/plb/smtp/reply"
)

func check(p health.Probe, a netip.AddrPort, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return p.Check(ctx, a)
}

// probeTable is the server's table of probes: health's and NewProbe as
// "smtp".
func probeTable() health.Probes {
	t := health.NewProbes()
	t[config.CheckSMTP] = NewProbe
	return t
}

// smtpSession is what a scripted SMTP server saw on one connection.
type smtpSession struct {
	header   []byte   // the PROXY header read before the banner
	commands []string // the command lines, CRLF included
	client   netip.AddrPort
	server   netip.AddrPort
}

// smtpScript drives one connection of smtpServer.
type smtpScript struct {
	// proxy is the PROXY header the server reads before greeting: 0 none,
	// 1 a version 1 line (to its CRLF), 2 a 16-byte version 2 header.
	proxy int
	// replies answer, in turn, the connection (the banner) and each
	// command, which is read first. "" closes the connection instead;
	// "hang" waits until the prober goes away.
	replies []string
	// early writes every reply at once, before reading any command.
	early bool
	// close closes the connection after the replies (else the server
	// waits for the prober to close it).
	close bool
}

// smtpServer serves script on 127.0.0.1:0, one connection at a time, each
// bounded by a 5 s deadline; sessions receives what each connection saw.
func smtpServer(t *testing.T, script smtpScript) (netip.AddrPort, <-chan smtpSession) {
	t.Helper()
	sessions := make(chan smtpSession, 8)
	a := testutil.ServeConns(t, func(c net.Conn) {
		select {
		case sessions <- serveSMTP(c, script):
		default: // the test did not look
		}
	})
	return a, sessions
}

func serveSMTP(c net.Conn, script smtpScript) smtpSession {
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	s := smtpSession{
		client: c.RemoteAddr().(*net.TCPAddr).AddrPort(),
		server: c.LocalAddr().(*net.TCPAddr).AddrPort(),
	}
	br := bufio.NewReaderSize(c, 1024)
	switch script.proxy {
	case 1:
		line, err := br.ReadSlice('\n')
		s.header = append([]byte(nil), line...)
		if err != nil {
			return s
		}
	case 2:
		s.header = make([]byte, 16)
		n, _ := io.ReadFull(br, s.header)
		s.header = s.header[:n]
	}
	if script.early {
		c.Write([]byte(strings.Join(script.replies, "")))
	}
	for i, r := range script.replies {
		if i > 0 {
			line, err := br.ReadString('\n')
			if err != nil {
				return s
			}
			s.commands = append(s.commands, line)
		}
		switch {
		case script.early:
		case r == "":
			return s
		case r == "hang":
			io.Copy(io.Discard, br) // until the prober closes
			return s
		default:
			c.Write([]byte(r))
		}
	}
	if !script.close {
		io.Copy(io.Discard, br) // until the prober closes: it must
	}
	return s
}

func nextSession(t *testing.T, sessions <-chan smtpSession) smtpSession {
	t.Helper()
	select {
	case s := <-sessions:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("server saw no connection")
		return smtpSession{}
	}
}

const (
	banner2  = "220-mx.example ESMTP\r\n220 ready\r\n"
	ehloOK   = "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n"
	quitOK   = "221 2.0.0 Bye\r\n"
	proxyV2L = "\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"
)

func TestSMTPProbeHealthy(t *testing.T) {
	for _, c := range []struct {
		name  string
		probe Probe
		helo  string
	}{
		{"default helo", Probe{}, "localhost"},
		{"helo", Probe{Helo: "lb.example"}, "lb.example"},
		{"none", Probe{Helo: "[192.0.2.1]", Proxy: "none"}, "[192.0.2.1]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, sessions := smtpServer(t, smtpScript{replies: []string{banner2, ehloOK, quitOK}})
			if err := check(c.probe, a, 5*time.Second); err != nil {
				t.Fatalf("healthy node: %v", err)
			}
			s := nextSession(t, sessions)
			want := []string{"EHLO " + c.helo + "\r\n", "QUIT\r\n"}
			if fmt.Sprint(s.commands) != fmt.Sprint(want) {
				t.Fatalf("commands %q, want %q", s.commands, want)
			}
		})
	}
}

func TestSMTPProbeBareAndEarlyReplies(t *testing.T) {
	// "220\r\n" bare codes, any 2xx to QUIT, and replies pipelined ahead of
	// the commands are read in order.
	a, _ := smtpServer(t, smtpScript{replies: []string{"220\r\n", "250\n", "250 ok\r\n"}})
	if err := check(Probe{}, a, 5*time.Second); err != nil {
		t.Fatalf("bare codes: %v", err)
	}
	b, sessions := smtpServer(t, smtpScript{replies: []string{banner2, ehloOK, quitOK}, early: true})
	if err := check(Probe{}, b, 5*time.Second); err != nil {
		t.Fatalf("early replies: %v", err)
	}
	if s := nextSession(t, sessions); len(s.commands) != 2 {
		t.Fatalf("commands %q", s.commands)
	}
}

func TestSMTPProbeFailures(t *testing.T) {
	long := strings.Repeat("220-"+strings.Repeat("x", 90)+"\r\n", 100) // > MaxReply
	for _, c := range []struct {
		name    string
		replies []string
		want    string // health.Describe(err)
		is      error  // errors.Is(err, is) too
		close   bool   // after the replies
	}{
		{"banner 554", []string{"554 5.3.2 go away\r\n"}, `banner 554 "5.3.2 go away"`, nil, false},
		{"banner 421", []string{"421-busy\r\n421 try later\r\n"}, `banner 421 "busy"`, nil, false},
		{"EHLO rejected", []string{banner2, "502 5.5.1 no EHLO\r\n"}, `EHLO 502 "5.5.1 no EHLO"`, nil, false},
		{"EHLO multi-line 5xx", []string{banner2, "550-a\r\n550 b\r\n"}, `EHLO 550 "a"`, nil, false},
		{"QUIT rejected", []string{banner2, ehloOK, "500 what\r\n"}, `QUIT 500 "what"`, nil, false},
		{"garbage banner", []string{"SSH-2.0-OpenSSH_9.6\r\n"}, `malformed banner "SSH-2.0-OpenSSH_9.6": smtp: malformed reply`, reply.ErrSyntax, false},
		{"HTTP banner", []string{"HTTP/1.1 400 Bad Request\r\n"}, `malformed banner "HTTP/1.1 400 Bad Request": smtp: malformed reply`, reply.ErrSyntax, false},
		{"code mismatch", []string{"220-a\r\n250 b\r\n"}, `malformed banner "220-a": smtp: malformed reply`, reply.ErrSyntax, false},
		{"malformed EHLO", []string{banner2, "250-ok\r\nbogus\r\n"}, `malformed EHLO "250-ok": smtp: malformed reply`, reply.ErrSyntax, false},
		{"banner too long", []string{long}, "banner too long: smtp: reply too long", reply.ErrTooLong, false},
		{"closed at once", []string{""}, "connection closed before banner reply", nil, false},
		{"closed in banner", []string{"220-half\r\n"}, "connection closed before banner reply", nil, true},
		{"closed after banner", []string{banner2, ""}, "connection closed before EHLO reply", nil, false},
		{"closed after EHLO", []string{banner2, ehloOK, ""}, "connection closed before QUIT reply", nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, _ := smtpServer(t, smtpScript{replies: c.replies, close: c.close})
			err := check(Probe{}, a, 5*time.Second)
			if err == nil {
				t.Fatal("check passed")
			}
			if !errors.Is(err, ErrSMTP) {
				t.Errorf("%v is not ErrSMTP", err)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("%v is not %v", err, c.is)
			}
			if got := health.Describe(err); got != c.want {
				t.Errorf("Describe = %q, want %q (err %v)", got, c.want, err)
			}
		})
	}
}

func TestSMTPProbeTimeouts(t *testing.T) {
	for _, c := range []struct {
		name    string
		replies []string
		want    string
	}{
		{"silent", []string{"hang"}, "timeout waiting for banner reply"},
		{"half banner", []string{"220-wait for it\r\n", "hang"}, "timeout waiting for banner reply"},
		{"silent after EHLO", []string{banner2, "hang"}, "timeout waiting for EHLO reply"},
		{"silent after QUIT", []string{banner2, ehloOK, "hang"}, "timeout waiting for QUIT reply"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, _ := smtpServer(t, smtpScript{replies: c.replies})
			start := time.Now()
			err := check(Probe{}, a, 200*time.Millisecond)
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("check took %v, ctx allowed 200ms", took)
			}
			if err == nil {
				t.Fatal("check passed")
			}
			if got := health.Describe(err); got != c.want {
				t.Errorf("Describe = %q, want %q (err %v)", got, c.want, err)
			}
			if !errors.Is(err, ErrSMTP) {
				t.Errorf("%v is not ErrSMTP", err)
			}
		})
	}

	// Cancelling (not a deadline) stops a check too.
	a, _ := smtpServer(t, smtpScript{replies: []string{"hang"}})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- Probe{}.Check(ctx, a) }()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled check: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelled check did not return")
	}
}

func TestSMTPProbeRefused(t *testing.T) {
	err := check(Probe{}, testutil.ClosedAddr(t), 5*time.Second)
	if err == nil || health.Describe(err) != "connection refused" {
		t.Fatalf("closed port: %v", err)
	}
}

func TestSMTPProbeProxyV1(t *testing.T) {
	a, sessions := smtpServer(t, smtpScript{proxy: 1, replies: []string{banner2, ehloOK, quitOK}})
	if err := check(Probe{Proxy: config.ForwardProxyV1}, a, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	s := nextSession(t, sessions)
	want := fmt.Sprintf("PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\n", s.client.Port(), s.server.Port())
	if string(s.header) != want {
		t.Fatalf("header %q, want %q", s.header, want)
	}
	if len(s.commands) != 2 || s.commands[0] != "EHLO localhost\r\n" {
		t.Fatalf("commands %q", s.commands)
	}
}

func TestSMTPProbeProxyV2(t *testing.T) {
	a, sessions := smtpServer(t, smtpScript{proxy: 2, replies: []string{banner2, ehloOK, quitOK}})
	if err := check(Probe{Helo: "lb", Proxy: config.ForwardProxyV2}, a, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	s := nextSession(t, sessions)
	if string(s.header) != proxyV2L {
		t.Fatalf("header % x, want % x", s.header, proxyV2L)
	}
	if len(s.commands) != 2 || s.commands[0] != "EHLO lb\r\n" {
		t.Fatalf("commands %q", s.commands)
	}
}

func TestSMTPProbeProxyExpectedButMissing(t *testing.T) {
	// A node waiting for a PROXY header greets nobody without one: the
	// check times out rather than passing.
	a, _ := smtpServer(t, smtpScript{proxy: 1, replies: []string{banner2, ehloOK, quitOK}})
	err := check(Probe{}, a, 200*time.Millisecond)
	if health.Describe(err) != "timeout waiting for banner reply" {
		t.Fatalf("no header: %v", err)
	}
}

func TestSMTPProbeInvalidConfig(t *testing.T) {
	for _, p := range []Probe{
		{Helo: "a b"},
		{Helo: "lb\r\nRSET"},
		{Helo: "lb\x00"},
		{Helo: strings.Repeat("a", 256)},
		{Proxy: "proxy_v3"},
		{Proxy: "xclient"},
	} {
		// The address is never dialled: the probe fails first.
		if err := check(p, netip.MustParseAddrPort("127.0.0.1:1"), time.Second); !errors.Is(err, ErrSMTP) {
			t.Errorf("%+v: %v", p, err)
		}
	}
}

func TestSMTPProbeString(t *testing.T) {
	for _, c := range []struct {
		p    Probe
		want string
	}{
		{Probe{}, "smtp"},
		{Probe{Helo: "lb.example"}, "smtp"},
		{Probe{Proxy: "none"}, "smtp"},
		{Probe{Proxy: "proxy_v1"}, "smtp proxy_v1"},
		{Probe{Proxy: "proxy_v2"}, "smtp proxy_v2"},
	} {
		if got := c.p.String(); got != c.want {
			t.Errorf("%+v.String() = %q, want %q", c.p, got, c.want)
		}
	}
}

func TestNewProbeSMTP(t *testing.T) {
	p, err := probeTable().New(&config.Pool{Check: "smtp"})
	if err != nil {
		t.Fatal(err)
	}
	if p != (Probe{}) || p.String() != "smtp" {
		t.Fatalf("NewProbe(smtp) = %#v", p)
	}
	if p.String() != config.CheckSMTP {
		t.Fatalf("probe %q, config's check %q", p.String(), config.CheckSMTP)
	}
}

func TestPolicyForSMTP(t *testing.T) {
	for _, c := range []struct {
		check, helo, fwd string
		want             health.Probe
	}{
		{"", "", "", Probe{}},
		{"tcp", "lb.example", "none", Probe{Helo: "lb.example"}},
		{"tcp", "lb.example", "xclient", Probe{Helo: "lb.example", XClient: true}},
		{"smtp", "lb", "proxy_v1", Probe{Helo: "lb", Proxy: "proxy_v1"}},
		{"", "lb", "proxy_v2", Probe{Helo: "lb", Proxy: "proxy_v2"}},
		{"http", "lb", "proxy_v2", health.HTTP{Path: "/ping"}},
	} {
		pc := &config.Pool{Name: "p", Check: c.check, CheckPath: "/ping", Rise: 2}
		if c.check != "http" {
			pc.CheckPath = ""
		}
		p, err := PolicyFor(pc, probeTable(), c.helo, c.fwd)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if p.Probe != c.want || p.Rise != 2 || p.ServerRetry != health.DefaultServerRetry {
			t.Errorf("%+v: %+v", c, p)
		}
	}
	for _, c := range []struct{ check, helo, fwd string }{
		{"tcp", "lb", "proxy_v3"},
		{"tcp", "l b", "none"},
		{"icmp", "lb", "none"},
	} {
		if _, err := PolicyFor(&config.Pool{Name: "p", Check: c.check}, probeTable(), c.helo, c.fwd); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	// Without an smtp_proxy, an smtp check is the plain probe.
	p, err := health.PolicyFor(&config.Pool{Name: "p", Check: "smtp"}, probeTable())
	if err != nil || p.Probe != (Probe{}) {
		t.Fatalf("PolicyFor(smtp) = %+v, %v", p, err)
	}
}

// TestSMTPProbeXClient: for a service forwarding with XCLIENT, a relay
// whose EHLO reply lacks it fails the check; one offering it passes.
func TestSMTPProbeXClient(t *testing.T) {
	without, _ := smtpServer(t, smtpScript{replies: []string{"220 mx\r\n", "250-mx\r\n250 PIPELINING\r\n", "221 bye\r\n"}})
	err := check(Probe{XClient: true}, without, 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "XCLIENT not offered") {
		t.Fatalf("without XCLIENT: %v", err)
	}
	with, _ := smtpServer(t, smtpScript{replies: []string{"220 mx\r\n", "250-mx\r\n250 XCLIENT NAME ADDR PORT\r\n", "221 bye\r\n"}})
	if err := check(Probe{XClient: true}, with, 5*time.Second); err != nil {
		t.Fatalf("with XCLIENT: %v", err)
	}
}
