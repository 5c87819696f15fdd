package inspect

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// model is an SMTP server as plb's backends are, reading what plb
// forwards: Postfix's reading (a line ends at LF, a CR before it is
// dropped; a command's words are split at ASCII blanks; DATA ends at the
// line "."; BDAT takes its chunk whenever CHUNKING is on, offered or not,
// and the size is all digits), or with crBreaks a server that also
// ends lines at a bare CR. It trusts its client for XCLIENT, as a backend
// trusts plb: every command it reads is recorded, and the tests check
// that XCLIENT, XFORWARD and STARTTLS never are.
type model struct {
	chunking bool // offers CHUNKING
	crBreaks bool
	in       []byte
	state    int // 0 commands, 1 DATA content, 2 BDAT chunk, 3 SASL response
	chunk    int
	refuse   bool // a RCPT TO:<refuse> came: DATA gets 554
	commands []string
	out      []byte
}

const (
	mCommand = iota
	mData
	mChunk
	mSASL
)

// line takes a line from m.in: its text without the line end.
func (m *model) line() (string, bool) {
	i := bytes.IndexByte(m.in, '\n')
	if m.crBreaks {
		if j := bytes.IndexByte(m.in, '\r'); j >= 0 && (i < 0 || j < i-1) && j+1 < len(m.in) {
			l := string(m.in[:j])
			m.in = m.in[j+1:]
			return l, true
		}
	}
	if i < 0 {
		return "", false
	}
	l := string(m.in[:i])
	m.in = m.in[i+1:]
	return strings.TrimSuffix(l, "\r"), true
}

func (m *model) reply(r string) { m.out = append(m.out, r...) }

// read consumes forwarded bytes and queues the replies.
func (m *model) read(p []byte) {
	m.in = append(m.in, p...)
	for {
		if m.state == mChunk {
			if len(m.in) == 0 {
				return
			}
			n := min(len(m.in), m.chunk)
			m.in, m.chunk = m.in[n:], m.chunk-n
			if m.chunk == 0 {
				m.state = mCommand
				m.reply("250 2.0.0 chunk ok\r\n")
			}
			continue
		}
		l, ok := m.line()
		if !ok {
			return
		}
		switch m.state {
		case mData:
			if l == "." {
				m.state = mCommand
				m.reply("250 2.0.0 Ok: queued\r\n")
			}
			continue
		case mSASL:
			m.state = mCommand
			switch l {
			case "*":
				m.reply("501 5.7.0 Authentication aborted\r\n")
			case "more":
				m.state = mSASL
				m.reply("334 \r\n")
			default:
				m.reply("235 2.7.0 Authentication successful\r\n")
			}
			continue
		}
		f := strings.FieldsFunc(l, func(r rune) bool { return r < 0x80 && isBlank(byte(r)) || r == '\r' || r == '\n' })
		if len(f) == 0 {
			m.reply("500 5.5.2 Error: bad syntax\r\n")
			continue
		}
		verb := strings.ToUpper(f[0])
		m.commands = append(m.commands, verb)
		switch verb {
		case "EHLO":
			m.refuse = false
			m.reply("250-m.test\r\n250-PIPELINING\r\n250-XCLIENT NAME ADDR PORT\r\n250-XFORWARD NAME ADDR\r\n250-STARTTLS\r\n")
			if m.chunking {
				m.reply("250-CHUNKING\r\n")
			}
			m.reply("250 8BITMIME\r\n")
		case "RCPT":
			if strings.Contains(l, "refuse") {
				m.refuse = true
				m.reply("550 5.1.1 no\r\n")
			} else {
				m.reply("250 2.1.5 Ok\r\n")
			}
		case "DATA":
			if m.refuse {
				m.reply("554 5.5.1 Error: no valid recipients\r\n")
			} else {
				m.state = mData
				m.reply("354 End data with <CR><LF>.<CR><LF>\r\n")
			}
		case "AUTH":
			if len(f) > 2 {
				m.reply("235 2.7.0 Authentication successful\r\n")
			} else {
				m.state = mSASL
				m.reply("334 \r\n")
			}
		case "BDAT":
			size, err := strconv.Atoi(f[min(1, len(f)-1)])
			if !m.chunking || len(f) < 2 || err != nil || size < 0 || strings.Trim(f[1], "0123456789") != "" {
				m.reply("502 5.5.1 Error: command not implemented\r\n")
				continue
			}
			if size == 0 {
				m.reply("250 2.0.0 chunk ok\r\n")
				continue
			}
			m.state, m.chunk = mChunk, size
		case "XCLIENT":
			m.reply("220 m.test ESMTP\r\n")
		case "STARTTLS":
			m.reply("220 2.0.0 Ready to start TLS\r\n")
		case "QUIT":
			m.reply("221 2.0.0 Bye\r\n")
		default:
			m.reply("250 2.0.0 Ok\r\n")
		}
	}
}

