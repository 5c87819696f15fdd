package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/internal/testhttp"
	"github.com/plb/plb/smtp"
)

// The smtp_proxy and tcp_proxy roles run from a configuration: TOML and
// PLB's legacy file, with metrics, the least_conn default and the SMTP
// health probe (the relay itself is tested in package smtp).

// smtpRelay is a scripted MTA: a greeting, then 250 to everything and
// 221 to QUIT.
func smtpRelay(t *testing.T, greeting string) *testhttp.Backend {
	return testhttp.NewBackend(t, func(b *testhttp.Backend, c net.Conn, id int64) {
		io.WriteString(c, greeting)
		r := bufio.NewReader(c)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if strings.HasPrefix(strings.ToUpper(l), "QUIT") {
				io.WriteString(c, "221 bye\r\n")
				return
			}
			io.WriteString(c, "250 ok\r\n")
		}
	})
}

// smtpChat greets through addr, says EHLO and QUIT, and returns the
// greeting.
func smtpChat(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	r := bufio.NewReader(c)
	greet, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("greeting: %v", err)
	}
	if strings.HasPrefix(greet, "421") {
		return greet
	}
	fmt.Fprintf(c, "EHLO t\r\n")
	if l, _ := r.ReadString('\n'); !strings.HasPrefix(l, "250") {
		t.Fatalf("EHLO: %q", l)
	}
	fmt.Fprintf(c, "QUIT\r\n")
	if l, _ := r.ReadString('\n'); !strings.HasPrefix(l, "221") {
		t.Fatalf("QUIT: %q", l)
	}
	return greet
}

func TestSMTPProxyFromTOML(t *testing.T) {
	a := smtpRelay(t, "220 a.test ESMTP\r\n")
	ts := startServer(t, fmt.Sprintf(`
[pool.relays]
nodes = [%q, %q]
[service.mx]
role = "smtp_proxy"
listen = "127.0.0.1:0"
pool = "relays"
smtp_hostname = "plb.test"
[service.tcp]
role = "tcp_proxy"
listen = "127.0.0.1:0"
pool = "relays"
[service.mgmt]
role = "management"
listen = "127.0.0.1:0"
`, testhttp.DeadAddr(t), a.Addr))
	// least_conn breaks ties at random: chat until the dead node was
	// tried (and skipped: the client never sees it).
	dead := ts.Pool("relays").Nodes()[0]
	chats := 0
	for chats < 3 || dead.Failures.Load() == 0 && chats < 40 {
		if got := smtpChat(t, ts.addrOf("mx")); got != "220 a.test ESMTP\r\n" {
			t.Fatalf("greeting %q", got)
		}
		chats++
	}
	// The tcp_proxy: the same relay, bytes as they are.
	if got := smtpChat(t, ts.addrOf("tcp")); got != "220 a.test ESMTP\r\n" {
		t.Fatalf("tcp greeting %q", got)
	}
	if m := ts.Pool("relays").Method(); m != config.BalanceLeastConn {
		t.Errorf("pool method %s, want least_conn (only smtp/tcp services use it)", m)
	}
	m := scrape(t, ts.addrOf("mgmt"))
	for k, want := range map[string]float64{
		`plb_sessions_total{service="mx",outcome="relayed"}`:     float64(chats),
		`plb_sessions_total{service="tcp",outcome="relayed"}`:    1,
		`plb_sessions_total{service="mx",outcome="no_backend"}`:  0,
		`plb_client_connections{service="mx",role="smtp_proxy"}`: 0,
	} {
		if got, ok := m[k]; !ok || got != want {
			t.Errorf("%s = %v (%v), want %v", k, got, ok, want)
		}
	}
	if m[`plb_session_backend_failures_total{service="mx"}`] < 1 {
		t.Errorf("no backend failure counted")
	}
	if m[`plb_received_bytes_total{service="mx",role="smtp_proxy"}`] == 0 {
		t.Errorf("no bytes counted for mx")
	}
	// The pool's health probe is the SMTP check, with the service's name.
	pol, err := ts.policyFor(ts.Config(), ts.Config().Pool("relays"))
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := pol.Probe.(smtp.Probe); !ok || p.Helo != "plb.test" {
		t.Errorf("probe %#v", pol.Probe)
	}
}

// TestSMTPProxyFromPLBFile: PLB's own file with protocol SMTP runs an
// smtp_proxy on its listen_ip/listen_port, balancing servers_ip.
func TestSMTPProxyFromPLBFile(t *testing.T) {
	a := smtpRelay(t, "220 plbfile.test ESMTP\r\n")
	_, port, _ := net.SplitHostPort(a.Addr)
	listen := testhttp.DeadAddr(t) // a free port, for the listener
	lhost, lport, _ := net.SplitHostPort(listen)
	path := filepath.Join(t.TempDir(), "plb.conf")
	conf := fmt.Sprintf("listen_ip %s\nlisten_port %s\nprotocol SMTP\nservers_ip 127.0.0.1\nservers_port %s\ntimeout_header_server_read 7\n", lhost, lport, port)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var sc *config.Service
	for _, s := range cfg.Services {
		sc = s
	}
	if sc == nil || sc.Role != config.RoleSMTPProxy || sc.BannerTimeout != 7*time.Second || sc.ClientTimeout != 5*time.Minute || sc.ServerTimeout != 10*time.Minute {
		t.Fatalf("service %+v", sc)
	}
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(cfg); err != nil {
		s.eng.Stop()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Run(t.Context()); close(done) }()
	t.Cleanup(func() { s.Shutdown(false); <-done })
	if got := smtpChat(t, listen); got != "220 plbfile.test ESMTP\r\n" {
		t.Fatalf("greeting %q", got)
	}
}
