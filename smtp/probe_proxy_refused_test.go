package smtp

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/health"
	"github.com/plb/plb/internal/testutil"
	"github.com/plb/plb/pool"
)

// A relay not set up for the PROXY protocol reads the header as command
// lines and answers them after its banner, before it answers EHLO
// (Postfix without smtpd_upstream_proxy_protocol). The scripted server
// below reads no header: the header's lines are its first commands.
const (
	unknownCmd = "502 5.5.2 Error: command not recognized\r\n"
	badSyntax  = "500 5.5.2 Error: bad syntax\r\n"
)

// TestSMTPProbeProxyNotExpected: the check names the PROXY header, not
// EHLO, as what the relay refused, and says what to do; v1 is one line,
// v2's signature is three lines and "QUIT", after which the relay leaves.
func TestSMTPProbeProxyNotExpected(t *testing.T) {
	for _, c := range []struct {
		proxy   string
		replies []string
		want    string
	}{
		{config.ForwardProxyV1, []string{banner2, unknownCmd, ehloOK, quitOK},
			`the relay answered the PROXY header (proxy_v1) as an SMTP command, with 502 "5.5.2 Error: command not recognized": ` +
				`it is not set up for the PROXY protocol; configure it (Postfix: smtpd_upstream_proxy_protocol = haproxy) or set client_ip_forwarding = none`},
		{config.ForwardProxyV2, []string{banner2, badSyntax, badSyntax, badSyntax, quitOK, ""},
			`the relay answered the PROXY header (proxy_v2) as an SMTP command, with 500 "5.5.2 Error: bad syntax": ` +
				`it is not set up for the PROXY protocol; configure it (Postfix: smtpd_upstream_proxy_protocol = haproxy, Postfix 3.5 or later) or set client_ip_forwarding = none`},
	} {
		t.Run(c.proxy, func(t *testing.T) {
			a, _ := smtpServer(t, smtpScript{replies: c.replies, close: true})
			err := check(Probe{Proxy: c.proxy}, a, 5*time.Second)
			if !errors.Is(err, ErrProxyRefused) || !errors.Is(err, ErrSMTP) {
				t.Fatalf("%v is not ErrProxyRefused", err)
			}
			if got := health.Describe(err); got != c.want {
				t.Errorf("Describe = %q\nwant       %q", got, c.want)
			}
		})
	}
}

// TestSMTPProbeEHLORefusedAfterProxy: an EHLO error with nothing after it
// is EHLO's; when it is how relays answer a line they do not understand,
// the report mentions the header sent first.
func TestSMTPProbeEHLORefusedAfterProxy(t *testing.T) {
	a, _ := smtpServer(t, smtpScript{proxy: 1, replies: []string{banner2, "554 5.7.1 not you\r\n"}})
	err := check(Probe{Proxy: config.ForwardProxyV1}, a, 5*time.Second)
	if errors.Is(err, ErrProxyRefused) || health.Describe(err) != `EHLO 554 "5.7.1 not you"` {
		t.Errorf("554: %v", err)
	}
	a, _ = smtpServer(t, smtpScript{proxy: 1, replies: []string{banner2, unknownCmd}})
	err = check(Probe{Proxy: config.ForwardProxyV1}, a, 5*time.Second)
	want := `EHLO 502 "5.5.2 Error: command not recognized" (sent after a proxy_v1 header: a relay not set up for the PROXY protocol answers it so)`
	if errors.Is(err, ErrProxyRefused) || health.Describe(err) != want {
		t.Errorf("502: %v\nwant %s", health.Describe(err), want)
	}
}

// TestMonitorLogsProxyRefused: a relay that answers the PROXY header
// goes down with that reason, logged once at warning level.
func TestMonitorLogsProxyRefused(t *testing.T) {
	a, _ := smtpServer(t, smtpScript{replies: []string{banner2, unknownCmd, ehloOK, quitOK}, close: true})
	p, err := pool.New("relays", "least_conn")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetNodes([]string{a.String()}); err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	clock := testutil.NewClock(time.Unix(1000, 0))
	m := &health.Monitor{Log: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelWarn})), Now: clock.Now}
	pol := health.Policy{Probe: Probe{Proxy: config.ForwardProxyV1}, Interval: time.Second, Fall: 1}
	targets := []health.Target{{Pool: p, Policy: pol}}
	m.Tick(context.Background(), targets)
	m.Wait()
	clock.Advance(time.Second)
	m.Tick(context.Background(), targets)
	m.Wait()
	if !p.Nodes()[0].Down() {
		t.Fatalf("the node is up; log:\n%s", log.String())
	}
	out := log.String()
	if strings.Count(out, "level=WARN msg=\"node down\"") != 1 || !strings.Contains(out, "the relay answered the PROXY header (proxy_v1)") {
		t.Errorf("want one warning naming the PROXY header:\n%s", out)
	}
}