// run passes the client's bytes (in the pieces of cuts: each read ends
// at the next cut) through a Conv in front of m, the server's replies
// coming back in pieces of rcut bytes (0: whole), as the relay does. It
// returns what the client got. tls: plb answers STARTTLS 220 (and drops
// what follows in the read), else 454.
func run(t testing.TB, c *Conv, m *model, client []byte, cuts []int, rcut int, tls bool) string {
	var got []byte
	var held []byte // the client's bytes not consumed yet
	pos := 0
	feedServer := func() {
		for len(m.out) > 0 {
			p := m.out
			if rcut > 0 && len(p) > rcut {
				p = p[:rcut]
			}
			var buf []byte
			buf = append(buf, p...)
			m.out = m.out[len(p):]
			for len(buf) > 0 {
				n, v := c.Server(buf)
				switch v {
				case NeedEHLO:
					// Take more of what the server has.
					if len(m.out) == 0 {
						t.Fatalf("NeedEHLO with nothing more: %q", buf)
					}
					k := min(len(m.out), max(rcut, 1))
					buf = append(buf, m.out[:k]...)
					m.out = m.out[k:]
					continue
				case BadReply:
					t.Fatalf("BadReply on %q", buf)
				case EHLO:
					got = FilterEHLO(got, buf[:n], tls)
				default:
					got = append(got, buf[:n]...)
				}
				buf = buf[n:]
			}
		}
	}
	for {
		// Process what is held.
		progress := false
		for len(held) > 0 {
			n, v := c.Client(held)
			switch v {
			case Forward:
				m.read(held[:n])
			case Drop:
			case Answer:
				got = append(got, c.Reply()...)
			case Close:
				got = append(got, c.Reply()...)
				return string(got)
			case StartTLS:
				if tls {
					// What follows in clear is dropped (or would break
					// the handshake): the input ends here.
					got = append(got, ReplyTLSReady...)
					c.TLSStarted()
					n, pos = len(held), len(client)
				} else {
					got = append(got, ReplyTLSNotAvailable...)
				}
			}
			if v == More || v == Wait {
				break
			}
			held = held[n:]
			progress = true
		}
		if len(m.out) > 0 {
			feedServer()
			continue
		}
		if pos < len(client) {
			end := len(client)
			for len(cuts) > 0 {
				c0 := cuts[0]
				cuts = cuts[1:]
				if c0 > pos && c0 < end {
					end = c0
					break
				}
			}
			held = append(held, client[pos:end]...)
			pos = end
			continue
		}
		if !progress {
			return string(got)
		}
	}
}

func newConv(refuseX bool) *Conv {
	c := &Conv{}
	c.Init(refuseX)
	return c
}

// checkCommands fails when the server read a command plb must keep from
// it.
func checkCommands(t testing.TB, m *model, input []byte) {
	t.Helper()
	for _, v := range m.commands {
		if v == "XCLIENT" || v == "XFORWARD" || v == "STARTTLS" {
			t.Fatalf("the server read %s as a command (commands %q) from %q", v, m.commands, input)
		}
	}
}

