package http

// ResponseHead is a parsed response head. Every []byte field is a view into
// the buffer given to ParseResponse, valid until the buffer is modified;
// copy to keep. Reuse a ResponseHead: parsing into it keeps the capacity of
// Headers, so that after warm-up a parse allocates nothing.
//
// Informational (1xx) responses are returned like any other head: a proxy
// that does not relay them skips such a head (other than 101 Switching
// Protocols, which ends HTTP on the connection) and parses the next one
// from the bytes after it.
type ResponseHead struct {
	// Major and Minor are the protocol version: 1.0 or 1.x.
	Major, Minor int
	// Status is the three-digit status code (100 to 999).
	Status int
	// Reason is the reason phrase, possibly empty.
	Reason []byte
	// Headers holds the header lines in arrival order; obs-fold
	// continuation lines are joined to their field with one space.
	Headers []Header
	// ContentLength is the value of Content-Length, or -1 when absent.
	ContentLength int64
	// Chunked reports a Transfer-Encoding whose final coding is chunked
	// (in HTTP/1.1: an HTTP/1.0 response with Transfer-Encoding is read
	// until close, RFC 9112 6.1).
	Chunked bool
	// ConnClose and ConnKeepAlive report the tokens close and keep-alive
	// in the Connection field(s); ConnOthers any other token, a field
	// named hop-by-hop (ConnectionNames).
	ConnClose, ConnKeepAlive, ConnOthers bool
	// KeepAliveTimeout is N from "Keep-Alive: timeout=N", 0 if none.
	KeepAliveTimeout int
	// HeadLen is the number of bytes of the head, from the first byte of
	// the buffer (including skipped empty lines) through the blank line.
	HeadLen int

	untilClose bool // a Transfer-Encoding without a final chunked
}

// Get returns the value of the first header named name, compared without
// regard to ASCII case, or nil when there is none. It does not allocate.
func (h *ResponseHead) Get(name string) []byte {
	return getHeader(h.Headers, name)
}

// BodyMode says how the body of the response is delimited (RFC 9112 6.3):
// none for a reply to HEAD and for 1xx, 204 and 304; chunked when the final
// transfer coding is chunked; until close when another transfer coding is
// applied or neither Transfer-Encoding nor Content-Length is present;
// otherwise Content-Length bytes (possibly zero).
func (h *ResponseHead) BodyMode(reqMethodHEAD bool) BodyMode {
	switch {
	case reqMethodHEAD, h.Status < 200, h.Status == 204, h.Status == 304:
		return BodyNone
	case h.Chunked:
		return BodyChunked
	case h.untilClose:
		return BodyUntilClose
	case h.ContentLength >= 0:
		return BodyLength
	}
	return BodyUntilClose
}

// KeepAlive reports whether the backend may keep the connection open
// after this response: not with "Connection: close", HTTP/1.0 only with
// "Connection: keep-alive", and never when the body runs until close.
func (h *ResponseHead) KeepAlive(reqMethodHEAD bool) bool {
	if h.ConnClose || h.Minor == 0 && !h.ConnKeepAlive {
		return false
	}
	return h.BodyMode(reqMethodHEAD) != BodyUntilClose
}

func (h *ResponseHead) reset() {
	hs := h.Headers[:0]
	if cap(hs) == 0 {
		hs = make([]Header, 0, 32)
	}
	*h = ResponseHead{Headers: hs, ContentLength: -1}
}

// ParseResponse parses the response head at the start of buf, with the
// same contract as ParseRequest: n > 0 (== h.HeadLen) when the head is
// complete, 0 and a nil error when more bytes are needed, or an *Error
// (whose Status a proxy maps to 502).
//
// The status line is "HTTP/d.d SP 3DIGIT [SP reason]": unlike Perlbal, the
// reason phrase may be absent. Empty lines before it are skipped.
//
// ParseResponse modifies buf in one case: a header line continued on the
// next (obs-fold) is joined to it in place, within the head, even if the
// head then turns out to be invalid. The bytes of such a head must not be
// forwarded as they were: rebuild the head from Headers.
func (p *Parser) ParseResponse(buf []byte, h *ResponseHead) (int, error) {
	start, end, err := p.head(buf, false)
	if end == 0 {
		return 0, err
	}
	if err := p.Limits.parseResponse(buf[:end], start, h); err != nil {
		return 0, err
	}
	h.HeadLen = end
	return end, nil
}

func (l *Limits) parseResponse(head []byte, start int, h *ResponseHead) error {
	h.reset()
	nl, end := lineEnd(head, start)
	line := head[start:end:end]
	if len(line) < 12 || line[8] != ' ' {
		return errBadStatusLine
	}
	var ok bool
	if h.Major, h.Minor, ok = parseVersion(line[:8]); !ok {
		return errBadStatusLine
	}
	if h.Major != 1 {
		return errVersion
	}
	s := line[9:12]
	if s[0] < '1' || s[0] > '9' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' {
		return errBadStatus
	}
	h.Status = int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0')
	if len(line) > 12 {
		if line[12] != ' ' {
			return errBadStatus
		}
		h.Reason = line[13:]
		for _, c := range h.Reason {
			if !isValueByte(c) {
				if c == '\r' {
					return errBareCR
				}
				return errBadReason
			}
		}
	}

	hs, err := parseFields(head, nl+1, h.Headers, l.maxHeaders(), true)
	h.Headers = hs
	if err != nil {
		return err
	}
	return h.interpret()
}

func (h *ResponseHead) interpret() error {
	var f framing
	f.reset()
	var conn connTokens
	for i := range h.Headers {
		v := h.Headers[i].Value
		switch fieldKind(h.Headers[i].Name) {
		case fieldContentLength:
			if err := f.addContentLength(v); err != nil {
				return err
			}
		case fieldTransferEncoding:
			f.addTransferEncoding(v)
		case fieldConnection:
			conn.add(v)
		case fieldKeepAlive:
			if h.KeepAliveTimeout == 0 {
				h.KeepAliveTimeout = keepAliveTimeout(v)
			}
		}
	}
	h.ConnClose, h.ConnKeepAlive, h.ConnOthers = conn.close, conn.keepAlive, conn.others
	h.ContentLength = f.contentLength
	if f.te && !f.teIdentity {
		// "identity" alone means no coding, as Perlbal reads it; any
		// other coding overrides Content-Length, which is refused
		// together with it as in a request (nginx does the same).
		switch {
		case f.contentLength >= 0:
			return errCLAndTE
		case f.teBadToken:
			return errBadTEToken
		case f.teChunked > 1:
			return errChunkedTwice
		case h.Minor == 0 || !f.teLastChunked:
			// RFC 9112 6.1 and 6.3: an HTTP/1.0 message with
			// Transfer-Encoding has faulty framing, and a response
			// whose final coding is not chunked is read until close.
			h.untilClose = true
		default:
			h.Chunked = true
		}
	}
	return nil
}
