package h2

import (
	"strconv"
	"strings"

	"golang.org/x/net/http2/hpack"
)

// Stream is one exchange of a connection: the client's request, the
// server's response. Its methods run on the connection's goroutine (the
// event loop), as Conn's.
type Stream struct {
	c  *Conn
	id uint32

	// recvDone: the peer sent END_STREAM (half-closed remote); sent:
	// our head went out; localDone: we sent END_STREAM; done: no more
	// Handler calls (a server's response ended; a client's response
	// ended; the stream was reset); closed: the connection forgot it.
	recvDone, sent, localDone, done, closed bool
	// gotHead: a client's stream received its final response head;
	// head: its request is a HEAD; interims: the 1xx heads it got.
	gotHead, head bool
	interims      int

	sendWindow int64 // what the server may still send on it
	recvWindow int64 // what the client may still send on it
	unacked    int64 // body bytes consumed, not yet given back

	contentLength, received int64

	pend     []byte              // response body waiting for window
	pendEnd  bool                // END_STREAM after pend
	trailers []hpack.HeaderField // the response's trailers, after pend
	queued   bool                // in Conn.blocked

	// Trailers are the request's trailers, when it had some: set before
	// the last Data call.
	Trailers []hpack.HeaderField
	// User is the handler's, to find its state from the stream.
	User any
}

// ID is the stream identifier.
func (s *Stream) ID() uint32 { return s.id }

// Conn is the stream's connection.
func (s *Stream) Conn() *Conn { return s.c }

// emit collects a decoded field (hpack's callback).
func (c *Conn) emit(f hpack.HeaderField) {
	c.fsize += f.Size()
	if c.fsize > c.lim.MaxHeaderListSize {
		c.big = true
		return
	}
	c.fields = append(c.fields, f)
}

// headers starts a header block: a request's head, or its trailers
// (6.2).
func (c *Conn) headers(fh FrameHeader, p []byte) {
	p, dep, ok := c.headerBlock(fh, p)
	if !ok {
		return
	}
	if c.client {
		c.responseHeaders(fh, p)
		return
	}
	id := fh.StreamID
	if dep == id {
		// Depending on itself (5.3.1): the block is still decoded, to
		// keep the HPACK state of the connection.
		c.beginBlock(fh, p, false)
		c.hdrDeny = ErrProtocol
		c.maybeEndBlock(fh)
		return
	}
	trailers := false
	if s := c.streams[id]; s != nil {
		if s.recvDone {
			c.beginBlock(fh, p, false)
			c.hdrDeny = ErrStreamClosed
			c.maybeEndBlock(fh)
			return
		}
		if !fh.Has(FlagEndStream) {
			c.fail(ErrProtocol) // trailers end the stream (8.1)
			return
		}
		trailers = true
	} else if id <= c.lastID {
		if c.wasReset(id) {
			// Sent before the client learnt of the server's reset: the
			// block is decoded (HPACK's state) and dropped.
			c.beginBlock(fh, p, false)
			c.hdrDrop = true
			c.maybeEndBlock(fh)
			return
		}
		c.fail(ErrStreamClosed) // a stream that ended (5.1)
		return
	}
	c.beginBlock(fh, p, trailers)
	c.maybeEndBlock(fh)
}

// headerBlock is a HEADERS frame's header block fragment, its padding
// and priority fields taken off; dep is the stream the priority fields
// name (0 without them). ok false: the connection failed. Streams are
// odd on both sides: clients open them, and plb's client refuses pushes
// (5.1.1).
func (c *Conn) headerBlock(fh FrameHeader, p []byte) (block []byte, dep uint32, ok bool) {
	if fh.StreamID == 0 || fh.StreamID%2 == 0 {
		c.fail(ErrProtocol)
		return nil, 0, false
	}
	p, ok = stripPadding(fh, p)
	if !ok {
		c.fail(ErrProtocol)
		return nil, 0, false
	}
	if fh.Has(FlagPriority) {
		if len(p) < priorityLen {
			c.fail(ErrFrameSize)
			return nil, 0, false
		}
		dep = uint32(p[0])<<24&0x7f000000 | uint32(p[1])<<16 | uint32(p[2])<<8 | uint32(p[3])
		p = p[priorityLen:]
	}
	return p, dep, true
}

