package http

import "bytes"

// RequestHead is a parsed request head. Every []byte field is a view into
// the buffer given to ParseRequest, valid until the buffer is modified;
// copy to keep. The one exception is Host (and Path) for an absolute-form
// URI, which may point into the RequestHead itself: they stay valid until
// the next parse into it, and a copy of the struct shares them with the
// original.
//
// A RequestHead is meant to be reused: parsing into it keeps the capacity
// of Headers, so that after the first few requests a parse allocates
// nothing.
type RequestHead struct {
	// Method is the request method, case preserved (methods are case
	// sensitive).
	Method []byte
	// URI is the request target exactly as sent.
	URI []byte
	// Path is the target in origin form, what to send to a backend: URI
	// itself, or for an absolute-form URI ("http://host/p?q") the part
	// from the path on ("/p?q"), "/" when the URI has no path.
	Path []byte
	// AbsHost is the authority (host[:port]) of an absolute-form URI with
	// scheme http or https, as sent; nil for any other form.
	AbsHost []byte
	// Major and Minor are the protocol version: 1.0 or 1.x.
	Major, Minor int
	// Headers holds the header lines in arrival order.
	Headers []Header
	// ContentLength is the value of Content-Length, or -1 when absent.
	ContentLength int64
	// Chunked reports a Transfer-Encoding whose final coding is chunked
	// (any other Transfer-Encoding is refused in a request).
	Chunked bool
	// ConnClose, ConnKeepAlive and ConnUpgrade report the tokens close,
	// keep-alive and upgrade in the Connection field(s); ConnOthers any
	// other token, a field named hop-by-hop (ConnectionNames).
	ConnClose, ConnKeepAlive, ConnUpgrade, ConnOthers bool
	// Upgrade is the value of the first Upgrade field, or nil.
	Upgrade []byte
	// Host is the host the request is for. For an absolute-form URI it is
	// the URI's host, lower-cased and without the port, as Perlbal sets it
	// (and as RFC 9112 3.2.2 wants the Host field ignored); otherwise it
	// is the value of the Host field as sent. Use Get("Host") for the raw
	// field.
	Host []byte
	// Expect100 reports "Expect: 100-continue".
	Expect100 bool
	// HeadLen is the number of bytes of the head, from the first byte of
	// the buffer (including skipped empty lines) through the blank line.
	HeadLen int

	hostBuf [maxHostBytes]byte // Host lower-cased, when it has upper case
	slash   [1]byte            // Path of an absolute-form URI without path
}

// maxHostBytes bounds the host of an absolute-form URI that needs
// lower-casing (a DNS name has at most 253 bytes).
const maxHostBytes = 256

// BodyMode says how the body of a message is delimited.
type BodyMode uint8

const (
	// BodyNone means the message has no body.
	BodyNone BodyMode = iota
	// BodyLength means the body is ContentLength bytes long.
	BodyLength
	// BodyChunked means the body is in chunked coding; use a
	// ChunkedScanner to find its end.
	BodyChunked
	// BodyUntilClose means the body runs until the sender closes the
	// connection (responses only).
	BodyUntilClose
)

// String returns the mode's name.
func (m BodyMode) String() string {
	switch m {
	case BodyNone:
		return "none"
	case BodyLength:
		return "length"
	case BodyChunked:
		return "chunked"
	case BodyUntilClose:
		return "until-close"
	}
	return "invalid"
}

// Get returns the value of the first header named name, compared without
// regard to ASCII case, or nil when there is none. It does not allocate.
func (h *RequestHead) Get(name string) []byte {
	return getHeader(h.Headers, name)
}

// KeepAlive reports whether the client asked for the connection to stay
// open: HTTP/1.1 unless "Connection: close", HTTP/1.0 only with
// "Connection: keep-alive" (and no close).
func (h *RequestHead) KeepAlive() bool {
	if h.ConnClose {
		return false
	}
	return h.Minor >= 1 || h.ConnKeepAlive
}

// BodyMode says how the request body is delimited: chunked, by
// Content-Length, or absent (a request never reads until close).
func (h *RequestHead) BodyMode() BodyMode {
	switch {
	case h.Chunked:
		return BodyChunked
	case h.ContentLength > 0:
		return BodyLength
	}
	return BodyNone
}

