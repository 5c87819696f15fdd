// Package reply parses SMTP replies (RFC 5321 4.2): the relay front reads
// its backends' greetings and EHLO replies with it, the health probe too.
package reply

import (
	"bytes"
	"errors"
)

// Reply limits: RFC 5321 4.5.3.1.5 bounds a reply line at 512 octets with
// its CRLF; plb accepts up to MaxLine (servers exceed the RFC) and a
// whole multi-line reply up to Max.
const (
	MaxLine = 1000
	Max     = 8 << 10
)

// Reply parsing errors.
var (
	ErrSyntax  = errors.New("smtp: malformed reply")
	ErrTooLong = errors.New("smtp: reply too long")
)

// Parse finds the first complete reply in buf: lines "ddd-text"
// followed by a last "ddd text" or "ddd", each ending in CRLF (a bare LF
// is accepted), every line with the same code. It returns the code and
// the length of the reply in buf; n == 0 (and err nil) means more bytes
// are needed. It does not allocate.
func Parse(buf []byte) (code, n int, err error) {
	for {
		rest := buf[n:]
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			if len(rest) >= MaxLine || n+len(rest) >= Max {
				return 0, 0, ErrTooLong
			}
			if len(rest) > 0 && !linePrefixOK(rest) {
				return 0, 0, ErrSyntax
			}
			return 0, 0, nil
		}
		if i+1 > MaxLine || n+i+1 > Max {
			return 0, 0, ErrTooLong
		}
		line := rest[:i]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) < 3 || !linePrefixOK(line) || (len(line) > 3 && line[3] == '\r') {
			return 0, 0, ErrSyntax
		}
		c := int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
		if n > 0 && c != code {
			return 0, 0, ErrSyntax
		}
		code = c
		n += i + 1
		if len(line) == 3 || line[3] == ' ' {
			return code, n, nil
		}
	}
}

// linePrefixOK reports whether what there is of a reply line can start
// one: three digits, the first 2 to 5, then '-', ' ' or the end (a CR
// belongs to the end, so nothing may follow it).
func linePrefixOK(l []byte) bool {
	if len(l) > 4 && l[3] == '\r' {
		return false
	}
	for i := 0; i < len(l) && i < 4; i++ {
		c := l[i]
		switch {
		case i == 0:
			if c < '2' || c > '5' {
				return false
			}
		case i < 3:
			if c < '0' || c > '9' {
				return false
			}
		default:
			if c != '-' && c != ' ' && c != '\r' {
				return false
			}
		}
	}
	return true
}

// HasExtension reports whether an EHLO reply (as Parse delimits it)
// offers the extension kw: a line after the first whose keyword, before any
// parameter, equals kw, in any case.
func HasExtension(reply, kw []byte) bool {
	_, reply, _ = bytes.Cut(reply, []byte("\n")) // the first line is the greeting
	for len(reply) > 0 {
		var line []byte
		line, reply, _ = bytes.Cut(reply, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) < 4 {
			continue
		}
		word, _, _ := bytes.Cut(line[4:], []byte(" "))
		if bytes.EqualFold(word, kw) {
			return true
		}
	}
	return false
}
