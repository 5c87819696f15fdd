package http

import (
	"bytes"
	"encoding/binary"
)

// Default limits; Perlbal allows 102400 bytes of head.
const (
	// DefaultMaxHeadBytes is the default Limits.MaxHeadBytes.
	DefaultMaxHeadBytes = 100 << 10
	// DefaultMaxURIBytes is the default Limits.MaxURIBytes.
	DefaultMaxURIBytes = 16 << 10
	// DefaultMaxHeaders is the default Limits.MaxHeaders.
	DefaultMaxHeaders = 200
)

// Limits bounds what a Parser accepts. A zero field takes its default.
type Limits struct {
	// MaxHeadBytes bounds the head: start line, header lines, the blank
	// line and any empty lines skipped before the start line (default
	// 100 KiB, Perlbal's 102400). Over it: 431.
	MaxHeadBytes int
	// MaxURIBytes bounds the request target (default 16 KiB). Over it: 414.
	MaxURIBytes int
	// MaxHeaders bounds the number of header lines (default 200). Over
	// it: 431.
	MaxHeaders int
	// ChunkedHTTP10 accepts "Transfer-Encoding: chunked" (alone, without
	// Content-Length) in an HTTP/1.0 request, as Perlbal does for a chunked
	// PUT; the head then says ConnClose, so that the connection closes after
	// the message (RFC 9112 6.1). Default off: such a request is a 400.
	ChunkedHTTP10 bool
}

func (l *Limits) maxHead() int {
	if l.MaxHeadBytes > 0 {
		return l.MaxHeadBytes
	}
	return DefaultMaxHeadBytes
}

func (l *Limits) maxURI() int {
	if l.MaxURIBytes > 0 {
		return l.MaxURIBytes
	}
	return DefaultMaxURIBytes
}

func (l *Limits) maxHeaders() int {
	if l.MaxHeaders > 0 {
		return l.MaxHeaders
	}
	return DefaultMaxHeaders
}

// Parser parses HTTP/1.x request and response heads incrementally. It keeps
// how far it has searched for the end of the head and never looks at a
// byte twice while searching, so a head fed in pieces costs time linear in
// its length however small the pieces are: call ParseRequest
// (or ParseResponse) with the bytes buffered so far and, while it asks for
// more, again with the same buffer grown at its end. Once the whole head is
// there it is parsed in a single pass, without allocating: every name and
// value is a view into the caller's buffer.
//
// A Parser holds the state of one head at a time and resets itself when it
// returns a head or an error. Between calls for one head the bytes already
// given must stay as they were (the buffer may move, not change): a caller
// that compacts or replaces them must call Reset, which discards the head
// in progress, and start over. The zero
// value is ready to use. A Parser is owned by one connection: it is not
// safe for concurrent use.
type Parser struct {
	// Limits bounds the head; the zero value gives the defaults.
	Limits Limits

	active  bool // a head is in progress; the fields below are valid
	started bool // start is known (leading empty lines skipped)
	lineOK  bool // the first line is complete and within MaxURIBytes
	start   int  // offset of the start line
	next    int  // offset at which the search for '\n' resumes
	lineEnd int  // offset of the '\n' ending the start line, or -1
	sp1     int  // offset from start of the first space of the start line, or -1
	sp2     int  // offset from start of the second space, or -1
	spNext  int  // offset from start at which the search for spaces resumes
}

// head finds the end of a complete head in buf; end == 0 means more bytes
// are needed, or err. It leaves the parser ready for the next head.
func (p *Parser) head(buf []byte, request bool) (start, end int, err error) {
	end, err = p.scan(buf, request)
	if end == 0 {
		if err != nil {
			p.Reset()
		}
		return 0, 0, err
	}
	start = p.start
	p.Reset()
	return start, end, nil
}

// Reset discards any head in progress, for example when the connection's
// buffer is reused for something else.
func (p *Parser) Reset() {
	p.active = false
}

func (p *Parser) begin() {
	*p = Parser{Limits: p.Limits, active: true, lineEnd: -1, sp1: -1, sp2: -1}
}