func TestConv(t *testing.T) {
	const ehloOut = "250-m.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
	for _, tc := range []struct {
		name     string
		in       string
		chunking bool
		tls      bool
		want     string   // what the client gets
		cmds     []string // what the server reads as commands
	}{
		{name: "xclient refused", in: "XCLIENT ADDR=10.0.0.1 LOGIN=root\r\nxforward addr=1.2.3.4\r\nQUIT\r\n",
			want: ReplyUnauthorized + ReplyUnauthorized + "221 2.0.0 Bye\r\n", cmds: []string{"QUIT"}},
		{name: "blanks and tabs before the verb", in: "  \tXClient ADDR=1.2.3.4\r\n\fXCLIENT\tADDR=1.2.3.4\n",
			want: ReplyUnauthorized + ReplyUnauthorized},
		{name: "ehlo filtered", in: "EHLO c.test\r\n", want: ehloOut, cmds: []string{"EHLO"}},
		{name: "ehlo with tls offered", in: "EHLO c.test\r\n", tls: true,
			want: "250-m.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 STARTTLS\r\n", cmds: []string{"EHLO"}},
		{name: "pipelined, xclient in order", in: "MAIL FROM:<a@b>\r\nXCLIENT ADDR=1.2.3.4\r\nRCPT TO:<c@d>\r\n",
			want: "250 2.0.0 Ok\r\n" + ReplyUnauthorized + "250 2.1.5 Ok\r\n", cmds: []string{"MAIL", "RCPT"}},
		{name: "xclient in DATA content is content",
			in:   "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nXCLIENT ADDR=1.2.3.4\r\n..leading dot\r\n.\r\nQUIT\r\n",
			want: "250 2.0.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued\r\n221 2.0.0 Bye\r\n",
			cmds: []string{"MAIL", "RCPT", "DATA", "QUIT"}},
		{name: "DATA refused: the next line is a command",
			in:   "MAIL FROM:<a@b>\r\nRCPT TO:<refuse@d>\r\nDATA\r\nXCLIENT ADDR=1.2.3.4\r\n.\r\n",
			want: "250 2.0.0 Ok\r\n550 5.1.1 no\r\n554 5.5.1 Error: no valid recipients\r\n" + ReplyUnauthorized + "250 2.0.0 Ok\r\n",
			cmds: []string{"MAIL", "RCPT", "DATA", "."}},
		{name: "smuggling: bare LF dot ends DATA for plb too",
			in:   "DATA\r\nhi\n.\nXCLIENT ADDR=1.2.3.4\r\nQUIT\r\n",
			want: "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued\r\n" + ReplyUnauthorized + "221 2.0.0 Bye\r\n",
			cmds: []string{"DATA", "QUIT"}},
		{name: "smuggling: LF dot CRLF", in: "DATA\r\nhi\n.\r\nXCLIENT ADDR=1.2.3.4\r\n",
			want: "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued\r\n" + ReplyUnauthorized, cmds: []string{"DATA"}},
		{name: "bdat answered by plb, its chunk read as commands", chunking: true,
			in:   "EHLO c\r\nMAIL FROM:<a@b>\r\nBDAT 22 LAST\r\nXCLIENT ADDR=1.2.3.4\r\nQUIT\r\n",
			want: ehloOut + "250 2.0.0 Ok\r\n" + ReplyBDAT + ReplyUnauthorized + "221 2.0.0 Bye\r\n",
			cmds: []string{"EHLO", "MAIL", "QUIT"}},
		{name: "bdat before EHLO", chunking: true, in: "BDAT 9 \n000000000XFORWARD\n",
			want: ReplyBDAT + "250 2.0.0 Ok\r\n", cmds: []string{"000000000XFORWARD"}},
		{name: "sasl response is not a command", in: "AUTH LOGIN\r\nmore\r\nXFORWARD\r\nXCLIENT ADDR=1.2.3.4\r\n",
			want: "334 \r\n334 \r\n235 2.7.0 Authentication successful\r\n" + ReplyUnauthorized, cmds: []string{"AUTH"}},
		{name: "bare CR refused", in: "NOOP\rXCLIENT ADDR=1.2.3.4\r\nNOOP\r\n",
			want: ReplyBareCR + "250 2.0.0 Ok\r\n", cmds: []string{"NOOP"}},
		{name: "too long", in: "NOOP " + strings.Repeat("x", MaxCommand) + "\r\nNOOP\r\n",
			want: ReplyTooLong + "250 2.0.0 Ok\r\n", cmds: []string{"NOOP"}},
		{name: "longest", in: "NOOP " + strings.Repeat("x", MaxCommand-7) + "\r\n",
			want: "250 2.0.0 Ok\r\n", cmds: []string{"NOOP"}},
		{name: "starttls withheld", in: "STARTTLS\r\nSTARTTLS now\r\nNOOP\r\n",
			want: ReplyTLSNotAvailable + ReplyStartTLSArgs + "250 2.0.0 Ok\r\n", cmds: []string{"NOOP"}},
		{name: "starttls: injected bytes dropped, EHLO first", tls: true,
			in:   "STARTTLS\r\nXCLIENT ADDR=1.2.3.4\r\n",
			want: ReplyTLSReady, cmds: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, split := range []int{0, 1, 2, 3, 7} {
				m := &model{chunking: tc.chunking}
				var cuts []int
				if split > 0 {
					for i := split; i < len(tc.in); i += split {
						cuts = append(cuts, i)
					}
				}
				got := run(t, newConv(true), m, []byte(tc.in), cuts, split, tc.tls)
				if got != tc.want {
					t.Fatalf("split %d: client got\n%q\nwant\n%q", split, got, tc.want)
				}
				if strings.Join(m.commands, " ") != strings.Join(tc.cmds, " ") {
					t.Fatalf("split %d: server read %q, want %q", split, m.commands, tc.cmds)
				}
				checkCommands(t, m, []byte(tc.in))
			}
		})
	}
}

