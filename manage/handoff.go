package manage

import (
	"net/netip"

	"github.com/plb/plb/engine"
	"github.com/plb/plb/http/handoff"
	"github.com/plb/plb/http/status"
)

// Adopt serves the HTTP request a selector hands on (VHOST status.example
// = mgmt): the status page, /metrics, Perlbal's pages; never console
// commands. The connection closes after the response, as on the
// management port. Only a peer inside the service's allow list, or a
// loopback peer when it has none, gets an answer; any other gets 403 (the
// selector may listen where the console does not). Runs on the loop,
// inside the selector's OnData.
func (s *Service) Adopt(c *engine.Conn, hc *handoff.Client) {
	if !s.allowedThrough(c.RemoteAddr().Addr()) {
		c.Write(status.AppendSimple(nil, 403, "Access denied.", status.Options{}))
		c.Close()
		return
	}
	h := &conn{con: &console{svc: s}, mode: modeHTTP}
	c.SetHandler(h)
	h.OnOpen(c)
	c.ResumeRead()
	c.Kick()
}

// PluginCommander is the part of a Runtime that runs the console commands
// LOADed plugins add (Stats' stats and recent, Highpri's patterns).
type PluginCommander interface {
	// PluginCommand runs the prepared console line; ok is false when no
	// LOADed plugin has its command word.
	PluginCommand(line string) (out []string, ok bool, err error)
}

// allowedThrough reports whether peer may see the management pages through
// a selector: the allow list decides; without one, loopback peers only.
func (s *Service) allowedThrough(peer netip.Addr) bool { return s.admits(peer, false) }