// beginBlock starts reading a header block on fh's stream.
func (c *Conn) beginBlock(fh FrameHeader, p []byte, trailers bool) {
	c.inHeaders, c.hdrStream, c.hdrEnd, c.hdrTrail, c.hdrDeny, c.hdrDrop = true, fh.StreamID, fh.Has(FlagEndStream), trailers, ErrNo, false
	c.hdrBuf = append(c.hdrBuf[:0], p...)
}

// continuation adds to the header block (6.10).
func (c *Conn) continuation(fh FrameHeader, p []byte) {
	if len(c.hdrBuf)+len(p) > 2*int(c.lim.MaxHeaderListSize) {
		c.fail(ErrEnhanceYourCalm) // CONTINUATION flood (CVE-2024-27316)
		return
	}
	c.hdrBuf = append(c.hdrBuf, p...)
	c.maybeEndBlock(fh)
}

// maybeEndBlock decodes the header block when fh ends it.
func (c *Conn) maybeEndBlock(fh FrameHeader) {
	if !fh.Has(FlagEndHeaders) {
		return
	}
	c.inHeaders = false
	c.fields, c.fsize, c.big = c.fields[:0], 0, false
	if _, err := c.dec.Write(c.hdrBuf); err != nil {
		c.fail(ErrCompression)
		return
	}
	if err := c.dec.Close(); err != nil {
		c.fail(ErrCompression)
		return
	}
	if len(c.hdrBuf) > cap(c.hdrBuf)/4 && cap(c.hdrBuf) > 64<<10 {
		c.hdrBuf = nil // a large block's buffer is not kept
	}
	id := c.hdrStream
	if c.hdrDrop {
		return
	}
	if c.hdrDeny != ErrNo {
		if c.hdrDeny == ErrProtocol && id > c.lastID {
			c.lastID = id
		}
		c.fault(id, c.hdrDeny)
		return
	}
	if c.hdrTrail {
		c.trailers(c.streams[id])
		return
	}
	if c.client {
		c.response(c.streams[id])
		return
	}
	c.open(id)
}

// open starts stream id with the decoded request head.
func (c *Conn) open(id uint32) {
	c.lastID = id
	if c.draining || c.peerGone {
		c.writeRST(id, ErrRefusedStream)
		return
	}
	if c.active >= int(c.lim.MaxConcurrentStreams) {
		c.fault(id, ErrRefusedStream) // the client was told the limit
		return
	}
	s := &Stream{c: c, id: id, sendWindow: c.peerWindow, recvWindow: int64(c.lim.StreamWindow), recvDone: c.hdrEnd}
	c.streams[id] = s
	c.active++
	if c.big {
		s.recvDone = true // the rest of the request is not read: frames on it are refused
		s.Respond(431, nil, nil)
		return
	}
	r, code := c.request()
	if code == ErrNo && s.recvDone && r.ContentLength > 0 {
		code = ErrProtocol // content-length without the body (8.1.1)
	}
	if code != ErrNo {
		c.forget(s)
		s.done = true
		c.fault(id, code)
		return
	}
	s.contentLength = r.ContentLength
	c.opened++ // a request the handler gets (countLost weighs resets by these)
	c.h.Request(s, r, s.recvDone)
}

// request builds the request of the decoded fields, or the error that
// makes it malformed (8.1.1, 8.2, 8.3): PROTOCOL_ERROR.
func (c *Conn) request() (*Request, ErrCode) {
	r := &c.req
	clear(r.Fields) // the last request's strings are not kept
	*r = Request{Fields: r.Fields[:0], ContentLength: -1}
	regular := false
	for _, f := range c.fields {
		if !validName(f.Name) || !validValue(f.Value) {
			return nil, ErrProtocol
		}
		if strings.HasPrefix(f.Name, ":") {
			if regular {
				return nil, ErrProtocol // pseudo-fields first
			}
			var dst *string
			switch f.Name {
			case ":method":
				dst = &r.Method
			case ":scheme":
				dst = &r.Scheme
			case ":authority":
				dst = &r.Authority
			case ":path":
				dst = &r.Path
			default:
				return nil, ErrProtocol
			}
			if *dst != "" || f.Value == "" {
				return nil, ErrProtocol // twice, or empty
			}
			*dst = f.Value
			continue
		}
		regular = true
		switch f.Name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			return nil, ErrProtocol // connection-specific (8.2.2)
		case "te":
			if f.Value != "trailers" {
				return nil, ErrProtocol
			}
		case "content-length":
			n, ok := parseLength(f.Value)
			if !ok || r.ContentLength >= 0 && r.ContentLength != n {
				return nil, ErrProtocol
			}
			r.ContentLength = n
		}
		r.Fields = append(r.Fields, f)
	}
	if !validToken(r.Method) || !validTarget(r.Path) || !validTarget(r.Authority) || strings.ContainsAny(r.Authority, "/?#\\") {
		return nil, ErrProtocol
	}
	if r.Method == "CONNECT" {
		if r.Scheme != "" || r.Path != "" || r.Authority == "" {
			return nil, ErrProtocol
		}
		return r, ErrNo
	}
	// :path is an absolute path, or "*" for OPTIONS (8.3.1): never the
	// absolute form, whose authority would take the place of :authority
	// in the HTTP/1.1 request a role reads.
	if r.Scheme == "" || !(strings.HasPrefix(r.Path, "/") || r.Path == "*" && r.Method == "OPTIONS") {
		return nil, ErrProtocol
	}
	return r, ErrNo
}

