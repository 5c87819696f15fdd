// Package inspect follows an SMTP session through a front that must see
// every command its server will see: plb's smtp_proxy with
// client_ip_forwarding = xclient (the server authorises XCLIENT by plb's
// address, so a client's own XCLIENT must never reach it) or
// smtp_starttls (plb answers STARTTLS itself).
//
// A Conv reads the client's byte stream (Client) and the server's replies
// (Server). It tells command lines from message content the way the
// server does: after DATA only once the server said 354, then up to the
// line "."; after AUTH, while the server says 334, one SASL response line
// at a time. plb forwards whole lines only, so wherever its view and the
// server's could differ, the two still cut the stream at the same line
// ends, and plb's view is chosen so that it sees a command wherever the
// server could: the end of DATA is a "." line between any of CRLF, LF or
// CR (SMTP smuggling), a command verb is found after leading blanks,
// case-insensitively, and a command line holding a bare CR is refused.
// BDAT would break that: its chunk is counted in bytes, and a server that
// takes a chunk where plb does not (Postfix takes one without an EHLO
// that offered CHUNKING) or the reverse (a BDAT it refuses at once) ends
// it inside what the other reads as a line. So plb answers BDAT itself
// (502) and takes CHUNKING and BINARYMIME out of the EHLO reply: clients
// send DATA.
//
// A client command whose reply decides how the next bytes are read (EHLO,
// DATA, AUTH, a SASL response) is forwarded and the client's next bytes
// wait until its reply is in; a command plb answers itself waits until
// every reply before it is in, so that replies reach the client in the
// order of its commands. RFC 2920 puts EHLO, DATA and the end of a SASL
// step last in a pipelined group already, so a conforming client never
// waits for these pauses.
//
// Nothing here allocates: the state is a few integers, and lines are
// looked at where they lie in the caller's buffers.
package inspect

import (
	"bytes"

	"github.com/plb/plb/smtp/reply"
)

// Limits on what a client sends outside message content.
const (
	// MaxCommand bounds a command line, CRLF included. RFC 5321
	// 4.5.3.1.4 says 512, but its extensions make MAIL and RCPT longer
	// (AUTH=, ORCPT=, ENVID=, SIZE=, ...), and Postfix reads 2048
	// (line_length_limit): plb takes as much.
	MaxCommand = 2048
	// MaxSASL bounds a SASL response line (after a 334): GSSAPI tokens
	// run to a few KiB.
	MaxSASL = 12 << 10
)

// Verdict says what to do with the bytes Client looked at.
type Verdict uint8

const (
	// More: data holds an incomplete line; n is 0. Read more.
	More Verdict = iota
	// Forward: data[:n] goes to the server.
	Forward
	// Drop: data[:n] is consumed and goes nowhere (the rest of a line
	// plb refused as too long).
	Drop
	// Wait: nothing is decided until the server's replies to what was
	// forwarded are in; n is 0. Stop reading the client; Server reports
	// the end of the wait (Waiting turns false).
	Wait
	// Answer: data[:n] is a command plb answers itself, with Reply();
	// every earlier reply has reached the client.
	Answer
	// Close: plb answers Reply() and ends the session (data[:n] is the
	// offending input).
	Close
	// StartTLS: data[:n] is "STARTTLS" and every earlier reply has reached
	// the client. The caller answers: 220 and TLSStarted when it
	// terminates TLS, else a refusal (then the session goes on as it was).
	StartTLS
)

// Replies plb gives itself. XCLIENT and XFORWARD get Postfix's reply to a
// client it does not authorise.
const (
	ReplyUnauthorized = "550 5.7.0 Error: insufficient authorization\r\n"
	ReplyTooLong      = "500 5.5.2 Error: line too long\r\n"
	ReplyBareCR       = "500 5.5.2 Error: bad syntax (bare <CR> in a command)\r\n"
	ReplyNeedHelo     = "503 5.5.1 Error: send HELO/EHLO first\r\n"
	ReplyStartTLSArgs = "501 5.5.4 Syntax: STARTTLS\r\n"
	ReplyBDAT         = "502 5.5.1 Error: command not implemented\r\n"
	// The caller's STARTTLS replies.
	ReplyTLSReady        = "220 2.0.0 Ready to start TLS\r\n"
	ReplyTLSNotAvailable = "454 4.7.0 TLS not available\r\n"
	ReplyTLSActive       = "554 5.5.1 Error: TLS already active\r\n"
)

