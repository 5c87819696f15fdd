package reply

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestParseReply(t *testing.T) {
	line := func(code string, textLen int) string { // one line of textLen+6 bytes
		return code + " " + strings.Repeat("x", textLen) + "\r\n"
	}
	cont := strings.Repeat("250-"+strings.Repeat("y", 90)+"\r\n", Max/96) // just under Max
	for _, c := range []struct {
		name string
		in   string
		code int
		n    int // 0: more bytes needed (when err is nil)
		err  error
	}{
		{"single line", "220 mx.example ESMTP\r\n", 220, 22, nil},
		{"multi-line", "250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n", 250, 46, nil},
		{"bare code", "220\r\n", 220, 5, nil},
		{"bare code LF", "221\n", 221, 4, nil},
		{"bare code last", "250-a\r\n250\r\n", 250, 12, nil},
		{"LF only", "250-a\n250-b\n250 c\n", 250, 18, nil},
		{"mixed line ends", "250-a\r\n250-b\n250 c\r\n", 250, 20, nil},
		{"empty continuation", "250-\r\n250 \r\n", 250, 12, nil},
		{"5xx", "554 5.7.1 no\r\n", 554, 14, nil},
		{"4xx", "421-a\r\n421 b\r\n", 421, 14, nil},
		{"CR inside text", "250 a\rb\r\n", 250, 9, nil},
		{"pipelined rest not consumed", "220 hi\r\n250 ok\r\n", 220, 8, nil},
		{"pipelined after multi-line", "250-a\r\n250 b\r\n221 bye\r\n", 250, 14, nil},
		{"pipelined partial rest", "220 hi\r\n25", 220, 8, nil},
		{"pipelined garbage rest", "220 hi\r\nGARBAGE\r\n", 220, 8, nil},

		{"empty", "", 0, 0, nil},
		{"one digit", "2", 0, 0, nil},
		{"code only", "220", 0, 0, nil},
		{"code CR", "220\r", 0, 0, nil},
		{"no line end", "220 mx.example", 0, 0, nil},
		{"first line only", "250-mx.example\r\n", 0, 0, nil},
		{"partial second line", "250-mx.example\r\n250 PIPE", 0, 0, nil},
		{"partial continuation", "250-a\r\n250-", 0, 0, nil},
		{"partial mismatched code", "250-a\r\n55", 0, 0, nil},

		{"code mismatch", "250-a\r\n251 b\r\n", 0, 0, ErrSyntax},
		{"code mismatch class", "220-a\r\n554 b\r\n", 0, 0, ErrSyntax},
		{"first digit 1", "120 wait\r\n", 0, 0, ErrSyntax},
		{"first digit 6", "620 x\r\n", 0, 0, ErrSyntax},
		{"first digit 0 partial", "0", 0, 0, ErrSyntax},
		{"letter", "2x0 x\r\n", 0, 0, ErrSyntax},
		{"letter partial", "22x", 0, 0, ErrSyntax},
		{"short line", "22\r\n", 0, 0, ErrSyntax},
		{"empty line", "\r\n", 0, 0, ErrSyntax},
		{"bare LF", "\n", 0, 0, ErrSyntax},
		{"bad separator", "220_x\r\n", 0, 0, ErrSyntax},
		{"bad separator partial", "220_", 0, 0, ErrSyntax},
		{"tab separator", "220\tx\r\n", 0, 0, ErrSyntax},
		{"four digits", "2200 x\r\n", 0, 0, ErrSyntax},
		{"HTTP", "HTTP/1.1 200 OK\r\n", 0, 0, ErrSyntax},
		{"SSH", "SSH-2.0-OpenSSH\r\n", 0, 0, ErrSyntax},
		{"leading space", " 220 x\r\n", 0, 0, ErrSyntax},
		{"bare CR after code", "220\rx\r\n", 0, 0, ErrSyntax},
		{"two CRs after code", "220\r\r\n", 0, 0, ErrSyntax},
		{"bare CR after code partial", "220\rx", 0, 0, ErrSyntax},
		{"bad second line", "250-a\r\nxyz\r\n", 0, 0, ErrSyntax},

		{"longest line", line("250", MaxLine-6), 250, MaxLine, nil},
		{"line too long", line("250", MaxLine-5), 0, 0, ErrTooLong},
		{"line too long LF", "250 " + strings.Repeat("x", MaxLine-4) + "\n", 0, 0, ErrTooLong},
		{"partial line at limit", "250 " + strings.Repeat("x", MaxLine-5), 0, 0, nil},
		{"partial line too long", "250 " + strings.Repeat("x", MaxLine-4), 0, 0, ErrTooLong},
		{"longest reply", cont + line("250", Max-len(cont)-6), 250, Max, nil},
		{"reply too long", cont + line("250", Max-len(cont)-5), 0, 0, ErrTooLong},
		{"partial reply at limit", cont + "250 " + strings.Repeat("x", Max-len(cont)-5), 0, 0, nil},
		{"partial reply too long", cont + "250 " + strings.Repeat("x", Max-len(cont)-4), 0, 0, ErrTooLong},
		{"too long before mismatch", strings.Repeat("x", MaxLine+1) + "\n", 0, 0, ErrTooLong},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, n, err := Parse([]byte(c.in))
			if code != c.code || n != c.n || !errors.Is(err, c.err) || (err == nil) != (c.err == nil) {
				t.Fatalf("Parse(%.40q) = %d, %d, %v; want %d, %d, %v", c.in, code, n, err, c.code, c.n, c.err)
			}
		})
	}
}