// scan looks for the end of the head in buf, resuming where the previous
// call stopped. It returns the offset just past the blank line, or 0 if more
// bytes are needed. Errors are only those visible before the head is
// complete: 431 (head too large) and, for requests, 414 (URI too long).
func (p *Parser) scan(buf []byte, request bool) (int, error) {
	maxHead := p.Limits.maxHead()
	win := buf
	if len(win) > maxHead {
		win = win[:maxHead]
	}
	if !p.active || len(win) < p.next {
		// Fewer bytes than last time is not the same head grown: start
		// over rather than trust stale offsets.
		p.begin()
	}
	if !p.started {
		// RFC 9112 2.2: a server SHOULD ignore at least one empty line
		// (CRLF) received before the request line; clients send one
		// after a POST body. Skip any number, within MaxHeadBytes.
		i := p.next
		for i < len(win) {
			c := win[i]
			if c == '\n' {
				i++
				continue
			}
			if c == '\r' {
				if i+1 >= len(win) {
					break // need the byte after the CR
				}
				if win[i+1] == '\n' {
					i += 2
					continue
				}
			}
			p.started = true
			p.start = i
			break
		}
		p.next = i
	}
	if p.started {
		for {
			j := bytes.IndexByte(win[p.next:], '\n')
			if j < 0 {
				p.next = len(win)
				break
			}
			j += p.next
			if p.lineEnd < 0 {
				p.lineEnd = j
			}
			// A line that is empty or only "\r" ends the head. Keep the
			// '\n' for the next call if its successors have not come yet.
			if j+1 >= len(win) {
				p.next = j
				break
			}
			if c := win[j+1]; c == '\n' {
				return j + 2, nil
			} else if c == '\r' {
				if j+2 >= len(win) {
					p.next = j
					break
				}
				if win[j+2] == '\n' {
					return j + 3, nil
				}
			}
			p.next = j + 1
		}
		if request && !p.lineOK {
			if err := p.checkRequestLine(win); err != nil {
				return 0, err
			}
		}
	}
	if len(buf) >= maxHead {
		return 0, errHeadTooLarge
	}
	return 0, nil
}

// checkRequestLine reports a 414 as soon as the request line in win shows a
// URI over MaxURIBytes, before the head is complete. It gives the same
// verdict as uriTooLong gives on the whole line, whatever the pieces the
// line arrived in, and never rescans: the offsets of the spaces found so
// far are kept in p.
func (p *Parser) checkRequestLine(win []byte) error {
	maxURI := p.Limits.maxURI()
	var c []byte // the line so far, without its line ending
	complete := p.lineEnd >= 0
	if complete {
		c = win[p.start:p.lineEnd]
	} else {
		c = win[p.start:]
	}
	if len(c) > 0 && c[len(c)-1] == '\r' {
		// The CR of a CRLF still on its way, or of a line that ended.
		c = c[:len(c)-1]
	}
	if complete {
		p.lineOK = true
	}
	if len(c) <= maxURI {
		return nil
	}
	if p.sp1 < 0 {
		k := bytes.IndexByte(c[p.spNext:], ' ')
		if k < 0 {
			p.spNext = len(c)
			return errURITooLong // no space in more than maxURI bytes
		}
		p.sp1 = p.spNext + k
		p.spNext = p.sp1 + 1
	}
	if p.sp1 > maxURI {
		return errURITooLong
	}
	uriEnd := p.sp2
	if uriEnd < 0 {
		k := bytes.IndexByte(c[p.spNext:], ' ')
		if k < 0 {
			p.spNext = len(c)
			uriEnd = len(c)
		} else {
			p.sp2 = p.spNext + k
			p.spNext = p.sp2 + 1
			uriEnd = p.sp2
		}
	}
	if uriEnd-p.sp1-1 > maxURI {
		return errURITooLong
	}
	return nil
}

// uriTooLong is checkRequestLine's rule applied to a whole request line c
// (without its line ending) whose first two spaces are at sp1 and sp2 (-1
// when absent): the method is not followed by a space within maxURI bytes,
// or the URI is longer than maxURI.
func uriTooLong(c []byte, sp1, sp2, maxURI int) bool {
	if len(c) <= maxURI {
		return false
	}
	if sp1 < 0 || sp1 > maxURI {
		return true
	}
	end := sp2
	if end < 0 {
		end = len(c)
	}
	return end-sp1-1 > maxURI
}

