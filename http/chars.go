package http

// Byte classes are 128-bit bitmaps held in untyped constants (the trick of
// net/textproto's validHeaderFieldByte): a lookup is a shift and an and, and
// there is no table in package state. Bytes >= 0x80 shift out to zero.

// tokenMask holds tchar (RFC 9110 5.6.2): the bytes of methods, header
// names and transfer codings.
const tokenMask = 0 |
	(1<<10-1)<<'0' |
	(1<<26-1)<<'a' |
	(1<<26-1)<<'A' |
	1<<'!' | 1<<'#' | 1<<'$' | 1<<'%' | 1<<'&' | 1<<'\'' | 1<<'*' |
	1<<'+' | 1<<'-' | 1<<'.' | 1<<'^' | 1<<'_' | 1<<'`' | 1<<'|' | 1<<'~'

// hostMask holds the bytes net/http accepts in a Host header (httpguts'
// validHostByte): reg-name, IP literals, pct-encoding and the port.
const hostMask = 0 |
	(1<<10-1)<<'0' |
	(1<<26-1)<<'a' |
	(1<<26-1)<<'A' |
	1<<'!' | 1<<'$' | 1<<'%' | 1<<'&' | 1<<'\'' | 1<<'(' | 1<<')' |
	1<<'*' | 1<<'+' | 1<<',' | 1<<'-' | 1<<'.' | 1<<':' | 1<<';' |
	1<<'=' | 1<<'[' | 1<<']' | 1<<'_' | 1<<'~'

// tokenTable is tokenMask as a string indexed by byte, for the loops over
// header names where a load beats two variable shifts. A string constant
// is immutable: it is no package state. TestTokenTable checks it against
// tokenMask.
const tokenTable = "" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x01\x00\x01\x01\x01\x01\x01\x00\x00\x01\x01\x00\x01\x01\x00" +
	"\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x00\x00\x00\x00\x00\x00" +
	"\x00\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01" +
	"\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x00\x00\x00\x01\x01" +
	"\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01" +
	"\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x00\x01\x00\x01\x00"

func isToken(c byte) bool {
	return c < 0x80 && tokenTable[c&0x7f] != 0
}

// IsToken reports whether b is a token (RFC 9110 5.6.2): a header name, a
// method.
func IsToken(b []byte) bool {
	for _, c := range b {
		if !isToken(c) {
			return false
		}
	}
	return len(b) > 0
}

// PercentByte decodes the %XX escape at p[i], if one starts there.
func PercentByte(p []byte, i int) (byte, bool) {
	if p[i] != '%' || i+2 >= len(p) {
		return 0, false
	}
	hi, ok1 := unhex(p[i+1])
	lo, ok2 := unhex(p[i+2])
	return hi<<4 | lo, ok1 && ok2
}

func isTokenMask(c byte) bool {
	return ((uint64(1)<<c)&(tokenMask&(1<<64-1)) |
		(uint64(1)<<(c-64))&(tokenMask>>64)) != 0
}

func isHostByte(c byte) bool {
	return ((uint64(1)<<c)&(hostMask&(1<<64-1)) |
		(uint64(1)<<(c-64))&(hostMask>>64)) != 0
}

// isValueByte reports whether c may appear in a field value or reason
// phrase: VCHAR, SP, HTAB and obs-text; every other CTL (NUL, CR, LF, DEL)
// is refused.
func isValueByte(c byte) bool {
	return c >= 0x20 && c != 0x7f || c == '\t'
}

// isURIByte reports whether c may appear in a request target: any visible
// byte, including obs-text as nginx and Perlbal allow, but no CTL or space.
func isURIByte(c byte) bool {
	return c > 0x20 && c != 0x7f
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// equalFold reports whether b equals s ignoring ASCII case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

// equalFoldBytes reports whether a equals b ignoring ASCII case.
func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

// equalFoldLower is equalFold for an s that is already lower-case.
func equalFoldLower(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lower(b[i]) != s[i] {
			return false
		}
	}
	return true
}

// TrimOWS strips optional white space (spaces and tabs) from both ends.
func TrimOWS(b []byte) []byte {
	for len(b) > 0 && isOWS(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isOWS(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// nextElement splits the first element off a comma-separated list
// (RFC 9110 5.6.1), trimming OWS around it. Empty elements are returned as
// empty slices so callers can skip them as the list syntax requires.
func nextElement(list []byte) (elem, rest []byte) {
	for i := 0; i < len(list); i++ {
		if list[i] == ',' {
			return TrimOWS(list[:i]), list[i+1:]
		}
	}
	return TrimOWS(list), nil
}

// parseDecimal parses 1*DIGIT into a non-negative int64; ok is false for an
// empty string, any other byte, or a value that does not fit.
func parseDecimal(b []byte) (n int64, ok bool) {
	if len(b) == 0 {
		return 0, false
	}
	const max = 1<<63 - 1
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (max-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}
