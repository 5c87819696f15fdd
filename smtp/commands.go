package smtp

import (
	"bytes"

	"github.com/plb/plb/engine"
	"github.com/plb/plb/smtp/inspect"
)

// The relay when plb reads the client's commands (Settings.inspects):
// with client_ip_forwarding = xclient the backend authorises XCLIENT by
// plb's own address, so a client's XCLIENT (or XFORWARD) relayed as it is
// would set any address it likes, past the backend's permit_mynetworks.
// plb reads the client's command lines, outside message content, answers
// XCLIENT and XFORWARD itself with Postfix's 550 5.7.0, and takes them
// out of the EHLO reply. Encrypted commands cannot be read, so STARTTLS
// is plb's: with smtp_starttls it answers 220 and runs TLS with the
// client (the service's certificates), reading the commands inside and
// relaying them in clear to the backend, which never sees STARTTLS;
// without a certificate it takes STARTTLS out of the EHLO reply and
// answers 454. package inspect holds the reading; this file moves the
// bytes.

// clientCommands is the client's OnData while relaying with inspection.
func (s *session) clientCommands(c *engine.Conn, data []byte) int {
	used, from := 0, 0
	for used < len(data) {
		n, v := s.conv.Client(data[used:])
		switch v {
		case inspect.Forward:
			used += n
			continue
		case inspect.More:
			return s.forwardSpan(data, from, used, used)
		case inspect.Wait:
			// Held until the backend's replies decide (serverReplies
			// resumes); the kernel keeps what comes meanwhile.
			c.PauseRead()
			return s.forwardSpan(data, from, used, used)
		}
		// Drop, Answer, Close, StartTLS: what comes before goes first.
		if s.forwardSpan(data, from, used, used) != used {
			return len(data)
		}
		line := data[used : used+n]
		used += n
		from = used
		switch v {
		case inspect.Answer:
			s.refused(line)
			s.say(s.conv.Reply())
		case inspect.Close:
			s.refused(line)
			s.say(s.conv.Reply())
			s.finish(termClientError)
			return len(data)
		case inspect.StartTLS:
			if s.startTLS(c, len(data)-used) {
				return len(data) // anything after STARTTLS is dropped
			}
		}
	}
	return s.forwardSpan(data, from, used, used)
}

// forwardSpan sends data[from:to] to the backend and returns ret, or
// len(data) when the backend connection is gone (its OnClose ends the
// session).
func (s *session) forwardSpan(data []byte, from, to, ret int) int {
	if from == to {
		return ret
	}
	up := s.up.conn
	if err := up.Write(data[from:to]); err != nil {
		return len(data)
	}
	n := int64(to - from)
	s.bytesIn += n
	s.svc.Stats.BytesIn.Add(n)
	if !s.serverTurn {
		s.serverTurn = true
	}
	s.client.SetTimeout(s.st.Svc.ServerTimeout)
	if up.Full() {
		s.client.PauseRead() // until the backend drains (upstream.OnDrain)
	}
	return ret
}

// say writes plb's own reply to the client: its turn again.
func (s *session) say(r string) {
	s.bytesOut += int64(len(r))
	s.svc.Stats.BytesOut.Add(int64(len(r)))
	s.client.Write([]byte(r))
	s.serverTurn = false
	s.client.SetTimeout(s.st.Svc.ClientTimeout)
}

// refused counts and logs a client line plb answers itself.
func (s *session) refused(line []byte) {
	s.svc.Stats.Refused.Add(1)
	verb := bytes.TrimLeft(line, " \t\v\f")
	if i := bytes.IndexAny(verb, " \t\r\n"); i >= 0 {
		verb = verb[:i]
	}
	if len(verb) > 16 {
		verb = verb[:16]
	}
	s.svc.log.Info("command refused", "client", s.client.RemoteAddr().String(), "command", string(verb), "reply", s.conv.Reply()[:3])
}

// startTLS answers STARTTLS; it reports whether TLS with the client
// started (then the rest bytes read after the command are dropped: they
// came in clear before the handshake, where anyone could have put them;
// the CVE-2011-0411 rule).
func (s *session) startTLS(c *engine.Conn, rest int) bool {
	cfg := s.st.StartTLS
	switch {
	case c.TLS():
		s.say(inspect.ReplyTLSActive)
		return false
	case cfg == nil:
		s.say(inspect.ReplyTLSNotAvailable)
		return false
	}
	s.say(inspect.ReplyTLSReady)
	if rest > 0 {
		s.svc.log.Info("bytes after STARTTLS dropped", "client", s.client.RemoteAddr().String(), "bytes", rest)
	}
	s.svc.Stats.StartTLS.Add(1)
	s.conv.TLSStarted()
	c.StartTLS(cfg, nil) // the 220 leaves in clear, what follows is encrypted
	return true
}

// serverReplies is the backend's OnData while relaying with inspection:
// replies go to the client as they come, but the EHLO reply, which is
// filtered; a reply that ends a wait lets the client's bytes go on.
func (u *upstream) serverReplies(c *engine.Conn, data []byte) int {
	s := u.s
	waiting := s.conv.Waiting()
	used := 0
	for used < len(data) {
		n, v := s.conv.Server(data[used:])
		switch v {
		case inspect.NeedEHLO:
			goto out // the engine keeps the rest until more comes
		case inspect.BadReply:
			s.svc.log.Info("backend failed", "node", u.node.Name, "reason", "malformed EHLO reply", "client", s.client.RemoteAddr().String())
			s.say("421 4.4.0 " + s.st.Hostname + " Error: malformed reply from the mail relay, closing\r\n")
			s.finish(termServerError)
			return len(data)
		case inspect.EHLO:
			offer := s.st.StartTLS != nil && !s.client.TLS()
			s.ehlo = inspect.FilterEHLO(s.ehlo[:0], data[used:used+n], offer)
			if !s.toClient(s.ehlo) {
				return len(data)
			}
		default:
			if !s.toClient(data[used : used+n]) {
				return len(data)
			}
		}
		used += n
	}
out:
	if s.conv.Pending() == 0 && s.serverTurn {
		s.serverTurn = false
		s.client.SetTimeout(s.st.Svc.ClientTimeout)
	}
	if waiting && !s.conv.Waiting() {
		if s.client.Paused() {
			s.client.ResumeRead()
		} else {
			s.client.Kick()
		}
	}
	if s.client.Full() {
		c.PauseRead() // until the client drains (session.OnDrain)
	}
	return used
}

// toClient relays backend bytes to the client; false when the client is
// gone.
func (s *session) toClient(p []byte) bool {
	if err := s.client.Write(p); err != nil {
		return false
	}
	s.bytesOut += int64(len(p))
	s.svc.Stats.BytesOut.Add(int64(len(p)))
	return true
}