// Client stream states.
const (
	csCommand = iota // command lines
	csSkip           // the rest of a command line refused as too long
	csContent        // DATA content, up to the "." line
	csSASL           // a SASL response line
)

// What a wait waits for: the reply to the last forwarded line decides.
const (
	wNone = iota
	wOwn  // plb answers the next line itself: every reply must be in
	wEHLO // the EHLO reply (filtered by the caller)
	wData // 354: content follows
	wAuth // 334: a SASL response line follows
)

// Conv is one session's state. The zero value is not ready: use Init.
type Conv struct {
	refuseX bool // XCLIENT and XFORWARD are answered 550

	state    uint8
	wait     uint8
	prev     byte // csContent: the last byte consumed ('\n' at the start)
	needHelo bool // after TLS started: EHLO or HELO before the rest
	// pending counts the lines forwarded whose replies have not come
	// back.
	pending int
	reply   string

	// The server side: the line being read, and where it is in a reply.
	rlen  int     // bytes of the current reply line seen (0: at a line start)
	rhead [4]byte // its first four bytes
	rcont bool    // inside a multi-line reply (a "ddd-" line came)
	// LastCode is the code of the last complete reply.
	LastCode int
}

// Init readies c for a session whose server has just greeted (nothing
// pending). refuseXClient: XCLIENT and XFORWARD are answered 550 5.7.0.
func (c *Conv) Init(refuseXClient bool) {
	*c = Conv{refuseX: refuseXClient}
}

// Waiting reports whether the client's next bytes wait for the server.
func (c *Conv) Waiting() bool { return c.wait != wNone }

// Pending is how many forwarded lines still wait for their reply.
func (c *Conv) Pending() int { return c.pending }

// InContent reports whether the client is sending DATA content.
func (c *Conv) InContent() bool { return c.state == csContent }

// Reply is plb's own reply of the last Answer or Close.
func (c *Conv) Reply() string { return c.reply }

// TLSStarted is called when plb answered STARTTLS with 220 and starts
// TLS with the client: as RFC 3207 4.2 asks, what the client said before
// is forgotten, so until its new EHLO (or HELO) only QUIT, NOOP and RSET
// reach the server (the EHLO resets the server's transaction).
func (c *Conv) TLSStarted() { c.needHelo = true }

// Client looks at the client's bytes from where it stopped last and says
// what to do with a prefix of data. Call it again on the rest.
func (c *Conv) Client(data []byte) (n int, v Verdict) {
	if c.wait != wNone {
		return 0, Wait
	}
	switch c.state {
	case csContent:
		return c.content(data)
	case csSkip:
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return len(data), Drop
		}
		c.state = csCommand
		return i + 1, Drop
	case csSASL:
		i := bytes.IndexByte(data, '\n')
		if i < 0 && len(data) < MaxSASL {
			return 0, More
		}
		if i < 0 || i+1 > MaxSASL {
			// The server waits for this line: there is no answering it
			// on the server's behalf and going on.
			c.reply = ReplyTooLong
			return len(data), Close
		}
		if b := bytes.IndexByte(data[:i], '\r'); b >= 0 && b < i-1 {
			// Base64 has no CR: a server ending lines at a bare CR would
			// take what follows it as a command.
			c.reply = ReplyBareCR
			return i + 1, Close
		}
		c.state = csCommand
		c.pending++
		c.wait = wAuth // 334 again: another response line
		return i + 1, Forward
	}
	return c.command(data)
}

// own makes plb answer the line data[:n] with r, once every reply before
// it is in.
func (c *Conv) own(n int, r string, v Verdict) (int, Verdict) {
	if c.pending > 0 {
		c.wait = wOwn
		return 0, Wait
	}
	c.reply = r
	return n, v
}

