package h2cli

import (
	"strconv"

	"golang.org/x/net/http2/hpack"

	"github.com/plb/plb/engine"
	"github.com/plb/plb/http"
	"github.com/plb/plb/http/h2"
	"github.com/plb/plb/http/status"
)

// exState is where an exchange is in its current request.
type exState uint8

const (
	exIdle    exState = iota // reading the role's next request head
	exWaiting                // head read, waiting for a stream
	exBody                   // sending the request body
	exSent                   // the request went whole, the response is coming
)

// roleHead bounds the request heads the exchange reads: the role's own
// output, a client's head (within the client side's limits) and the
// fields the role adds (X-Forwarded-*, Connection, HEADER rules): twice
// the client side's defaults, so that none the role accepted is refused.
func roleHead() http.Limits {
	return http.Limits{MaxHeadBytes: 200 << 10, MaxURIBytes: 32 << 10, MaxHeaders: 400}
}

// pauseAbove is the request body a stream holds, waiting for the
// backend's window, beyond which the role is read no further.
const pauseAbove = 64 << 10

// exchange is the outer end's handler of one pair: it reads the role's
// HTTP/1.1 requests, one at a time, sends each as a stream, and writes
// the stream's response back as HTTP/1.1.
type exchange struct {
	p            *Pool
	key          nodeKey
	inner, outer *engine.Conn
	cc           *conn      // the connection of the current stream
	s            *h2.Stream // the current stream, nil between requests
	state        exState

	parser http.Parser
	req    http.RequestHead
	fields []hpack.HeaderField // the request head, kept to open it again when refused
	mode   http.BodyMode
	left   int64
	chunks http.ChunkedScanner
	// noBody: the response has no body by rule (HEAD, 204, 304); chunked:
	// it goes to the role chunked (no content-length).
	head, noBody, chunked bool
	started, ended        bool // the response head went to the role; the response ended
	// lenLeft is what is left of a body with a length: the role's
	// response ends with its last byte, and so does the exchange's.
	lenLeft    int64
	paused     bool
	unconsumed int // response bytes the role has not taken yet
	buf        []byte
}

func (ex *exchange) OnOpen(*engine.Conn) {}

func (ex *exchange) OnData(c *engine.Conn, data []byte) int {
	switch ex.state {
	case exIdle:
		n, err := ex.parser.ParseRequest(data, &ex.req)
		if err != nil {
			c.Abort(err) // the role writes what it parsed: never
			return len(data)
		}
		if n == 0 {
			return 0
		}
		ex.begin()
		ex.parser.Reset()
		if cc := ex.p.stream(ex); cc != nil {
			ex.open(cc)
		} else {
			ex.state = exWaiting
		}
		if ex.state != exBody || n == len(data) {
			if n < len(data) {
				c.PauseRead() // the body waits for the stream
			}
			return n
		}
		return n + ex.body(data[n:])
	case exBody:
		return ex.body(data)
	}
	// The role's next request, which it sends only once the response
	// ended: read again then.
	c.PauseRead()
	return 0
}

// begin turns the request head just parsed into the stream's fields:
// pseudo-fields first, names lower case, without the connection-specific
// fields (RFC 9113 8.2.2), and "te: trailers", which a gRPC server looks
// for (the response's trailers reach the role as a chunked body's).
func (ex *exchange) begin() {
	r := &ex.req
	ex.head = string(r.Method) == "HEAD"
	ex.mode, ex.left = r.BodyMode(), r.ContentLength
	ex.chunks.Reset()
	ex.chunks.KeepTrailers()
	ex.started, ex.ended, ex.noBody, ex.chunked, ex.lenLeft = false, false, false, false, -1
	scheme := "http"
	if ex.key.tls != nil {
		scheme = "https"
	}
	authority := string(r.AbsHost)
	if authority == "" {
		authority = string(r.Get("Host"))
	}
	if authority == "" {
		authority = ex.key.addr.String()
	}
	f := append(ex.fields[:0],
		hpack.HeaderField{Name: ":method", Value: string(r.Method)},
		hpack.HeaderField{Name: ":scheme", Value: scheme},
		hpack.HeaderField{Name: ":authority", Value: authority},
		hpack.HeaderField{Name: ":path", Value: string(r.Path)})
	for _, h := range r.Headers {
		name := h2.LowerName(h.Name)
		switch name {
		case "host", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer":
			continue
		}
		if r.ConnOthers && http.ConnectionNames(r.Headers, h.Name) {
			continue
		}
		f = append(f, hpack.HeaderField{Name: name, Value: string(h.Value), Sensitive: name == "cookie" || name == "authorization"})
	}
	ex.fields = append(f, hpack.HeaderField{Name: "te", Value: "trailers"})
}

