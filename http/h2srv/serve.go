// Package h2srv puts the HTTP/2 codec (package h2) in front of plb's
// HTTP roles on the engine. Each stream of a client's HTTP/2 connection
// becomes one HTTP/1.1 exchange, given to the role over an engine.Pair:
// the role reads the request from the pair's inner end and writes its
// response there as it would for any client, and the stream's side here
// turns the one into the other. The roles (reverse_proxy, web_server,
// selector) need no change, and everything they do applies per stream.
package h2srv

import (
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2/hpack"

	"github.com/plb/plb/engine"
	"github.com/plb/plb/http"
	"github.com/plb/plb/http/h2"
)

// Options are a service's HTTP/2 settings.
type Options struct {
	Limits h2.Limits
	// Accept is the role's OnAccept: it gets each stream's inner end.
	Accept func(c *engine.Conn) engine.Handler
	// IdleTimeout closes a connection without a stream in progress for
	// that long (0: 30 s).
	IdleTimeout time.Duration
	// StallTimeout resets a stream whose response has waited that long
	// for the client to open its window without any of it going out
	// (0: 30 s), and closes a connection whose client took none of its
	// output for that long: a client that never reads holds nothing for
	// ever.
	StallTimeout time.Duration
	Log          *slog.Logger
	// Stats counts the service's HTTP/2 connections and streams, over all
	// its loops (nil: not counted).
	Stats *Stats
}

// Stats are a service's HTTP/2 counters. Safe from any goroutine.
type Stats struct {
	Conns, Streams, StreamsTotal atomic.Int64
	// Pairs counts the pairs made for exchanges: fewer than the streams
	// when exchanges are parked between streams.
	Pairs atomic.Int64
}

// pauseAbove is the response body a stream holds, waiting for the
// client's window, beyond which its role is read no further.
const pauseAbove = 64 << 10

// Serve takes over c, a client connection that speaks HTTP/2 (ALPN h2,
// or h2c's preface in its first bytes): it returns the handler to set
// on c, which is given the bytes read so far next. Runs on the loop.
func Serve(c *engine.Conn, o *Options) engine.Handler {
	cc := &clientConn{c: c, o: o, exchanges: map[*exchange]struct{}{}, idle: o.IdleTimeout, stallAfter: o.StallTimeout,
		local: c.LocalAddr()}
	if cc.idle <= 0 {
		cc.idle = 30 * time.Second
	}
	if cc.stallAfter <= 0 {
		cc.stallAfter = 30 * time.Second
	}
	if o.Stats == nil {
		cc.stats = &Stats{}
	} else {
		cc.stats = o.Stats
	}
	cc.stats.Conns.Add(1)
	cc.codec = h2.NewConn(cc, cc, o.Limits)
	// The frames the streams write during an event go out together once
	// it is handled: one write for the responses that event finished.
	flush := cc.codec.Flush
	loop := c.Loop()
	cc.codec.SetFlushHook(func() { loop.Defer(flush) })
	c.SetTimeout(cc.idle)
	return cc
}

// clientConn is the client's connection: the engine handler feeding the
// codec, the codec's Output and Handler.
type clientConn struct {
	c          *engine.Conn
	o          *Options
	stats      *Stats
	local      netip.AddrPort // the connection's local address, its exchanges' too
	idle       time.Duration  // IdleTimeout, or its default
	stallAfter time.Duration  // StallTimeout, or its default
	codec      *h2.Conn
	exchanges  map[*exchange]struct{}
	parkedEx   []*exchange   // exchanges between streams, their role keeping the pair open (park)
	paused     int           // exchanges whose outer end is paused
	stall      *engine.Timer // checks streams waiting for window (checkStalls)
}

// Write and Buffered make the client's connection the codec's Output.
func (cc *clientConn) Write(p []byte) error { return cc.c.Write(p) }
func (cc *clientConn) Buffered() int        { return cc.c.Buffered() }

func (cc *clientConn) OnOpen(*engine.Conn) {}

func (cc *clientConn) OnData(c *engine.Conn, data []byte) int {
	n, err := cc.codec.Feed(data)
	if err != nil && cc.codec.Err == h2.ErrEnhanceYourCalm && c.Buffered() > 0 {
		// A flood from a client that does not read: what it did not take
		// (its GOAWAY among it) is dropped, not kept until it does.
		c.Abort(nil)
		return len(data)
	}
	if err != nil || cc.codec.Done() {
		c.Close() // after the GOAWAY written
		return len(data)
	}
	c.SetTimeout(cc.idle)
	if c.Full() {
		// The client does not take what it asked for: read no more of
		// its frames (they would ask for more) until it does.
		c.PauseRead()
	}
	cc.resume()
	cc.watchStalls()
	return n
}