// TestConvAfterTLS: once TLS started, only EHLO (or HELO, QUIT, NOOP,
// RSET) reaches the server before the client's new EHLO (RFC 3207 4.2).
func TestConvAfterTLS(t *testing.T) {
	c := newConv(true)
	m := &model{}
	got := run(t, c, m, []byte("EHLO a\r\nSTARTTLS\r\n"), nil, 0, true)
	if !strings.HasSuffix(got, ReplyTLSReady) {
		t.Fatal(got)
	}
	// Inside TLS (the relay neither offers nor takes STARTTLS again).
	got = run(t, c, m, []byte("MAIL FROM:<a@b>\r\nNOOP\r\nEHLO a\r\nMAIL FROM:<a@b>\r\n"), nil, 0, false)
	want := ReplyNeedHelo + "250 2.0.0 Ok\r\n" + "250-m.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n" + "250 2.0.0 Ok\r\n"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	if strings.Join(m.commands, " ") != "EHLO NOOP EHLO MAIL" {
		t.Fatalf("server read %q", m.commands)
	}
}

// TestConvSASLTooLong: a SASL response beyond MaxSASL ends the session.
func TestConvSASLTooLong(t *testing.T) {
	m := &model{}
	got := run(t, newConv(true), m, []byte("AUTH GSSAPI\r\n"+strings.Repeat("A", MaxSASL)+"\r\n"), nil, 0, false)
	if got != "334 \r\n"+ReplyTooLong {
		t.Fatalf("%q", got)
	}
}

// TestConvPassesXClientWhenAllowed: without refuseXClient (smtp_starttls
// with a PROXY header: the backend authorises the client's own address)
// XCLIENT is the server's business.
func TestConvPassesXClientWhenAllowed(t *testing.T) {
	m := &model{}
	run(t, newConv(false), m, []byte("XCLIENT ADDR=1.2.3.4\r\n"), nil, 0, false)
	if strings.Join(m.commands, " ") != "XCLIENT" {
		t.Fatalf("%q", m.commands)
	}
}

func TestFilterEHLO(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"250-m\r\n250-XCLIENT A\r\n250 XFORWARD B\r\n", "250 m\r\n"},
		{"250-m\r\n250-STARTTLS\r\n250-SIZE 10\r\n250 xclient\r\n", "250-m\r\n250 SIZE 10\r\n"},
		{"250 m\r\n", "250 m\r\n"},
		{"250\r\n", "250 \r\n"},
		{"250-m\n250 XCLIENT\n", "250 m\n"},
		{"250-m\r\n250-XCLIENTS\r\n250 PIPELINING\r\n", "250-m\r\n250-XCLIENTS\r\n250 PIPELINING\r\n"},
		{"501 5.5.4 Syntax: EHLO hostname\r\n", "501 5.5.4 Syntax: EHLO hostname\r\n"},
	} {
		if got := string(FilterEHLO(nil, []byte(tc.in), false)); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := string(FilterEHLO(nil, []byte("250-m\r\n250 XCLIENT\r\n"), true)); got != "250-m\r\n250 STARTTLS\r\n" {
		t.Errorf("with STARTTLS: %q", got)
	}
}