// validTarget reports whether v may stand in an HTTP/1.1 request line or
// Host field as it is: visible ASCII only (RFC 3986; no space, which
// would split the line, nor control or 8-bit byte).
func validTarget(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b <= ' ' || b >= 0x7f {
			return false
		}
	}
	return true
}

// parseLength parses a content-length: digits only, at most 18.
func parseLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(v[i]-'0')
	}
	return n, true
}

// validToken reports whether v is a token (RFC 9110 5.6.2), as a method
// is.
func validToken(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		b := v[i]
		if b <= ' ' || b >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", b) >= 0 {
			return false
		}
	}
	return true
}

// trailers ends s's request with trailer fields.
func (c *Conn) trailers(s *Stream) {
	if s == nil {
		return
	}
	if c.big {
		c.fault(s.id, ErrProtocol) // past MaxHeaderListSize: not cut short
		return
	}
	for _, f := range c.fields {
		if strings.HasPrefix(f.Name, ":") || !validName(f.Name) || !validValue(f.Value) {
			c.fault(s.id, ErrProtocol)
			return
		}
	}
	if s.contentLength >= 0 && s.received != s.contentLength {
		c.fault(s.id, ErrProtocol)
		return
	}
	s.Trailers = append([]hpack.HeaderField(nil), c.fields...)
	s.recvDone = true
	if !s.done {
		c.sh.Data(s, nil, true)
		c.recvEnded(s)
	}
}

// validName reports whether a field name is lower case token bytes (or a
// pseudo-field's ':' first).
func validName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		b := n[i]
		if i == 0 && b == ':' {
			continue
		}
		if b <= ' ' || b >= 0x7f || 'A' <= b && b <= 'Z' || strings.IndexByte("\"(),/:;<=>?@[\\]{}", b) >= 0 {
			return false
		}
	}
	return true
}

// validValue reports whether a field value has no NUL, CR or LF, and no
// space or tab at either end (8.2.1).
func validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b == 0 || b == '\r' || b == '\n' {
			return false
		}
	}
	return v == "" || v[0] != ' ' && v[0] != '\t' && v[len(v)-1] != ' ' && v[len(v)-1] != '\t'
}

// data is request body bytes (6.1).
func (c *Conn) data(fh FrameHeader, p []byte) {
	if fh.StreamID == 0 {
		c.fail(ErrProtocol)
		return
	}
	size := int64(len(p))
	// The connection window counts every DATA frame, padding included,
	// whatever its stream's state (6.9).
	if size > c.recvWindow {
		c.fail(ErrFlowControl)
		return
	}
	c.recvWindow -= size
	if c.client {
		// A client gives the connection's window back on receipt: the
		// streams' windows bound what it holds, and a stream whose reader
		// is slow must not stop the others' responses.
		c.giveBackConn(size)
	}
	body, ok := stripPadding(fh, p)
	if !ok {
		c.fail(ErrProtocol)
		return
	}
	s := c.streams[fh.StreamID]
	if s != nil && c.client && !s.gotHead && !s.recvDone {
		c.resetStream(s, ErrProtocol) // a body before the response head (8.1)
		return
	}
	if s == nil || s.recvDone {
		if s == nil && c.idle(fh.StreamID) {
			c.fail(ErrProtocol) // an idle stream
			return
		}
		c.giveBack(nil, size) // nobody reads it
		c.streamError(fh.StreamID, ErrStreamClosed)
		return
	}
	if size > s.recvWindow {
		c.giveBack(nil, size)
		c.fault(s.id, ErrFlowControl)
		return
	}
	s.recvWindow -= size
	if pad := size - int64(len(body)); pad > 0 {
		c.giveBack(s, pad)
	}
	s.received += int64(len(body))
	end := fh.Has(FlagEndStream)
	if s.contentLength >= 0 && (s.received > s.contentLength || end && s.received != s.contentLength) {
		c.fault(s.id, ErrProtocol) // content-length says otherwise (8.1.1)
		return
	}
	if end {
		s.recvDone = true
	}
	if s.done {
		c.giveBack(s, int64(len(body))) // answered already: nobody reads it
		if end {
			c.forget(s)
		}
		return
	}
	if len(body) > 0 || end {
		c.sh.Data(s, body, end)
	}
	if end {
		c.recvEnded(s)
	}
}