func (cc *clientConn) OnEOF(c *engine.Conn) {
	cc.codec.Flush()
	c.Close()
}

func (cc *clientConn) OnDrain(c *engine.Conn) {
	c.ResumeRead()
	cc.resume()
}

func (cc *clientConn) OnTimeout(c *engine.Conn) {
	if c.Pending() && c.Loop().Now().Sub(c.LastWrite()) >= cc.stallAfter {
		c.Abort(engine.ErrTimeout) // the client took none of its output
		return
	}
	if cc.codec.Streams() == 0 {
		cc.codec.Shutdown()
		c.Close()
		return
	}
	c.SetTimeout(cc.idle) // the roles time their exchanges
}

func (cc *clientConn) OnClose(*engine.Conn, error) {
	cc.stats.Conns.Add(-1)
	if cc.stall != nil {
		cc.stall.Stop()
	}
	for ex := range cc.exchanges {
		ex.abort()
	}
}

var _ interface{ DrainIdle(*engine.Conn) } = (*clientConn)(nil) // server's drainIdler

// DrainIdle starts a graceful end (a server's drain, a retired service):
// GOAWAY, the streams in progress finish, new ones are refused, and the
// connection closes once none is left.
func (cc *clientConn) DrainIdle(c *engine.Conn) {
	for _, ex := range cc.parkedEx {
		ex.outer.Close()
	}
	cc.parkedEx = cc.parkedEx[:0]
	cc.codec.Shutdown() // its GOAWAY, once
	if cc.codec.Done() {
		cc.codec.Flush() // what waited for the batch's flush
		c.Close()
	}
}

// checkStalls resets the streams whose response waited StallTimeout for
// the client's window without any of it going out (a zero-window stall:
// the exchange may be over, its body all in the stream), and looks again
// later while some wait.
func (cc *clientConn) checkStalls() {
	cc.stall = nil
	now := cc.c.Loop().Now()
	cc.codec.EachBlocked(func(s *h2.Stream) {
		ex, _ := s.User.(*exchange)
		if ex == nil {
			return
		}
		switch p := s.Pending(); {
		case ex.stallAt.IsZero() || p < ex.stallPend:
			ex.stallAt, ex.stallPend = now, p // new, or it moved
		case now.Sub(ex.stallAt) >= cc.stallAfter:
			s.Reset(h2.ErrCancel)
			ex.abort()
		}
	})
	cc.watchStalls()
}

// watchStalls arms checkStalls while a stream waits for window.
func (cc *clientConn) watchStalls() {
	if cc.stall == nil && cc.codec.Blocked() && !cc.c.Closing() {
		cc.stall = cc.c.Loop().AfterFunc(cc.stallAfter/2+time.Millisecond, cc.checkStalls)
	}
}

// resume lets exchanges paused for the client's window or backlog read
// their role again, once there is room.
func (cc *clientConn) resume() {
	if cc.paused == 0 || cc.c.Full() {
		return
	}
	for ex := range cc.exchanges {
		if ex.paused && ex.s.Pending() < pauseAbove/2 {
			ex.paused = false
			cc.paused--
			ex.outer.ResumeRead()
			ex.outer.Kick()
		}
	}
}

// Request starts a stream's exchange: a pair, the role on its inner end,
// the request written to its outer end as HTTP/1.1.
func (cc *clientConn) Request(s *h2.Stream, r *h2.Request, end bool) {
	if r.Method == "CONNECT" {
		s.Respond(405, nil, nil) // plb tunnels no CONNECT
		return
	}
	ex := cc.unpark()
	if ex == nil {
		ex = &exchange{cc: cc}
		info := engine.PairInfo{Remote: cc.c.RemoteAddr(), Local: cc.local, Secure: cc.c.TLS(), Proto: "HTTP/2.0"}
		_, outer, err := cc.c.Loop().Pair(info, cc.o.Accept, ex)
		if err != nil {
			cc.o.Log.Warn("HTTP/2 stream refused", "err", err)
			s.Reset(h2.ErrRefusedStream)
			return
		}
		ex.outer = outer
		cc.stats.Pairs.Add(1)
		// Request body bytes are given back to the client's window as
		// the role takes them: its end holds 64 KiB, this one queues
		// little.
		outer.SetWatermarks(32<<10, 8<<10)
		cc.exchanges[ex] = struct{}{}
	}
	ex.start(s, r.Method == "HEAD")
	s.User = ex
	cc.stats.StreamsTotal.Add(1)
	cc.stats.Streams.Add(1)
	ex.counted = true
	ex.chunked = !end && r.ContentLength < 0
	ex.hadBody = !end
	// No half-close after the request: a role takes the client's EOF for
	// its leaving. The exchange closes once the response is whole.
	ex.buf = appendRequest(ex.buf[:0], r, ex.chunked) // Write copies: the buffer serves the next request
	ex.outer.Write(ex.buf)
}

