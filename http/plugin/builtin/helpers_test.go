package builtin

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/http"
	"github.com/plb/plb/http/plugin"
)

// request builds a plugin.Request for svc from a raw head ("\n" line ends
// become CRLF; the blank line is added), from peer, with no network.
func request(t *testing.T, svc *config.Service, peer, raw string) *plugin.Request {
	t.Helper()
	raw = strings.ReplaceAll(raw, "\n", "\r\n") + "\r\n\r\n"
	var p http.Parser
	h := &http.RequestHead{}
	if n, err := p.ParseRequest([]byte(raw), h); err != nil || n == 0 {
		t.Fatalf("parse %q: %d %v", raw, n, err)
	}
	return &plugin.Request{Svc: svc, Head: h, PeerAddr: netip.MustParseAddr(peer), LocalPort: 8080, Now: time.Unix(1000, 0)}
}

// instance registers plugin name on svc (LOADed through the registry) and
// returns the instance.
func instance(t *testing.T, name string, svc *config.Service) any {
	t.Helper()
	p, ok := New().Plugin(name)
	if !ok {
		t.Fatalf("no plugin %s", name)
	}
	inst, err := p.Register(svc)
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	return inst
}

// service parses a Perlbal configuration and returns service name.
func service(t *testing.T, name, conf string) *config.Service {
	t.Helper()
	c, err := config.Parse("test.conf", []byte(conf), nil)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, conf)
	}
	s := c.Service(name)
	if s == nil {
		t.Fatalf("no service %s", name)
	}
	return s
}

// answer returns the status and message of the answer a hook gave (0 if
// none).
func answer(r *plugin.Request) (int, string) {
	if !r.Answered() {
		return 0, ""
	}
	resp := r.Response()
	if resp.Full {
		return resp.Status, strings.Join(resp.Header, "|")
	}
	return resp.Status, resp.Msg
}