func TestParseReplyIncremental(t *testing.T) {
	// Fed a byte at a time, a reply is found exactly when its last byte
	// arrives; no prefix is an error.
	in := []byte("250-mx.example\r\n250-PIPELINING\n250-SIZE 1000\r\n250 8BITMIME\r\n221 x\r\n")
	end := bytes.Index(in, []byte("221"))
	for i := range len(in) + 1 {
		code, n, err := Parse(in[:i])
		switch {
		case err != nil:
			t.Fatalf("prefix %d: %v", i, err)
		case i < end && n != 0:
			t.Fatalf("prefix %d: reply of %d bytes", i, n)
		case i >= end && (n != end || code != 250):
			t.Fatalf("prefix %d: %d, %d", i, code, n)
		}
	}
}

func TestHasExtension(t *testing.T) {
	const ehlo = "250-mx.example Hello [192.0.2.1]\r\n" +
		"250-PIPELINING\r\n" +
		"250-SIZE 10240000\r\n" +
		"250-XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN\r\n" +
		"250-auth PLAIN LOGIN\n" +
		"250 8BITMIME\r\n"
	for _, c := range []struct {
		reply, kw string
		want      bool
	}{
		{ehlo, "XCLIENT", true},
		{ehlo, "xclient", true},
		{ehlo, "XClient", true},
		{ehlo, "PIPELINING", true},
		{ehlo, "SIZE", true},
		{ehlo, "AUTH", true},
		{ehlo, "8BITMIME", true}, // the last line
		{ehlo, "XFORWARD", false},
		{ehlo, "XCLIEN", false},
		{ehlo, "XCLIENTS", false},
		{ehlo, "NAME", false},  // a parameter
		{ehlo, "PLAIN", false}, // a parameter
		{ehlo, "mx.example", false},
		{"250-XCLIENT\r\n250 OK\r\n", "XCLIENT", false}, // the first line is the greeting
		{"250 XCLIENT\r\n", "XCLIENT", false},
		{"250-mx\r\n250 XCLIENT\r\n", "XCLIENT", true},
		{"250-mx\r\n250 XCLIENT", "XCLIENT", true}, // no final line end
		{"250-mx\r\n250\r\n", "250", false},        // a bare code has no keyword
		{"", "XCLIENT", false},
		{"250-mx\r\n250-XCLIENT ADDR\r\n250 OK\r\n", "XCLIENT ADDR", false},
	} {
		if got := HasExtension([]byte(c.reply), []byte(c.kw)); got != c.want {
			t.Errorf("HasExtension(%q, %q) = %v", c.reply, c.kw, got)
		}
	}
}

func TestReplyNoAllocs(t *testing.T) {
	reply := []byte("250-mx.example\r\n250-PIPELINING\r\n250-XCLIENT ADDR NAME\r\n250 8BITMIME\r\n")
	kw := []byte("xclient")
	var code, n int
	var found bool
	if a := testing.AllocsPerRun(100, func() {
		code, n, _ = Parse(reply)
		found = HasExtension(reply[:n], kw)
	}); a != 0 {
		t.Fatalf("%v allocations per run", a)
	}
	if code != 250 || n != len(reply) || !found {
		t.Fatalf("%d %d %v", code, n, found)
	}
	bad := []byte("250-a\r\n251 b\r\n")
	if a := testing.AllocsPerRun(100, func() { Parse(bad) }); a != 0 {
		t.Fatalf("error path: %v allocations per run", a)
	}
}