// appendRequest appends r as an HTTP/1.1 request head: the authority as
// Host, the cookie fields joined into one (RFC 9113 8.2.3), and a body
// without content-length chunked.
func appendRequest(dst []byte, r *h2.Request, chunked bool) []byte {
	dst = append(append(append(append(dst, r.Method...), ' '), r.Path...), " HTTP/1.1\r\n"...)
	host := r.Authority != ""
	if host {
		dst = append(append(append(dst, "Host: "...), r.Authority...), "\r\n"...)
	}
	cookies := 0
	for _, f := range r.Fields {
		switch f.Name {
		case "host":
			if host {
				continue
			}
		case "cookie":
			cookies++
			continue
		}
		dst = append(append(append(append(dst, f.Name...), ": "...), f.Value...), "\r\n"...)
	}
	if cookies > 0 {
		dst = append(dst, "cookie: "...)
		n := 0
		for _, f := range r.Fields {
			if f.Name == "cookie" {
				if n > 0 {
					dst = append(dst, "; "...)
				}
				dst = append(dst, f.Value...)
				n++
			}
		}
		dst = append(dst, "\r\n"...)
	}
	if chunked {
		dst = append(dst, "transfer-encoding: chunked\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// Data writes request body bytes to the role (chunked when the request
// had no content-length); the client gets them back as window once the
// role's end has taken them.
func (cc *clientConn) Data(s *h2.Stream, p []byte, end bool) {
	ex, _ := s.User.(*exchange)
	if ex == nil || ex.outer == nil || ex.outer.Closing() {
		s.Consumed(len(p))
		return
	}
	if len(p) > 0 {
		if ex.chunked {
			ex.buf = http.AppendChunk(ex.buf[:0], p)
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
	if end && ex.chunked {
		if len(s.Trailers) > 0 {
			ex.buf = h2.AppendTrailerSection(ex.buf[:0], s.Trailers)
			ex.outer.Write(ex.buf)
		} else {
			ex.outer.Write(lastChunk)
		}
	}
}

// Closed: the client reset the stream, or its connection ended.
func (cc *clientConn) Closed(s *h2.Stream, _ h2.ErrCode) {
	if ex, _ := s.User.(*exchange); ex != nil && ex.s == s {
		ex.abort()
	}
}

// maxParked bounds the exchanges a connection keeps between streams.
const maxParked = 16

// unpark returns an exchange kept between streams whose pair is still
// open, or nil.
func (cc *clientConn) unpark() *exchange {
	for n := len(cc.parkedEx); n > 0; n = len(cc.parkedEx) {
		ex := cc.parkedEx[n-1]
		cc.parkedEx[n-1] = nil
		cc.parkedEx = cc.parkedEx[:n-1]
		// Its role may have closed it, or written, since it was parked:
		// neither is seen as an event before this one is done.
		if o := ex.outer; !o.Closing() && !o.PeerClosed() && len(o.Inbound()) == 0 {
			return ex
		}
		ex.outer.Close()
	}
	return nil
}

// unlist drops ex from the parked exchanges.
func (cc *clientConn) unlist(ex *exchange) {
	for i, e := range cc.parkedEx {
		if e == ex {
			cc.parkedEx = append(cc.parkedEx[:i], cc.parkedEx[i+1:]...)
			return
		}
	}
}

// exchange is one stream's exchange: the handler of the pair's outer
// end, which reads the role's HTTP/1.1 response.
type exchange struct {
	cc    *clientConn
	s     *h2.Stream
	outer *engine.Conn
	head  bool // a HEAD request: no body in the response

	chunked    bool                // the request body goes chunked
	unconsumed int                 // request body bytes the role has not taken yet
	buf        []byte              // the request head, then a body chunk's framing
	hdrs       []hpack.HeaderField // the response's fields, encoded at once (reused)

	parser  http.Parser
	resp    http.ResponseHead
	inBody  bool
	mode    http.BodyMode
	left    int64
	chunks  http.ChunkedScanner
	ended   bool // the response is complete
	paused  bool
	interim int  // 1xx responses passed on
	hadBody bool // the request had a body
	counted bool // in Stats.Streams
	parked  bool // between streams (clientConn.parkedEx)
	// stallAt and stallPend: when the response, waiting for window,
	// last made progress, and what was waiting then (checkStalls).
	stallAt   time.Time
	stallPend int
}

// lastChunk ends a chunked request body.
var lastChunk = []byte("0\r\n\r\n")

// maxInterim bounds the 1xx responses passed on for one request.
const maxInterim = 8

func (ex *exchange) OnOpen(*engine.Conn) {}

// start readies ex for stream s: a new exchange, or one parked after a
// complete response on its pair, whose role kept it open (the next
// request follows the last on it, as HTTP/1.1 keep-alive).
func (ex *exchange) start(s *h2.Stream, head bool) {
	ex.s, ex.head = s, head
	ex.chunked, ex.unconsumed, ex.hadBody = false, 0, false
	ex.parser.Reset()
	ex.inBody, ex.ended, ex.parked, ex.interim = false, false, false, 0
	ex.chunks.Reset()
	ex.chunks.KeepTrailers()
	ex.stallAt, ex.stallPend = time.Time{}, 0
	if ex.paused {
		ex.paused = false
		ex.cc.paused--
		ex.outer.ResumeRead()
	}
}

// park keeps ex for the next stream once its response is complete: only
// after a request without a body (nothing of it can be left for the role
// to read as the next request), a response that leaves the pair open
// with nothing after it, and no body left waiting for window (the stall
// check follows the stream through its exchange).
func (ex *exchange) park(rest int) bool {
	cc := ex.cc
	r := &ex.resp
	if ex.hadBody || rest > 0 || r.ConnClose || !r.KeepAlive(ex.head) || ex.s.Pending() > 0 ||
		ex.outer.Closing() || ex.outer.EOF() || len(cc.parkedEx) >= maxParked || cc.codec.Done() {
		return false
	}
	ex.parked = true
	if ex.counted {
		ex.counted = false
		cc.stats.Streams.Add(-1)
	}
	cc.parkedEx = append(cc.parkedEx, ex)
	return true
}
func (ex *exchange) OnData(c *engine.Conn, data []byte) int {
	if ex.parked || ex.ended {
		// Bytes after a whole response, asked for by nobody: the pair
		// is not used again.
		if ex.parked {
			ex.cc.unlist(ex)
			ex.parked = false
		}
		c.Close()
		return len(data)
	}
	used := 0
	if !ex.inBody {
		n, err := ex.parser.ParseResponse(data, &ex.resp)
		if err != nil {
			ex.fail()
			return len(data)
		}
		if n == 0 {
			return 0
		}
		used = n
		r := &ex.resp
		if r.Status < 200 {
			if r.Status != 101 && ex.interim < maxInterim {
				ex.interim++
				ex.hdrs = fields(ex.hdrs[:0], r)
				ex.s.WriteInterim(r.Status, ex.hdrs)
				clear(ex.hdrs) // encoded: nothing of it kept
				ex.parser.Reset()
				return used + ex.OnData(c, data[used:])
			}
			ex.fail() // no Upgrade in HTTP/2 (8.6), or 1xx without end
			return len(data)
		}
		ex.mode, ex.left = r.BodyMode(ex.head), r.ContentLength
		ex.inBody = true
		ex.chunks.Reset()
		end := ex.mode == http.BodyNone || ex.mode == http.BodyLength && ex.left == 0
		ex.hdrs = fields(ex.hdrs[:0], r)
		ex.s.WriteHeaders(r.Status, ex.hdrs, end)
		clear(ex.hdrs) // encoded: nothing of it kept
		if end {
			ex.finish(len(data) - used)
			return len(data)
		}
	}
	for used < len(data) && !ex.ended {
		rest := data[used:]
		switch ex.mode {
		case http.BodyLength:
			n := int(min(int64(len(rest)), ex.left))
			ex.left -= int64(n)
			used += n
			ex.s.WriteData(rest[:n], ex.left == 0)
			if ex.left == 0 {
				ex.finish(len(data) - used)
			}
		case http.BodyChunked:
			n, p, done, err := ex.chunks.Scan(rest)
			if err != nil {
				ex.fail()
				return len(data)
			}
			used += n
			switch {
			case done && len(ex.chunks.Trailers()) > 0:
				// The role's trailers (gRPC's grpc-status) end the stream.
				if len(p) > 0 {
					ex.s.WriteData(p, false)
				}
				ex.hdrs = h2.AppendTrailers(ex.hdrs[:0], ex.chunks.Trailers())
				ex.s.WriteTrailers(ex.hdrs)
				clear(ex.hdrs)
			case len(p) > 0 || done:
				ex.s.WriteData(p, done)
			}
			if done {
				ex.finish(len(data) - used)
			}
			if n == 0 {
				return used
			}
		default: // until the role closes
			ex.s.WriteData(rest, false)
			used = len(data)
		}
	}
	if ex.ended {
		return len(data)
	}
	if ex.s.Pending() > pauseAbove || ex.cc.c.Full() {
		if !ex.paused {
			ex.paused = true
			ex.cc.paused++
		}
		c.PauseRead()
	}
	ex.cc.watchStalls()
	return used
}

// fields appends to dst r's header fields for HTTP/2: names lower case,
// without the connection-specific ones (RFC 9113 8.2.2).
func fields(dst []hpack.HeaderField, r *http.ResponseHead) []hpack.HeaderField {
	for _, h := range r.Headers {
		name := h2.LowerName(h.Name)
		switch name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			continue
		}
		// A cookie is never indexed: a compression oracle (CRIME) cannot
		// guess it byte by byte through the dynamic table.
		dst = append(dst, hpack.HeaderField{Name: name, Value: string(h.Value), Sensitive: name == "set-cookie"})
	}
	return dst
}

// finish ends the exchange after a complete response. A client still
// sending its request body gets StallTimeout to end it (its bytes given
// back to its window, unread), then RST_STREAM NO_ERROR (RFC 9113 8.1).
func (ex *exchange) finish(rest int) {
	ex.ended = true
	if !ex.s.RequestDone() || !ex.park(rest) {
		ex.outer.Close()
	}
	ex.cc.watchStalls() // its body may wait for window, all in the stream
	if s := ex.s; !s.RequestDone() {
		ex.cc.c.Loop().AfterFunc(ex.cc.stallAfter, func() {
			if !s.Closed() {
				s.Reset(h2.ErrNo)
			}
		})
	}
}

// fail resets the stream (a response HTTP/2 cannot carry, or a broken
// one) and drops the role's connection.
func (ex *exchange) fail() {
	ex.ended = true
	ex.s.Reset(h2.ErrInternal)
	ex.outer.Abort(nil)
}

// abort drops the role's connection (the client reset the stream or left).
func (ex *exchange) abort() {
	if ex.outer != nil && !ex.outer.Closed() {
		ex.ended = true
		ex.outer.Abort(nil)
	}
}

func (ex *exchange) OnEOF(c *engine.Conn) {
	if ex.parked {
		ex.cc.unlist(ex) // its role closed it between streams
		ex.parked = false
	}
	if !ex.ended {
		if ex.inBody && ex.mode == http.BodyUntilClose {
			ex.s.WriteData(nil, true)
			ex.finish(0) // the pair closes: not parked
			return
		}
		ex.fail() // closed before the response was whole
		return
	}
	c.Close()
}

func (ex *exchange) OnDrain(*engine.Conn) {
	if ex.unconsumed > 0 {
		ex.s.Consumed(ex.unconsumed)
		ex.unconsumed = 0
	}
}

func (ex *exchange) OnTimeout(c *engine.Conn) { c.Close() }

func (ex *exchange) OnClose(*engine.Conn, error) {
	if !ex.ended {
		ex.ended = true
		ex.s.Reset(h2.ErrInternal)
	}
	if ex.paused {
		ex.paused = false
		ex.cc.paused--
	}
	if ex.unconsumed > 0 {
		ex.s.Consumed(ex.unconsumed) // the connection's window, at least
		ex.unconsumed = 0
	}
	delete(ex.cc.exchanges, ex)
	if ex.parked {
		ex.cc.unlist(ex)
		ex.parked = false
	}
	if ex.counted {
		ex.counted = false
		ex.cc.stats.Streams.Add(-1)
	}
	if cc := ex.cc; cc.codec.Done() && !cc.c.Closing() {
		cc.codec.Flush() // its last frames, which Defer would write too late
		cc.c.Close()     // draining, and this was the last stream
	}
}