// lineEnd returns the offset of the '\n' that ends the line starting at
// pos, and the end of its content (before a CR of a CRLF). The head always
// ends with '\n', so there is one.
func lineEnd(head []byte, pos int) (nl, end int) {
	nl = pos + bytes.IndexByte(head[pos:], '\n')
	end = nl
	if end > pos && head[end-1] == '\r' {
		end--
	}
	return nl, end
}

// parseFields parses the header lines of head starting at pos, up to and
// including the blank line that ends it (scan made sure there is one), and
// appends them to hs. In a response, an obs-fold continuation line is
// joined to the previous value with one space, in place in head (RFC 9112
// 5.2); in a request it is an error.
func parseFields(head []byte, pos int, hs []Header, maxHeaders int, response bool) ([]Header, error) {
	lastEnd := -1 // offset of the end of the last value, for folding
	for {
		c := head[pos]
		if c == '\n' {
			return hs, nil
		}
		if c == '\r' {
			// head ends with '\n', so head[pos+1] exists.
			if head[pos+1] == '\n' {
				return hs, nil
			}
			return hs, errBareCR
		}
		if c == ' ' || c == '\t' {
			if !response {
				return hs, errObsFold
			}
			if len(hs) == 0 {
				return hs, errFoldFirst
			}
			vs, ve, next, err := parseValue(head, pos)
			if err != nil {
				return hs, err
			}
			pos = next
			if vs == ve {
				continue
			}
			last := &hs[len(hs)-1]
			if len(last.Value) == 0 {
				last.Value = head[vs:ve:ve]
				lastEnd = ve
				continue
			}
			// There are at least a '\n' and the fold's whitespace between
			// lastEnd and vs, so the copy only moves bytes down.
			start := lastEnd - len(last.Value)
			head[lastEnd] = ' '
			n := copy(head[lastEnd+1:], head[vs:ve])
			lastEnd += 1 + n
			last.Value = head[start:lastEnd:lastEnd]
			continue
		}
		ns := pos
		for isToken(head[pos]) {
			pos++ // stops at the final '\n' at the latest
		}
		if head[pos] != ':' {
			switch head[pos] {
			case ' ', '\t':
				return hs, errSpaceBeforeColon
			case '\r':
				if head[pos+1] != '\n' {
					return hs, errBareCR
				}
				return hs, errNoColon
			case '\n':
				return hs, errNoColon
			}
			return hs, errBadName
		}
		if pos == ns {
			return hs, errEmptyName
		}
		name := head[ns:pos:pos]
		vs, ve, next, err := parseValue(head, pos+1)
		if err != nil {
			return hs, err
		}
		pos = next
		if len(hs) >= maxHeaders {
			return hs, errTooManyHeaders
		}
		hs = append(hs, Header{Name: name, Value: head[vs:ve:ve]})
		lastEnd = ve
	}
}

// parseValue reads a field value starting at pos (after the colon, or at
// the whitespace of a continuation line) to the end of its line. It returns
// the value's bounds without surrounding whitespace and the offset of the
// next line.
func parseValue(head []byte, pos int) (vs, ve, next int, err error) {
	for isOWS(head[pos]) {
		pos++
	}
	vs = pos
	// Eight bytes at a time while none is a CTL: every line ends in one.
	for pos+8 <= len(head) && !hasCTL(binary.LittleEndian.Uint64(head[pos:])) {
		pos += 8
	}
	for isValueByte(head[pos]) {
		pos++
	}
	ve = pos
	switch head[pos] {
	case '\n':
		next = pos + 1
	case '\r':
		if head[pos+1] != '\n' {
			return 0, 0, 0, errBareCR
		}
		next = pos + 2
	default:
		return 0, 0, 0, errBadValue
	}
	for ve > vs && isOWS(head[ve-1]) {
		ve--
	}
	return vs, ve, next, nil
}

// hasCTL reports whether any byte of w is below 0x20 or is 0x7f (the
// "hasless" and "haszero" bit tricks; exact for the question "any?").
// HTAB is among them: a value with a tab takes the byte-wise path.
func hasCTL(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	less := (w - 0x20*ones) &^ w & highs
	x := w ^ 0x7f*ones
	del := (x - ones) &^ x & highs
	return less|del != 0
}