// open sends the request head on a new stream of cc.
func (ex *exchange) open(cc *conn) {
	end := ex.mode == http.BodyNone
	s := cc.codec.Open(ex.fields, end)
	if s == nil {
		ex.lost()
		return
	}
	s.User = ex
	ex.cc, ex.s = cc, s
	cc.live[ex] = struct{}{}
	cc.idle()
	ex.p.stats.Streams.Add(1)
	ex.p.stats.StreamsTotal.Add(1)
	if end {
		ex.state = exSent
		return
	}
	ex.state = exBody
	ex.outer.ResumeRead()
	ex.outer.Kick() // the body that came behind the head
}

// body sends request body bytes on the stream: a chunked body's data
// and trailers, a content-length body as it is.
func (ex *exchange) body(data []byte) int {
	s := ex.s
	send := s != nil
	used := 0
	switch ex.mode {
	case http.BodyLength:
		n := int(min(int64(len(data)), ex.left))
		ex.left -= int64(n)
		used = n
		if send {
			s.WriteData(data[:n], ex.left == 0)
		}
		if ex.left == 0 {
			ex.sentWhole()
		}
	case http.BodyChunked:
		for used < len(data) {
			n, p, done, err := ex.chunks.Scan(data[used:])
			if err != nil {
				ex.outer.Abort(err)
				return len(data)
			}
			used += n
			if send && len(p) > 0 {
				s.WriteData(p, false)
			}
			if done {
				if send {
					ex.endChunked(s)
				}
				ex.sentWhole()
				break
			}
			if n == 0 {
				break
			}
		}
	default:
		return len(data) // no body: never here
	}
	if send && ex.state == exBody && s.Pending() > pauseAbove && !ex.paused {
		ex.paused = true
		ex.cc.paused[ex] = struct{}{}
		ex.outer.PauseRead()
	}
	return used
}

// endChunked ends a chunked request body: its trailers, when it had
// some, as the stream's trailers.
func (ex *exchange) endChunked(s *h2.Stream) {
	tf := h2.AppendTrailers(nil, ex.chunks.Trailers())
	if len(tf) == 0 {
		s.WriteData(nil, true)
		return
	}
	s.WriteTrailers(tf)
}

// sentWhole follows the request's last byte: the exchange is done if the
// response is too.
func (ex *exchange) sentWhole() {
	ex.state = exSent
	if ex.ended {
		ex.complete()
	}
}

// resume reads the role's request body again once the stream's window
// let what it held go.
func (ex *exchange) resume() {
	if ex.paused && (ex.s == nil || ex.s.Pending() < pauseAbove/2) {
		ex.unpause()
		ex.outer.ResumeRead()
		ex.outer.Kick()
	}
}

// unpause takes ex off its connection's paused exchanges.
func (ex *exchange) unpause() {
	if ex.paused {
		ex.paused = false
		delete(ex.cc.paused, ex)
	}
}

// respond writes a response head to the role: the status line, the
// fields, and a framing the role can read (content-length as sent,
// chunked without it, so that trailers can follow).
func (ex *exchange) respond(code int, fields []hpack.HeaderField, end bool) {
	if ex.started || ex.outer.Closing() {
		return
	}
	b := strconv.AppendInt(append(ex.buf[:0], "HTTP/1.1 "...), int64(code), 10)
	b = append(append(append(b, ' '), status.Text(code)...), "\r\n"...)
	// A response that announces trailers goes chunked, its length
	// dropped: HTTP/1.1 carries trailers only there.
	trailers, hasLen := false, false
	for _, f := range fields {
		trailers = trailers || f.Name == "trailer"
	}
	for _, f := range fields {
		if f.Name == "content-length" && code >= 200 { // a 1xx's says nothing of the body
			if trailers && !end {
				continue
			}
			if !hasLen {
				ex.lenLeft, _ = strconv.ParseInt(f.Value, 10, 64) // the codec checked it
			}
			hasLen = true
		}
		b = append(append(append(append(b, f.Name...), ": "...), f.Value...), "\r\n"...)
	}
	if code >= 200 {
		ex.started = true
		ex.noBody = ex.head || code == 204 || code == 304
		switch {
		case ex.noBody:
		case end && !hasLen:
			b = append(b, "content-length: 0\r\n"...)
		case !end && !hasLen:
			b = append(b, "transfer-encoding: chunked\r\n"...)
			ex.chunked = true
		}
	}
	ex.buf = append(b, "\r\n"...)
	ex.outer.Write(ex.buf)
	// The role takes the response for whole when its framing says so:
	// the exchange too, whatever the stream still sends (an END_STREAM
	// that comes later, a body a HEAD should not have).
	if end || code >= 200 && (ex.noBody || ex.lenLeft == 0) {
		ex.respDone()
	}
}