// giveBack returns n received bytes to the peer's windows: the
// connection's (a server's; a client gave it back on receipt) and, when
// s is not nil, the stream's, with WINDOW_UPDATE once a good part of a
// window is used (not for every frame).
func (c *Conn) giveBack(s *Stream, n int64) {
	if !c.client {
		c.giveBackConn(n)
	}
	if s == nil || s.recvDone || s.closed {
		return
	}
	s.unacked += n
	if s.unacked >= int64(c.lim.StreamWindow)/4 {
		c.wbuf = appendU32(appendFrameHeader(c.wbuf, windowUpdateLen, FrameWindowUpdate, 0, s.id), uint32(s.unacked))
		s.recvWindow += s.unacked
		s.unacked = 0
	}
}

// giveBackConn returns n received bytes to the connection's window.
func (c *Conn) giveBackConn(n int64) {
	c.recvUnacked += n
	if c.recvUnacked >= int64(c.lim.ConnWindow)/4 {
		c.wbuf = appendU32(appendFrameHeader(c.wbuf, windowUpdateLen, FrameWindowUpdate, 0, 0), uint32(c.recvUnacked))
		c.recvWindow += c.recvUnacked
		c.recvUnacked = 0
	}
}

// Consumed tells that the handler is done with n body bytes of the
// request: the client may send as many more.
func (s *Stream) Consumed(n int) {
	if n > 0 {
		s.c.giveBack(s, int64(n))
		s.c.flushSoon()
	}
}

// Respond writes a whole response: status, fields (names lower case, no
// connection-specific ones) and body, ending the stream.
func (s *Stream) Respond(status int, fields []hpack.HeaderField, body []byte) {
	s.WriteHeaders(status, fields, len(body) == 0)
	if len(body) > 0 {
		s.WriteData(body, true)
	}
}

// WriteHeaders writes the response head; end ends the stream (no body).
func (s *Stream) WriteHeaders(status int, fields []hpack.HeaderField, end bool) {
	c := s.c
	if s.localDone || s.closed || s.sent || c.dead {
		return
	}
	s.sent = true
	c.writeFields(s.id, status, fields, end)
	if end {
		s.end()
	}
	c.flushSoon()
}

// WriteInterim writes an interim (1xx) response head, before the final
// one: 100 Continue, 103 Early Hints.
func (s *Stream) WriteInterim(status int, fields []hpack.HeaderField) {
	c := s.c
	if s.localDone || s.closed || s.sent || c.dead || status < 100 || status > 199 || status == 101 {
		return
	}
	c.writeFields(s.id, status, fields, false)
	c.flushSoon()
}

// WriteTrailers ends the response with trailer fields.
func (s *Stream) WriteTrailers(fields []hpack.HeaderField) {
	c := s.c
	if s.localDone || s.closed || !s.sent || c.dead {
		return
	}
	if len(s.pend) > 0 {
		// After the body: kept until the window lets the body out.
		s.pendEnd = true
		s.trailers = append(s.trailers[:0], fields...)
		return
	}
	c.writeFields(s.id, 0, fields, true)
	s.end()
	c.flushSoon()
}

// writeFields encodes a header block, :status first unless status is 0
// (trailers), and writes it (writeBlock).
func (c *Conn) writeFields(id uint32, status int, fields []hpack.HeaderField, end bool) {
	c.encBuf.Reset()
	if status != 0 {
		var code [3]byte
		c.enc.WriteField(hpack.HeaderField{Name: ":status", Value: string(strconv.AppendInt(code[:0], int64(status), 10))})
	}
	for _, f := range fields {
		c.enc.WriteField(f)
	}
	c.writeBlock(id, c.encBuf.Bytes(), end)
}