func (h *RequestHead) reset() {
	hs := h.Headers[:0]
	if cap(hs) == 0 {
		hs = make([]Header, 0, 32)
	}
	*h = RequestHead{Headers: hs, ContentLength: -1}
}

// ParseRequest parses the request head at the start of buf. It returns
// n > 0, the length of the head (== h.HeadLen), once the whole head is in
// buf; the body, if any, starts at buf[n]. It returns 0 and a nil error
// when more bytes are needed: call it again with the same buffer grown.
// An error is an *Error carrying the status to reply with. After a head or
// an error the parser is ready for the next head.
//
// On success every field of h is set; views in h point into buf and are
// valid until buf is modified; copy to keep. On error h holds no useful
// data. ParseRequest does not modify buf.
func (p *Parser) ParseRequest(buf []byte, h *RequestHead) (int, error) {
	start, end, err := p.head(buf, true)
	if end == 0 {
		return 0, err
	}
	if err := p.Limits.parseRequest(buf[:end], start, h); err != nil {
		return 0, err
	}
	h.HeadLen = end
	return end, nil
}

// parseRequest parses a complete head: the request line at head[start:],
// header lines, and the blank line that ends head.
func (l *Limits) parseRequest(head []byte, start int, h *RequestHead) error {
	h.reset()
	nl, end := lineEnd(head, start)
	line := head[start:end:end]
	sp1 := bytes.IndexByte(line, ' ')
	sp2 := -1
	if sp1 >= 0 {
		if k := bytes.IndexByte(line[sp1+1:], ' '); k >= 0 {
			sp2 = sp1 + 1 + k
		}
	}
	// The same rule as the early check in scan, so that a head gives the
	// same verdict however it was split into reads.
	if uriTooLong(line, sp1, sp2, l.maxURI()) {
		return errURITooLong
	}
	if sp1 <= 0 {
		if sp1 == 0 || len(line) == 0 {
			return errBadRequestLine
		}
		for _, c := range line {
			if !isToken(c) {
				return errBadRequestLine
			}
		}
		return errNoVersion // "GET" alone
	}
	h.Method = line[:sp1]
	for _, c := range h.Method {
		if !isToken(c) {
			return errBadMethod
		}
	}
	if sp2 < 0 {
		// "GET /": HTTP/0.9, unless the "URI" is garbage.
		for _, c := range line[sp1+1:] {
			if !isURIByte(c) {
				return errBadURI
			}
		}
		if sp1+1 == len(line) {
			return errEmptyURI
		}
		return errNoVersion
	}
	if sp2 == sp1+1 {
		return errEmptyURI
	}
	h.URI = line[sp1+1 : sp2]
	for _, c := range h.URI {
		if !isURIByte(c) {
			return errBadURI
		}
	}
	ver := line[sp2+1:]
	var ok bool
	if h.Major, h.Minor, ok = parseVersion(ver); !ok {
		if len(ver) == 0 {
			return errNoVersion
		}
		return errBadVersion
	}
	if h.Major != 1 {
		return errVersion
	}
	h.Path = h.URI
	if err := h.parseAbsoluteURI(); err != nil {
		return err
	}

	hs, err := parseFields(head, nl+1, h.Headers, l.maxHeaders(), false)
	h.Headers = hs
	if err != nil {
		return err
	}
	return h.interpret(l.ChunkedHTTP10)
}