// session is a typical pipelined session and its server's replies.
var (
	sessionIn = []byte("EHLO client.example\r\nMAIL FROM:<a@example.com> SIZE=1000\r\nRCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n" +
		"Subject: hi\r\n\r\n" + strings.Repeat("Line of text. With a dot or two... and more.\r\n", 40) + ".\r\nQUIT\r\n")
	sessionEHLO = []byte("250-m.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-XCLIENT NAME ADDR PORT\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
)

// drive runs the session through c with canned replies, as the relay
// would, into out (no allocation with enough room).
func drive(c *Conv, out []byte) []byte {
	c.Init(true)
	in := sessionIn
	replies := [][]byte{sessionEHLO, []byte("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n"), []byte("250 2.0.0 Ok: queued\r\n221 2.0.0 Bye\r\n")}
	for len(in) > 0 {
		n, v := c.Client(in)
		if v == Wait {
			r := replies[0]
			replies = replies[1:]
			for len(r) > 0 {
				k, sv := c.Server(r)
				if sv == EHLO {
					out = FilterEHLO(out[:0], r[:k], true)
				}
				r = r[k:]
			}
			continue
		}
		in = in[n:]
	}
	return out
}

func TestConvNoAllocs(t *testing.T) {
	var c Conv
	out := make([]byte, 0, 1024)
	if a := testing.AllocsPerRun(100, func() { out = drive(&c, out) }); a != 0 {
		t.Errorf("%v allocations per session", a)
	}
	if c.Pending() != 2 {
		t.Errorf("pending %d", c.Pending())
	}
}

func BenchmarkConvSession(b *testing.B) {
	var c Conv
	out := make([]byte, 0, 1024)
	b.SetBytes(int64(len(sessionIn)))
	b.ReportAllocs()
	for b.Loop() {
		out = drive(&c, out)
	}
}

// BenchmarkConvContent: DATA content, the bulk of the bytes.
func BenchmarkConvContent(b *testing.B) {
	block := bytes.Repeat([]byte("Line of text. With a dot or two... and more, 76 columns of it, more or less\r\n"), 800)
	var c Conv
	b.SetBytes(int64(len(block)))
	b.ReportAllocs()
	for b.Loop() {
		c.state, c.prev = csContent, '\n'
		for p := block; len(p) > 0; {
			n, _ := c.Client(p)
			p = p[n:]
		}
	}
}

// FuzzConv: whatever the client sends, however its bytes and the
// server's are cut into reads, a server reading as Postfix does (or also
// ending lines at a bare CR) never reads XCLIENT, XFORWARD or STARTTLS
// as a command; and plb's view does not depend on the cuts.
func FuzzConv(f *testing.F) {
	for _, s := range []string{
		"EHLO a\r\nXCLIENT ADDR=1.2.3.4\r\n",
		"DATA\r\nx\n.\nXCLIENT ADDR=1\r\n",
		"DATA\r\nx\r.\rXCLIENT ADDR=1\r\n",
		"RCPT TO:<refuse>\r\nDATA\r\nXCLIENT\r\n",
		"EHLO a\r\nBDAT 9 LAST\r\nXCLIENT\r\nXFORWARD\r\n",
		"BDAT 9 \n000000000XFORWARD\n",
		"AUTH PLAIN\r\nXCLIENT\r\n*\r\nXCLIENT\r\n",
		"NOOP\rXCLIENT\r\n",
		"STARTTLS\r\nXCLIENT\r\n",
	} {
		f.Add([]byte(s), uint8(3), uint8(5), uint8(0))
	}
	f.Fuzz(func(t *testing.T, in []byte, step, rstep, flags uint8) {
		if len(in) > 4096 {
			return
		}
		chunking, crBreaks, tls := flags&1 != 0, flags&2 != 0, flags&4 != 0
		var cuts []int
		if step > 0 {
			for i := int(step); i < len(in); i += int(step) {
				cuts = append(cuts, i)
			}
		}
		m := &model{chunking: chunking, crBreaks: crBreaks}
		got := run(t, newConv(true), m, in, cuts, int(rstep), tls)
		checkCommands(t, m, in)
		m2 := &model{chunking: chunking, crBreaks: crBreaks}
		whole := run(t, newConv(true), m2, in, nil, 0, tls)
		if !tls && (got != whole || strings.Join(m.commands, " ") != strings.Join(m2.commands, " ")) {
			t.Fatalf("cuts change the outcome: %q / %q, %q / %q", got, whole, m.commands, m2.commands)
		}
	})
}