// writeBlock writes a header block as HEADERS and CONTINUATION frames no
// larger than the client's SETTINGS_MAX_FRAME_SIZE.
func (c *Conn) writeBlock(id uint32, block []byte, end bool) {
	var flags uint8
	if end {
		flags = FlagEndStream
	}
	t := FrameHeaders
	for first := true; first || len(block) > 0; first = false {
		n := min(len(block), c.peerMaxFrame)
		f := flags
		if n == len(block) {
			f |= FlagEndHeaders
		}
		c.wbuf = append(appendFrameHeader(c.wbuf, n, t, f, id), block[:n]...)
		block = block[n:]
		t, flags = FrameContinuation, 0
	}
}

// WriteData writes response body bytes (copied); end ends the stream.
// What the flow-control windows do not let out now waits in the stream
// (Pending) and goes as the client opens them.
func (s *Stream) WriteData(p []byte, end bool) {
	if s.localDone || s.closed || !s.sent || s.c.dead || len(p) == 0 && !end {
		return
	}
	c := s.c
	if n := int64(len(p)); len(s.pend) == 0 && n <= s.sendWindow && n <= c.sendWindow && len(p) <= c.peerMaxFrame {
		// All of it may go at once: one frame, no copy kept.
		var flags uint8
		if end {
			flags = FlagEndStream
		}
		c.wbuf = append(appendFrameHeader(c.wbuf, len(p), FrameData, flags, s.id), p...)
		s.sendWindow -= n
		c.sendWindow -= n
		if end {
			s.pendEnd = true
			s.end()
		}
		c.flushSoon()
		return
	}
	s.pend = append(s.pend, p...)
	s.pendEnd = s.pendEnd || end
	s.send()
	c.flushSoon()
}

// Pending is the number of body bytes written and not yet sent for want
// of window: the handler stops reading its source while it is large.
func (s *Stream) Pending() int { return len(s.pend) }

// send sends what the windows allow of s's pending body, then, once all
// of it went, the end of the stream: END_STREAM on the last DATA frame,
// or the trailers.
func (s *Stream) send() {
	c := s.c
	ended := false
	for len(s.pend) > 0 {
		n := min(int64(len(s.pend)), s.sendWindow, c.sendWindow, int64(c.peerMaxFrame))
		if n <= 0 {
			if !s.queued {
				s.queued = true
				c.blocked = append(c.blocked, s)
			}
			return
		}
		var flags uint8
		if n == int64(len(s.pend)) && s.pendEnd && s.trailers == nil {
			flags, ended = FlagEndStream, true
		}
		c.wbuf = append(appendFrameHeader(c.wbuf, int(n), FrameData, flags, s.id), s.pend[:n]...)
		s.pend = s.pend[n:]
		s.sendWindow -= n
		c.sendWindow -= n
	}
	s.pend = s.pend[:0]
	if !s.pendEnd || s.localDone || s.closed {
		return
	}
	switch {
	case s.trailers != nil:
		c.writeFields(s.id, 0, s.trailers, true)
	case !ended:
		c.wbuf = appendFrameHeader(c.wbuf, 0, FrameData, FlagEndStream, s.id)
	}
	s.end()
}

// Reset ends the stream with code (RST_STREAM): ErrNo after a complete
// response whose request the client is still sending (8.1), another
// code when the response cannot be completed.
func (s *Stream) Reset(code ErrCode) {
	if s.closed {
		return
	}
	s.done = true
	s.c.resetStream(s, code)
	s.c.flushSoon()
}

// end marks the response complete; the stream closes once the request
// is complete too. Until then what the client sends on it is checked
// and given back to its window (the caller bounds the wait: Reset with
// ErrNo, 8.1).
func (s *Stream) end() {
	s.localDone = true
	if !s.c.client {
		s.done = true // a server's handler hears no more once it answered
	}
	if s.recvDone {
		s.c.forget(s)
	}
}

// RequestDone reports whether the client sent the whole request.
func (s *Stream) RequestDone() bool { return s.recvDone }

// Closed reports whether the stream is over: answered and its request
// whole, or reset.
func (s *Stream) Closed() bool { return s.closed }