// interpret derives the framing and connection fields from the headers.
func (h *RequestHead) interpret(chunked10 bool) error {
	var f framing
	f.reset()
	var conn connTokens
	hostSeen := false
	for i := range h.Headers {
		v := h.Headers[i].Value
		switch fieldKind(h.Headers[i].Name) {
		case fieldHost:
			if hostSeen {
				return errMultiHost
			}
			hostSeen = true
			if !validHost(v) {
				return errBadHost
			}
			if h.AbsHost == nil {
				h.Host = v
			}
		case fieldContentLength:
			if err := f.addContentLength(v); err != nil {
				return err
			}
		case fieldTransferEncoding:
			f.addTransferEncoding(v)
		case fieldConnection:
			conn.add(v)
		case fieldUpgrade:
			if h.Upgrade == nil {
				h.Upgrade = v
			}
		case fieldExpect:
			if equalFoldLower(v, "100-continue") {
				h.Expect100 = true
			}
		}
	}
	if !hostSeen && h.Minor >= 1 {
		return errNoHost
	}
	h.ConnClose, h.ConnKeepAlive, h.ConnUpgrade, h.ConnOthers = conn.close, conn.keepAlive, conn.upgrade, conn.others
	h.ContentLength = f.contentLength
	if f.te {
		// Each of these is a way to make two parsers disagree on where
		// the body ends (request smuggling, RFC 9112 6.1 and 11.2).
		switch {
		case f.contentLength >= 0:
			return errCLAndTE
		case h.Minor == 0 && !chunked10:
			return errTE10
		case f.teBadToken:
			return errBadTEToken
		case f.teChunked > 1:
			return errChunkedTwice
		case f.teCodings > f.teChunked:
			// A coding plb does not implement ("gzip", "identity,
			// chunked", "foo, chunked"): a backend may decode the
			// list differently, so it is never forwarded (nginx
			// answers 501 too).
			return errTEUnknown
		case f.teChunked == 0 || f.teFields > 1 || f.teEmpty:
			// "chunked," or a second, empty Transfer-Encoding
			// line: only one field holding only "chunked" passes.
			return errTEAmbiguous
		}
		h.Chunked = true
		if h.Minor == 0 {
			h.ConnClose = true
		}
	}
	return nil
}

// parseAbsoluteURI handles the absolute form "http://host[:port][/path]"
// (and https): AbsHost gets the authority, Host the host lower-cased
// without the port, Path the rest. Perlbal does the same for http only;
// https is included, and other schemes are refused, so that the Host a
// selector routes by is always the one a backend following RFC 9112 3.2.2
// would use.
func (h *RequestHead) parseAbsoluteURI() error {
	u := h.URI
	// scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then "://".
	if len(u) == 0 || lower(u[0]) < 'a' || lower(u[0]) > 'z' {
		return nil
	}
	i := 1
	for i < len(u) && (isAlnum(u[i]) || u[i] == '+' || u[i] == '-' || u[i] == '.') {
		i++
	}
	if len(u)-i < 3 || string(u[i:i+3]) != "://" {
		return nil
	}
	scheme, rest := u[:i], u[i+3:]
	if !equalFoldLower(scheme, "http") && !equalFoldLower(scheme, "https") {
		return errBadScheme
	}
	auth := rest
	path := rest[len(rest):]
	for i, c := range rest {
		if c == '/' || c == '?' || c == '#' {
			auth, path = rest[:i], rest[i:]
			break
		}
	}
	if len(path) > 0 && path[0] != '/' {
		// "http://host?q": there is no view of "/?q" to give as Path.
		return errBadAbsURI
	}
	host := auth
	if len(host) > 0 && host[0] == '[' {
		// IP literal: the port follows the ']'.
		k := bytes.IndexByte(host, ']')
		if k < 0 {
			return errBadAbsURI
		}
		if k+1 < len(host) && host[k+1] != ':' {
			return errBadAbsURI
		}
		host = host[:k+1]
	} else if k := bytes.IndexByte(host, ':'); k >= 0 {
		host = host[:k]
	}
	if len(host) == 0 || !validHost(auth) || len(host) < len(auth) && !allDigitsOrEmpty(auth[len(host)+1:]) {
		return errBadAbsURI
	}
	h.AbsHost = auth
	h.Host = host
	for _, c := range host {
		if 'A' <= c && c <= 'Z' {
			if len(host) > len(h.hostBuf) {
				return errBadAbsURI
			}
			for i, c := range host {
				h.hostBuf[i] = lower(c)
			}
			h.Host = h.hostBuf[:len(host):len(host)]
			break
		}
	}
	if len(path) == 0 {
		h.slash[0] = '/'
		path = h.slash[:]
	}
	h.Path = path
	return nil
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= lower(c) && lower(c) <= 'z'
}

func allDigitsOrEmpty(b []byte) bool {
	return len(b) == 0 || allDigits(b)
}