// data writes response body bytes to the role; the backend gets them
// back as window once the role took them.
func (ex *exchange) data(s *h2.Stream, p []byte, end bool) {
	if !ex.started {
		ex.lost() // a body before the head (the codec refuses it first)
		return
	}
	if len(p) > 0 {
		switch {
		case ex.noBody || ex.outer.Closing():
			s.Consumed(len(p)) // nobody reads it
		default:
			if ex.chunked {
				ex.buf = http.AppendChunk(ex.buf[:0], p) // one write, not three
				ex.outer.Write(ex.buf)
			} else {
				ex.outer.Write(p)
			}
			if ex.outer.Full() {
				ex.unconsumed += len(p) // given back on OnDrain
			} else {
				s.Consumed(len(p))
			}
		}
	}
	if ex.lenLeft > 0 {
		// The codec checks the length: nothing past it comes here.
		if ex.lenLeft -= int64(len(p)); ex.lenLeft == 0 {
			ex.respDone()
			return
		}
	}
	if !end {
		return
	}
	if ex.chunked {
		ex.buf = h2.AppendTrailerSection(ex.buf[:0], s.Trailers)
		ex.outer.Write(ex.buf)
	}
	ex.respDone()
}

// respDone follows the response's end, as the role sees it. A request
// still being sent is cut (RST_STREAM CANCEL) and the exchange closed
// once the response went to the role: whatever of its body the role
// still writes is not read as its next request, nor is the exchange
// reused while it waits for the backend's window.
func (ex *exchange) respDone() {
	ex.ended = true
	if ex.state == exSent {
		ex.complete()
		return
	}
	if ex.s != nil {
		ex.s.Reset(h2.ErrCancel)
	}
	ex.release()
	ex.outer.Close()
}

// complete readies the exchange for the role's next request.
func (ex *exchange) complete() {
	ex.release()
	ex.state = exIdle
	clear(ex.fields)
	ex.outer.ResumeRead()
	if len(ex.outer.Inbound()) > 0 {
		ex.outer.Kick()
	}
}

// release lets go of the stream.
func (ex *exchange) release() {
	if ex.s == nil {
		return
	}
	if ex.unconsumed > 0 {
		ex.s.Consumed(ex.unconsumed) // the connection's window, at least
		ex.unconsumed = 0
	}
	ex.s.User = nil
	ex.s = nil
	ex.unpause() // reading resumes with the next request (complete), or never
	if cc := ex.cc; cc != nil {
		delete(cc.live, ex)
		cc.idle()
		ex.cc = nil
	}
	ex.p.stats.Streams.Add(-1)
	ex.p.freed(ex.key)
}

// refused: the backend did not process the request (REFUSED_STREAM, or
// above its GOAWAY's last stream). A request without a body is sent again
// on a stream of another connection; any other is lost.
func (ex *exchange) refused() {
	if ex.started || ex.mode != http.BodyNone {
		ex.lost()
		return
	}
	ex.release()
	if cc := ex.p.stream(ex); cc != nil {
		ex.open(cc)
	} else {
		ex.state = exWaiting
	}
}

// lost ends the exchange when its stream failed: the role sees its
// backend connection close (before the response: the role's rules say
// whether to send it again; within it: a response cut short).
func (ex *exchange) lost() {
	if ex.s != nil && !ex.s.Closed() {
		ex.s.Reset(h2.ErrCancel)
	}
	ex.release()
	ex.p.drop(ex)
	ex.outer.Abort(nil)
}

func (ex *exchange) OnEOF(c *engine.Conn) { c.Close() }

func (ex *exchange) OnDrain(*engine.Conn) {
	if ex.unconsumed > 0 && ex.s != nil {
		ex.s.Consumed(ex.unconsumed)
		ex.unconsumed = 0
	}
}

func (ex *exchange) OnTimeout(c *engine.Conn) { c.Close() }

// OnClose: the role closed its end (or the exchange failed): a stream in
// progress is cancelled, which is how a client's cancellation reaches the
// backend.
func (ex *exchange) OnClose(*engine.Conn, error) {
	if ex.s != nil && !ex.s.Closed() {
		ex.s.Reset(h2.ErrCancel)
	}
	ex.release()
	ex.p.drop(ex)
}

// The connection's ClientHandler: each stream's events go to its
// exchange.

func (cc *conn) Response(s *h2.Stream, code int, fields []hpack.HeaderField, end bool) {
	if ex, _ := s.User.(*exchange); ex != nil {
		ex.respond(code, fields, end)
	}
}

func (cc *conn) Data(s *h2.Stream, p []byte, end bool) {
	if ex, _ := s.User.(*exchange); ex != nil {
		ex.data(s, p, end)
		return
	}
	s.Consumed(len(p))
}

func (cc *conn) Closed(s *h2.Stream, code h2.ErrCode) {
	ex, _ := s.User.(*exchange)
	if ex == nil || ex.s != s {
		return
	}
	if code == h2.ErrRefusedStream {
		ex.refused()
		return
	}
	ex.lost()
}
