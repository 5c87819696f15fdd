package h2

import (
	"strings"

	"golang.org/x/net/http2/hpack"

	"github.com/plb/plb/http"
)

// ClientHandler receives the responses on a client connection's streams
// (NewClientConn). Its methods run inside the Conn's calls.
type ClientHandler interface {
	// Response is a response head: an interim one (1xx, end false, the
	// final head follows) or the final one; end reports that no body
	// follows. fields (regular fields, names lower case) are valid only
	// during the call.
	Response(s *Stream, status int, fields []hpack.HeaderField, end bool)
	// Data is response body bytes, valid only during the call; end
	// reports the last (a response with trailers ends with an empty call,
	// Stream.Trailers set). The server may send more only as the handler
	// calls Stream.Consumed.
	Data(s *Stream, p []byte, end bool)
	// Closed reports a stream gone before its response ended: the server
	// reset it, or the connection ended. ErrRefusedStream says the server
	// did not process the request (RFC 9113 8.7: it may be sent again).
	Closed(s *Stream, code ErrCode)
}

// maxInterim bounds the interim (1xx) heads of one response.
const maxInterim = 8

// streamHandler is what both sides' handlers hear of a stream.
type streamHandler interface {
	Data(s *Stream, p []byte, end bool)
	Closed(s *Stream, code ErrCode)
}

// NewClientConn starts the client side of a connection: it writes the
// preface and the client's SETTINGS (no server push). lim bounds what the
// server can make the client hold: the response fields
// (MaxHeaderListSize) and the body bytes not yet consumed (StreamWindow,
// ConnWindow); MaxConcurrentStreams also caps the streams Open opens at
// once, whatever the server allows.
func NewClientConn(out Output, h ClientHandler, lim Limits) *Conn {
	c := newConn(out, lim)
	c.client, c.ch, c.sh = true, h, h
	c.preface, c.nextID = true, 1
	c.peerMaxStreams = c.lim.MaxConcurrentStreams
	c.wbuf = append(c.wbuf, Preface...)
	c.start(SettingEnablePush, 0)
	return c
}

// CanOpen reports whether Open may open a stream now: the connection
// lives, the server has not said GOAWAY, and the streams in progress are
// fewer than the server's SETTINGS_MAX_CONCURRENT_STREAMS (and the
// client's own MaxConcurrentStreams).
func (c *Conn) CanOpen() bool {
	return c.client && !c.dead && !c.peerGone && !c.draining &&
		c.active < int(min(c.peerMaxStreams, c.lim.MaxConcurrentStreams)) && c.nextID < maxStreamID
}

// PeerGone reports whether the peer said GOAWAY: a client opens no
// more streams on the connection, and closes it once its streams ended.
func (c *Conn) PeerGone() bool { return c.peerGone }

// Open starts a request: fields are its head, pseudo-fields (:method,
// :scheme, :authority, :path) first, names lower case and no
// connection-specific field; end reports that no body follows. The body
// goes by Stream.WriteData, trailers by Stream.WriteTrailers. It returns
// nil when CanOpen is false.
func (c *Conn) Open(fields []hpack.HeaderField, end bool) *Stream {
	if !c.CanOpen() {
		return nil
	}
	id := c.nextID
	c.nextID += 2
	s := &Stream{c: c, id: id, sendWindow: c.peerWindow, recvWindow: int64(c.lim.StreamWindow), sent: true,
		contentLength: -1, head: len(fields) > 0 && fields[0].Name == ":method" && fields[0].Value == "HEAD"}
	c.streams[id] = s
	c.active++
	c.writeFields(id, 0, fields, end)
	if end {
		s.end()
	}
	c.flushSoon()
	return s
}

// responseHeaders starts a header block on a client's stream: a response
// head, interim or final, or its trailers.
func (c *Conn) responseHeaders(fh FrameHeader, p []byte) {
	id := fh.StreamID
	s := c.streams[id]
	switch {
	case s == nil && id < c.nextID:
		// A stream the client reset or the connection forgot: decoded
		// (HPACK's state is the connection's) and dropped.
		c.beginBlock(fh, p, false)
		c.hdrDrop = true
	case s == nil:
		c.fail(ErrProtocol) // a stream the client never opened
		return
	case s.recvDone:
		c.beginBlock(fh, p, false)
		c.hdrDeny = ErrStreamClosed
	case s.gotHead && !fh.Has(FlagEndStream):
		c.fail(ErrProtocol) // trailers end the stream (8.1)
		return
	default:
		c.beginBlock(fh, p, s.gotHead)
	}
	c.maybeEndBlock(fh)
}

