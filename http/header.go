package http

// Header is one header line of a head, in arrival order. Name and Value are
// views into the buffer the head was parsed from, valid until the buffer
// is modified; copy to keep. Value has no leading or trailing whitespace.
type Header struct {
	// Name is the field name as sent (case preserved).
	Name []byte
	// Value is the field value, with obs-folds of a response joined by a
	// single space.
	Value []byte
}

// getHeader returns the value of the first header named name (ASCII case
// insensitive), or nil.
func getHeader(hs []Header, name string) []byte {
	for i := range hs {
		if equalFold(hs[i].Name, name) {
			return hs[i].Value
		}
	}
	return nil
}

// Kinds of header fields whose meaning the parser needs.
const (
	fieldOther = iota
	fieldHost
	fieldExpect
	fieldUpgrade
	fieldConnection
	fieldKeepAlive
	fieldContentLength
	fieldTransferEncoding
)

// fieldKind classifies a header name; the switch on length keeps the cost
// of an uninteresting name to a comparison or two.
func fieldKind(name []byte) int {
	switch len(name) {
	case 4:
		if equalFoldLower(name, "host") {
			return fieldHost
		}
	case 6:
		if equalFoldLower(name, "expect") {
			return fieldExpect
		}
	case 7:
		if equalFoldLower(name, "upgrade") {
			return fieldUpgrade
		}
	case 10:
		if equalFoldLower(name, "connection") {
			return fieldConnection
		}
		if equalFoldLower(name, "keep-alive") {
			return fieldKeepAlive
		}
	case 14:
		if equalFoldLower(name, "content-length") {
			return fieldContentLength
		}
	case 17:
		if equalFoldLower(name, "transfer-encoding") {
			return fieldTransferEncoding
		}
	}
	return fieldOther
}

// framing collects the fields that decide where a body ends.
type framing struct {
	contentLength int64 // -1 when there is no Content-Length
	te            bool  // a Transfer-Encoding field was present
	teFields      int   // how many Transfer-Encoding fields there were
	teCodings     int   // how many codings they listed
	teEmpty       bool  // a field or list element was empty
	teIdentity    bool  // every coding seen so far is "identity"
	teBadToken    bool  // a coding is not a token, or chunked has parameters
	teChunked     int   // how many times chunked was listed
	teLastChunked bool  // the last coding listed is chunked
}

func (f *framing) reset() {
	*f = framing{contentLength: -1, teIdentity: true}
}

// addContentLength folds one Content-Length value into f. A value may be a
// list ("5, 5", as some intermediaries merge duplicates); every element,
// in this field and the ones before, must be the same number.
func (f *framing) addContentLength(v []byte) error {
	for {
		e, rest := nextElement(v)
		n, ok := parseDecimal(e)
		if !ok {
			switch {
			case len(e) > 1 && e[0] == '-' && allDigits(e[1:]):
				return errNegativeCL
			case allDigits(e):
				return errCLTooLarge
			}
			return errBadCL
		}
		if f.contentLength >= 0 && f.contentLength != n {
			return errMultiCL
		}
		f.contentLength = n
		if rest == nil {
			return nil
		}
		v = rest
	}
}

// addTransferEncoding folds one Transfer-Encoding value into f; the
// verdict is left to the caller, which knows whether it reads a request.
func (f *framing) addTransferEncoding(v []byte) {
	f.te = true
	f.teFields++
	for {
		e, rest := nextElement(v)
		f.addCoding(e)
		if rest == nil {
			return
		}
		v = rest
	}
}

// addCoding folds one element of a Transfer-Encoding list into f.
func (f *framing) addCoding(e []byte) {
	if len(e) == 0 {
		// Empty list elements are allowed (RFC 9110 5.6.1), and read
		// differently by different servers: an empty value, "chunked,"
		// and ", chunked" all note one.
		f.teEmpty = true
		return
	}
	f.teCodings++
	name, params := e, false
	for i, c := range e {
		if c == ';' {
			name, params = TrimOWS(e[:i]), true
			break
		}
	}
	if len(name) == 0 {
		f.teBadToken = true
		return
	}
	for _, c := range name {
		if !isToken(c) {
			f.teBadToken = true
		}
	}
	chunked := equalFoldLower(name, "chunked")
	if chunked {
		f.teChunked++
		if params {
			f.teBadToken = true
		}
	}
	f.teLastChunked = chunked
	if !equalFoldLower(name, "identity") {
		f.teIdentity = false
	}
}

// connTokens holds the tokens of the Connection fields that matter here.
type connTokens struct {
	close, keepAlive, upgrade bool
	// others: a token names some other field (ConnectionNames).
	others bool
}

func (t *connTokens) add(v []byte) {
	for len(v) > 0 {
		var e []byte
		e, v = nextElement(v)
		switch {
		case len(e) == 0:
		case len(e) == 5 && equalFoldLower(e, "close"):
			t.close = true
		case len(e) == 7 && equalFoldLower(e, "upgrade"):
			t.upgrade = true
		case len(e) == 10 && equalFoldLower(e, "keep-alive"):
			t.keepAlive = true
		default:
			t.others = true
		}
	}
}

// ConnectionNames reports whether a Connection field among hs names the
// field name (RFC 9110 7.6.1: a proxy removes the fields so named, which
// are hop-by-hop). It does not allocate. A head's ConnOthers says whether
// any token could match, which spares the scan for nearly every message.
func ConnectionNames(hs []Header, name []byte) bool {
	for i := range hs {
		if fieldKind(hs[i].Name) != fieldConnection {
			continue
		}
		for v := hs[i].Value; len(v) > 0; {
			var e []byte
			e, v = nextElement(v)
			if len(e) > 0 && equalFoldBytes(e, name) {
				return true
			}
		}
	}
	return false
}

// keepAliveTimeout returns N from a "Keep-Alive: timeout=N, max=M" value,
// or 0 when there is none or it does not parse. Quotes are tolerated.
func keepAliveTimeout(v []byte) int {
	for len(v) > 0 {
		var e []byte
		e, v = nextElement(v)
		if len(e) < len("timeout=") || !equalFoldLower(e[:7], "timeout") {
			continue
		}
		rest := TrimOWS(e[7:])
		if len(rest) == 0 || rest[0] != '=' {
			continue
		}
		rest = TrimOWS(rest[1:])
		if len(rest) >= 2 && rest[0] == '"' && rest[len(rest)-1] == '"' {
			rest = rest[1 : len(rest)-1]
		}
		n, ok := parseDecimal(rest)
		if !ok {
			if allDigits(rest) {
				return 1<<31 - 1 // too large: as good as forever
			}
			return 0
		}
		if n > 1<<31-1 {
			n = 1<<31 - 1
		}
		return int(n)
	}
	return 0
}

func validHost(v []byte) bool {
	for _, c := range v {
		if !isHostByte(c) {
			return false
		}
	}
	return true
}

// parseVersion parses "HTTP/d.d".
func parseVersion(v []byte) (major, minor int, ok bool) {
	if len(v) != 8 || string(v[:5]) != "HTTP/" || v[6] != '.' {
		return 0, 0, false
	}
	a, b := v[5], v[7]
	if a < '0' || a > '9' || b < '0' || b > '9' {
		return 0, 0, false
	}
	return int(a - '0'), int(b - '0'), true
}