// command reads a command line.
func (c *Conv) command(data []byte) (int, Verdict) {
	i := bytes.IndexByte(data, '\n')
	if i < 0 || i+1 > MaxCommand {
		if i < 0 && len(data) < MaxCommand {
			return 0, More
		}
		n, v := c.own(len(data), ReplyTooLong, Answer)
		if v == Answer {
			if i < 0 {
				c.state = csSkip // the rest of the line goes
			} else {
				n = i + 1
			}
		}
		return n, v
	}
	n := i + 1
	body := data[:i]
	if len(body) > 0 && body[len(body)-1] == '\r' {
		body = body[:len(body)-1]
	}
	if bytes.IndexByte(body, '\r') >= 0 {
		// A server that ends lines at a bare CR would see two commands.
		return c.own(n, ReplyBareCR, Answer)
	}
	verb, args := splitVerb(body)
	if c.needHelo && !verbIs(verb, "EHLO") && !verbIs(verb, "HELO") && !verbIs(verb, "QUIT") &&
		!verbIs(verb, "NOOP") && !verbIs(verb, "RSET") && !verbIs(verb, "STARTTLS") {
		return c.own(n, ReplyNeedHelo, Answer)
	}
	switch len(verb) {
	case 4:
		switch {
		case verbIs(verb, "EHLO"):
			c.needHelo = false
			return c.forward(n, wEHLO)
		case verbIs(verb, "HELO"):
			c.needHelo = false
		case verbIs(verb, "DATA"):
			return c.forward(n, wData)
		case verbIs(verb, "AUTH"):
			return c.forward(n, wAuth)
		case verbIs(verb, "BDAT"):
			return c.own(n, ReplyBDAT, Answer)
		}
	case 7:
		if c.refuseX && verbIs(verb, "XCLIENT") {
			return c.own(n, ReplyUnauthorized, Answer)
		}
	case 8:
		switch {
		case c.refuseX && verbIs(verb, "XFORWARD"):
			return c.own(n, ReplyUnauthorized, Answer)
		case verbIs(verb, "STARTTLS"):
			if len(args) > 0 {
				return c.own(n, ReplyStartTLSArgs, Answer)
			}
			return c.own(n, "", StartTLS)
		}
	}
	return c.forward(n, wNone)
}

// forward sends a line whose reply is awaited; with w, the client's next
// bytes wait for that reply.
func (c *Conv) forward(n int, w uint8) (int, Verdict) {
	c.pending++
	c.wait = w
	return n, Forward
}

// content passes DATA content through up to its end: a "." line. RFC
// 5321 ends it at CRLF "." CRLF only, but servers also take a bare LF
// (Postfix) or CR as a line end there; if plb ended it later than the
// server, bytes it takes for content would be commands to the server. So
// the line "." between any of CRLF, LF and CR ends it.
func (c *Conv) content(data []byte) (int, Verdict) {
	i := 0
	for {
		j := bytes.IndexByte(data[i:], '.')
		if j < 0 {
			if len(data) == 0 {
				return 0, More
			}
			c.prev = data[len(data)-1]
			return len(data), Forward
		}
		k := i + j
		before := c.prev
		if k > 0 {
			before = data[k-1]
		}
		if before != '\n' && before != '\r' {
			i = k + 1
			continue
		}
		// A dot at the start of a line: what follows decides.
		end := 0
		switch {
		case k+1 >= len(data) || data[k+1] == '\r' && k+2 >= len(data):
			// Not known yet: keep the dot for the next read.
			if k == 0 {
				return 0, More
			}
			c.prev = data[k-1]
			return k, Forward
		case data[k+1] == '\n':
			end = k + 2
		case data[k+1] == '\r':
			end = k + 2
			if data[k+2] == '\n' {
				end = k + 3
			}
		default:
			i = k + 1 // a dot-stuffed line
			continue
		}
		c.state = csCommand
		c.pending++ // the reply to the message
		return end, Forward
	}
}

// Server looks at the server's bytes from where it stopped last. Pass:
// data[:n] goes to the client as it is. The reply to EHLO is handed over
// whole: NeedEHLO (n == 0) until it is all in data, then EHLO with its
// length (the caller filters it with FilterEHLO); BadReply if it is not
// a reply or longer than reply.Max (end the session).
func (c *Conv) Server(data []byte) (n int, v ServerVerdict) {
	i := 0
	for i < len(data) {
		if c.rlen == 0 && !c.rcont && c.pending == 1 && c.wait == wEHLO {
			if i > 0 {
				return i, Pass // what comes before it first
			}
			code, n, err := reply.Parse(data)
			if err != nil {
				return 0, BadReply
			}
			if n == 0 {
				return 0, NeedEHLO
			}
			c.replyDone(code)
			return n, EHLO
		}
		j := bytes.IndexByte(data[i:], '\n')
		end := len(data)
		if j >= 0 {
			end = i + j + 1
		}
		if c.rlen < 4 {
			copy(c.rhead[c.rlen:], data[i:end])
		}
		c.rlen += end - i
		i = end
		if j < 0 {
			break
		}
		// A whole line: a reply ends at a line that is not "ddd-".
		if c.rlen > 4 && c.rhead[3] == '-' {
			c.rcont = true
		} else {
			c.replyDone(c.headCode())
		}
		c.rlen = 0
	}
	return i, Pass
}