// response hands a decoded response head to the handler.
func (c *Conn) response(s *Stream) {
	if s == nil {
		return
	}
	if c.big {
		c.resetStream(s, ErrCancel) // fields past MaxHeaderListSize: not held
		return
	}
	status, fields, ok := responseFields(c.fields)
	end := c.hdrEnd
	if !ok || status < 200 && (end || status == 101) {
		c.resetStream(s, ErrProtocol) // malformed (8.1.1)
		return
	}
	if status < 200 {
		if s.interims++; s.interims > maxInterim {
			c.resetStream(s, ErrProtocol) // a flood of 1xx heads
			return
		}
		c.ch.Response(s, status, fields, false)
		return
	}
	s.gotHead = true
	s.contentLength = -1
	for _, f := range fields {
		if f.Name == "content-length" {
			n, ok := parseLength(f.Value)
			if !ok || s.contentLength >= 0 && s.contentLength != n {
				c.resetStream(s, ErrProtocol)
				return
			}
			s.contentLength = n
		}
	}
	if s.head || status == 204 || status == 304 {
		s.contentLength = -1 // no body, whatever the length says (8.1.1)
	} else if end && s.contentLength > 0 {
		c.resetStream(s, ErrProtocol) // a length, and no body
		return
	}
	if end {
		s.recvDone = true
	}
	c.ch.Response(s, status, fields, end)
	if end {
		c.recvEnded(s)
	}
}

// responseFields checks a response's fields: :status first and alone
// among pseudo-fields, then regular fields without connection-specific
// ones. It returns the status and the regular fields (a part of fields).
func responseFields(fields []hpack.HeaderField) (int, []hpack.HeaderField, bool) {
	if len(fields) == 0 || fields[0].Name != ":status" || len(fields[0].Value) != 3 {
		return 0, nil, false
	}
	status := 0
	for i := 0; i < 3; i++ {
		d := fields[0].Value[i]
		if d < '0' || d > '9' {
			return 0, nil, false
		}
		status = status*10 + int(d-'0')
	}
	if status < 100 {
		return 0, nil, false
	}
	rest := fields[1:]
	for _, f := range rest {
		if strings.HasPrefix(f.Name, ":") || !validName(f.Name) || !validValue(f.Value) {
			return 0, nil, false
		}
		switch f.Name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			return 0, nil, false
		}
	}
	return status, rest, true
}

// recvEnded follows the end of what the peer sends on s: a client's
// stream is over for its handler, and closes once its request went whole
// too.
func (c *Conn) recvEnded(s *Stream) {
	if !c.client {
		return
	}
	s.done = true
	if s.localDone {
		c.forget(s)
	}
}

// refuseAfter ends the client's streams above last, the server's GOAWAY
// said it will not process them: the handler hears ErrRefusedStream.
func (c *Conn) refuseAfter(last uint32) {
	for id, s := range c.streams {
		if id > last {
			c.forget(s)
			if !s.done {
				s.done = true
				c.ch.Closed(s, ErrRefusedStream)
			}
		}
	}
}

// AppendTrailers appends to dst the fields of an HTTP/1.1 trailer
// section (http.ChunkedScanner.Trailers), names lower case, less those a
// trailer must not carry (RFC 9110 6.5.1) and the connection-specific
// ones HTTP/2 refuses.
func AppendTrailers(dst []hpack.HeaderField, section []byte) []hpack.HeaderField {
	http.EachTrailer(section, func(name, value []byte) {
		n := LowerName(name)
		switch n {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te",
			"content-length", "host", "trailer":
			return
		}
		dst = append(dst, hpack.HeaderField{Name: n, Value: string(value)})
	})
	return dst
}

// AppendTrailerSection appends fields as an HTTP/1.1 chunked body's end:
// the last chunk, the fields, the empty line.
func AppendTrailerSection(dst []byte, fields []hpack.HeaderField) []byte {
	dst = append(dst, "0\r\n"...)
	for _, f := range fields {
		dst = append(append(append(append(dst, f.Name...), ": "...), f.Value...), "\r\n"...)
	}
	return append(dst, "\r\n"...)
}