// Reference grammar, line by line: a whole line (its LF and one CR before
// it removed), and what may start one.
var (
	refLine   = regexp.MustCompile(`^(?s)[2-5][0-9]{2}([- ].*)?$`)
	refPrefix = regexp.MustCompile(`^(?s)([2-5][0-9]{0,2}|[2-5][0-9]{2}[- ].*|[2-5][0-9]{2}\r)?$`)
)

// refParseReply is Parse written plainly: split the lines, check
// each in turn.
func refParseReply(buf []byte) (code, n int, err error) {
	lines := bytes.SplitAfter(buf, []byte("\n"))
	partial := lines[len(lines)-1] // "" when buf ends in LF
	off := 0
	for _, l := range lines[:len(lines)-1] {
		off += len(l)
		if len(l) > MaxLine || off > Max {
			return 0, 0, ErrTooLong
		}
		text := bytes.TrimSuffix(bytes.TrimSuffix(l, []byte("\n")), []byte("\r"))
		if !refLine.Match(text) {
			return 0, 0, ErrSyntax
		}
		c := int(text[0]-'0')*100 + int(text[1]-'0')*10 + int(text[2]-'0')
		if code != 0 && c != code {
			return 0, 0, ErrSyntax
		}
		code = c
		if len(text) == 3 || text[3] == ' ' {
			return code, off, nil
		}
	}
	if len(partial) >= MaxLine || off+len(partial) >= Max {
		return 0, 0, ErrTooLong
	}
	if !refPrefix.Match(partial) {
		return 0, 0, ErrSyntax
	}
	return 0, 0, nil
}

func FuzzParseReply(f *testing.F) {
	for _, s := range []string{
		"220 mx.example ESMTP\r\n",
		"250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
		"220\r\n", "221\n", "250-a\n250 b\n221 x\r\n",
		"250-a\r\n251 b\r\n", "120 x\r\n", "220\r\r\n", "220\rx",
		"250-", "250-a\r\n25", "HTTP/1.1 200 OK\r\n", "",
		"250 " + strings.Repeat("x", MaxLine),
		strings.Repeat("250-"+strings.Repeat("y", 90)+"\r\n", 90),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, buf []byte) {
		code, n, err := Parse(buf)
		if n < 0 || n > len(buf) {
			t.Fatalf("n %d of %d bytes", n, len(buf))
		}
		if n > 0 {
			if buf[n-1] != '\n' || err != nil || code < 200 || code > 599 {
				t.Fatalf("reply %q: %d, %d, %v", buf[:n], code, n, err)
			}
			// Bytes after a reply are not looked at.
			if c2, n2, err2 := Parse(buf[:n]); c2 != code || n2 != n || err2 != nil {
				t.Fatalf("reply alone: %d, %d, %v", c2, n2, err2)
			}
		} else if code != 0 {
			t.Fatalf("code %d without a reply", code)
		}
		if err != nil && !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrTooLong) {
			t.Fatalf("unexpected error %v", err)
		}
		rc, rn, rerr := refParseReply(buf)
		if code != rc || n != rn || err != rerr {
			t.Fatalf("Parse(%q) = %d, %d, %v; reference %d, %d, %v", buf, code, n, err, rc, rn, rerr)
		}
		// HasExtension reads anything without panicking.
		HasExtension(buf, []byte("XCLIENT"))
	})
}

func BenchmarkParseReply(b *testing.B) {
	reply := []byte("250-mx.example Hello [192.0.2.1]\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n" +
		"250-XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n")
	b.ReportAllocs()
	b.SetBytes(int64(len(reply)))
	for b.Loop() {
		if _, n, err := Parse(reply); n != len(reply) || err != nil {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkParseReplyBanner(b *testing.B) {
	reply := []byte("220 mx.example ESMTP Postfix\r\n")
	b.ReportAllocs()
	b.SetBytes(int64(len(reply)))
	for b.Loop() {
		if _, n, err := Parse(reply); n != len(reply) || err != nil {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkHasExtension(b *testing.B) {
	reply := []byte("250-mx.example Hello [192.0.2.1]\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n" +
		"250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 XCLIENT NAME ADDR PROTO HELO\r\n")
	kw := []byte("xclient")
	b.ReportAllocs()
	for b.Loop() {
		if !HasExtension(reply, kw) {
			b.Fatal("not found")
		}
	}
}