// ServerVerdict says what to do with the bytes Server looked at.
type ServerVerdict uint8

const (
	Pass     ServerVerdict = iota // data[:n] to the client
	NeedEHLO                      // the EHLO reply is not all in: read more
	EHLO                          // data[:n] is the EHLO reply
	BadReply                      // the EHLO reply is broken: end the session
)

// headCode is the current line's reply code (0 if it has none).
func (c *Conv) headCode() int {
	h := c.rhead
	if c.rlen < 3 || h[0] < '0' || h[0] > '9' || h[1] < '0' || h[1] > '9' || h[2] < '0' || h[2] > '9' {
		return 0
	}
	return int(h[0]-'0')*100 + int(h[1]-'0')*10 + int(h[2]-'0')
}

// replyDone counts a complete reply; the one that leaves nothing pending
// ends a wait, its code deciding how the client's bytes are read next.
func (c *Conv) replyDone(code int) {
	c.rcont = false
	c.LastCode = code
	if c.pending == 0 {
		return // unsolicited (a 421 before closing)
	}
	c.pending--
	if c.pending > 0 || c.wait == wNone {
		return
	}
	switch c.wait {
	case wData:
		if code == 354 {
			c.state, c.prev = csContent, '\n'
		}
	case wAuth:
		if code == 334 {
			c.state = csSASL
		}
	}
	c.wait = wNone
}

// splitVerb splits a command line (without its line end) into its verb
// and the arguments after it, skipping blanks as Postfix's tokenizer does.
func splitVerb(line []byte) (verb, args []byte) {
	i := 0
	for i < len(line) && isBlank(line[i]) {
		i++
	}
	j := i
	for j < len(line) && !isBlank(line[j]) {
		j++
	}
	verb = line[i:j]
	for j < len(line) && isBlank(line[j]) {
		j++
	}
	return verb, line[j:]
}

// isBlank is C's isspace but CR (refused before) and LF (the line end).
func isBlank(b byte) bool { return b == ' ' || b == '\t' || b == '\v' || b == '\f' }

// verbIs compares a verb with an upper-case name, ignoring case.
func verbIs(verb []byte, name string) bool {
	if len(verb) != len(name) {
		return false
	}
	for i := range len(verb) {
		if verb[i]&^0x20 != name[i] {
			return false
		}
	}
	return true
}

// FilterEHLO appends the EHLO reply r (one whole reply, as reply.Parse
// delimits it) to dst without its XCLIENT, XFORWARD, STARTTLS, CHUNKING
// and BINARYMIME lines, plus a STARTTLS line when starttls is set, with the continuation marks
// set again ("ddd-" on every line but the last, "ddd " on that one). A
// reply that is not 2xx is appended as it is.
func FilterEHLO(dst, r []byte, starttls bool) []byte {
	if len(r) < 3 || r[0] != '2' {
		return append(dst, r...)
	}
	last := -1 // where the last line written starts in dst
	for len(r) > 0 {
		line := r
		if i := bytes.IndexByte(r, '\n'); i >= 0 {
			line, r = r[:i+1], r[i+1:]
		} else {
			r = nil
		}
		text, eol := line, len(line)
		if eol > 0 && text[eol-1] == '\n' {
			eol--
			if eol > 0 && text[eol-1] == '\r' {
				eol--
			}
		}
		text, crlf := line[:eol], line[eol:]
		if len(text) < 3 {
			continue
		}
		var ext []byte
		if len(text) > 4 {
			ext = text[4:]
		}
		if last >= 0 { // an extension line (the first is the greeting)
			kw, _ := splitVerb(ext)
			if verbIs(kw, "XCLIENT") || verbIs(kw, "XFORWARD") || verbIs(kw, "STARTTLS") ||
				verbIs(kw, "CHUNKING") || verbIs(kw, "BINARYMIME") {
				continue
			}
		}
		last = len(dst)
		dst = append(dst, text[0], text[1], text[2], '-')
		dst = append(dst, ext...)
		if len(crlf) == 0 {
			dst = append(dst, "\r\n"...)
		} else {
			dst = append(dst, crlf...)
		}
	}
	if last < 0 {
		return dst
	}
	if starttls {
		c0, c1, c2 := dst[last], dst[last+1], dst[last+2]
		last = len(dst)
		dst = append(dst, c0, c1, c2, '-')
		dst = append(dst, "STARTTLS\r\n"...)
	}
	dst[last+3] = ' '
	return dst
}
