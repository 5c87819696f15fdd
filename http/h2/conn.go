package h2

import (
	"bytes"
	"errors"

	"golang.org/x/net/http2/hpack"
)

// Output is where a Conn writes its frames: the connection's socket.
// Write must not keep p after it returns (engine.Conn copies what it
// cannot send at once). Buffered is the number of bytes written and not
// yet sent: a client that does not read them while it keeps asking for
// answers (PING, SETTINGS) is flooding.
type Output interface {
	Write(p []byte) error
	Buffered() int
}

// Limits bound what one client can make the server hold or do. The zero
// value of a field takes its default (DefaultLimits).
type Limits struct {
	// MaxConcurrentStreams is SETTINGS_MAX_CONCURRENT_STREAMS: requests
	// in progress at once; a stream beyond it is refused (REFUSED_STREAM,
	// which a client may retry). Default 100.
	MaxConcurrentStreams uint32
	// MaxHeaderListSize is SETTINGS_MAX_HEADER_LIST_SIZE: the decoded
	// size of a request's fields (each name and value plus 32, RFC 9113
	// 6.5.2); beyond, the request is answered 431. It also bounds the
	// encoded header block, however many CONTINUATION frames carry it:
	// past twice this size the connection ends (ENHANCE_YOUR_CALM), the
	// CONTINUATION flood of CVE-2024-27316. Default 64 KiB.
	MaxHeaderListSize uint32
	// StreamWindow is SETTINGS_INITIAL_WINDOW_SIZE: request body bytes a
	// client may send on a stream before the handler consumed them.
	// Default 64 KiB (nginx's http2_body_preread_size): with 100 streams
	// a connection holds at most 6.4 MB of bodies nobody read yet.
	StreamWindow uint32
	// ConnWindow is the same for all the streams of the connection
	// together. Default 1 MiB.
	ConnWindow uint32
	// MaxOutput bounds the bytes written and not sent (Output.Buffered)
	// when the client asks for more control answers (PING, SETTINGS) or
	// resets streams: past it the client is not reading, and the
	// connection ends (ENHANCE_YOUR_CALM). Default 1 MiB.
	MaxOutput int
	// MaxResets is how many streams a client may reset (RST_STREAM)
	// before their response ended beyond half of the streams it opened:
	// more, and the connection ends (ENHANCE_YOUR_CALM), the rapid reset
	// of CVE-2023-44487, where every reset stream cost the server work
	// and freed a slot under MaxConcurrentStreams at once. Default 200.
	MaxResets int
}

// DefaultLimits are the limits a zero Limits field takes.
func DefaultLimits() Limits {
	return Limits{
		MaxConcurrentStreams: 100,
		MaxHeaderListSize:    64 << 10,
		StreamWindow:         64 << 10,
		ConnWindow:           1 << 20,
		MaxOutput:            1 << 20,
		MaxResets:            200,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxConcurrentStreams == 0 {
		l.MaxConcurrentStreams = d.MaxConcurrentStreams
	}
	if l.MaxHeaderListSize == 0 {
		l.MaxHeaderListSize = d.MaxHeaderListSize
	}
	if l.StreamWindow == 0 {
		l.StreamWindow = d.StreamWindow
	}
	l.StreamWindow = min(l.StreamWindow, maxWindow)
	if l.ConnWindow == 0 {
		l.ConnWindow = d.ConnWindow
	}
	l.ConnWindow = min(max(l.ConnWindow, defaultWindow), maxWindow)
	if l.MaxOutput == 0 {
		l.MaxOutput = d.MaxOutput
	}
	if l.MaxResets == 0 {
		l.MaxResets = d.MaxResets
	}
	return l
}

// Handler receives a connection's exchanges. Its methods run inside the
// Conn's calls (Feed, and the Stream's writes when they end a stream),
// on the caller's goroutine.
type Handler interface {
	// Request is a stream's request, complete as far as its head: end
	// reports that no body follows. r is valid only during the call (the
	// connection's, for its next request).
	Request(s *Stream, r *Request, end bool)
	// Data is body bytes of the stream's request, valid only during the
	// call; end reports the last (a request with trailers ends with an
	// empty call, Stream.Trailers set). The client may send more only
	// as the handler calls Stream.Consumed.
	Data(s *Stream, p []byte, end bool)
	// Closed reports a stream gone before its response ended: the client
	// reset it, or the connection ended. Nothing more may be written on
	// it.
	Closed(s *Stream, code ErrCode)
}

// Request is a request's head.
type Request struct {
	Method, Scheme, Authority, Path string
	// Fields are the regular fields in arrival order, names lower case.
	Fields []hpack.HeaderField
	// ContentLength is the content-length field's value, -1 when absent.
	ContentLength int64
}

// Conn is the server side of one HTTP/2 connection.
type Conn struct {
	out Output
	h   Handler
	lim Limits
	// client: this is the client side (NewClientConn); ch its handler.
	// sh is the handler of the stream events both sides have.
	client bool
	ch     ClientHandler
	sh     streamHandler

	preface bool // the client preface was read
	settled bool // its first SETTINGS was read
	dead    bool // a connection error was sent: read nothing more
	// draining: GOAWAY sent (Shutdown); new streams are refused.
	draining, peerGone bool

	streams map[uint32]*Stream
	lastID  uint32 // the highest stream the client opened (or tried to)
	active  int    // streams counted against MaxConcurrentStreams
	// A client's: the next stream it opens, and the server's
	// SETTINGS_MAX_CONCURRENT_STREAMS.
	nextID         uint32
	peerMaxStreams uint32

	// The client's settings.
	peerWindow   int64 // SETTINGS_INITIAL_WINDOW_SIZE
	peerMaxFrame int   // SETTINGS_MAX_FRAME_SIZE

	sendWindow   int64 // connection window for what the server sends
	recvWindow   int64 // connection window for what the client sends
	recvUnacked  int64 // consumed and not yet given back by WINDOW_UPDATE
	blocked      []*Stream
	opened, lost int // streams opened, and reset by the client before their end

	// Header block being read (HEADERS then CONTINUATION).
	hdrStream        uint32
	hdrBuf           []byte
	hdrEnd, hdrTrail bool
	inHeaders        bool
	// hdrDeny, when not ErrNo, is the stream error the block ends in
	// (decoded all the same: HPACK's state is the connection's); hdrDrop:
	// the block is for a stream the server reset, decoded and dropped.
	hdrDeny ErrCode
	hdrDrop bool
	// resetIDs are the last streams the server reset (writeRST), a ring.
	resetIDs  [32]uint32
	resetNext uint32

	enc    *hpack.Encoder
	encBuf bytes.Buffer
	dec    *hpack.Decoder
	fields []hpack.HeaderField
	req    Request // the request handed to Handler.Request, reused
	fsize  uint32  // decoded size of fields so far
	big    bool    // the fields passed MaxHeaderListSize

	wbuf []byte
	// flushHook, when set, is called instead of writing at once when a
	// Stream's write leaves frames to send (once until the next Flush):
	// the caller flushes when its event is handled, so that the frames of
	// several streams go in one write.
	flushHook func()
	hooked    bool
	// Err is the error code of the connection error that ended it
	// (ErrNo while it lives, or after a clean end).
	Err ErrCode
}

// ErrConnection is Feed's error once the connection ended in error: the
// caller sends what was written (GOAWAY) and closes.
var ErrConnection = errors.New("h2: connection error")

// NewConn starts the server side of a connection whose client preface is
// still to come: it writes the server's SETTINGS (RFC 9113 3.4).
func NewConn(out Output, h Handler, lim Limits) *Conn {
	c := newConn(out, lim)
	c.h, c.sh = h, h
	c.start(SettingMaxConcurrentStreams, c.lim.MaxConcurrentStreams)
	return c
}

// newConn is a connection of either side, its first frames unwritten.
func newConn(out Output, lim Limits) *Conn {
	c := &Conn{out: out, lim: lim.withDefaults(), streams: map[uint32]*Stream{},
		peerWindow: defaultWindow, peerMaxFrame: minMaxFrameSize, sendWindow: defaultWindow, recvWindow: defaultWindow}
	c.enc = hpack.NewEncoder(&c.encBuf)
	c.dec = hpack.NewDecoder(defaultTable, c.emit)
	c.dec.SetMaxStringLength(int(c.lim.MaxHeaderListSize))
	return c
}

// start writes the connection's first SETTINGS, with first (a side's
// own setting) and the window settings, and its WINDOW_UPDATE.
func (c *Conn) start(first uint16, v uint32) {
	p := c.wbuf
	p = appendFrameHeader(p, 3*settingLen, FrameSettings, 0, 0)
	for _, s := range [...]struct {
		id uint16
		v  uint32
	}{
		{first, v},
		{SettingInitialWindowSize, c.lim.StreamWindow},
		{SettingMaxHeaderListSize, c.lim.MaxHeaderListSize},
	} {
		p = appendU32(append(p, byte(s.id>>8), byte(s.id)), s.v)
	}
	if more := int64(c.lim.ConnWindow) - defaultWindow; more > 0 {
		p = appendU32(appendFrameHeader(p, windowUpdateLen, FrameWindowUpdate, 0, 0), uint32(more))
		c.recvWindow += more
	}
	c.wbuf = p
	c.Flush()
}

// Flush writes the frames built since the last Flush.
func (c *Conn) Flush() {
	c.hooked = false
	if len(c.wbuf) > 0 {
		c.out.Write(c.wbuf)
		c.wbuf = c.wbuf[:0]
	}
}

// SetFlushHook makes the Streams' writes call hook, the first time they
// leave frames unwritten after a Flush, instead of writing at once; the
// caller then calls Flush soon (at the end of its event). Feed and
// Shutdown still write at once.
func (c *Conn) SetFlushHook(hook func()) { c.flushHook = hook }

// flushSoon writes now, or has the hook write later.
func (c *Conn) flushSoon() {
	if c.flushHook == nil {
		c.Flush()
		return
	}
	if !c.hooked && len(c.wbuf) > 0 {
		c.hooked = true
		c.flushHook()
	}
}

// Done reports whether the connection has nothing more to do: it ended
// in error, or it is draining (Shutdown) with no stream left. A client's
// GOAWAY changes nothing here (7: no special behaviour): the client
// closes when it is done.
func (c *Conn) Done() bool {
	return c.dead || c.draining && len(c.streams) == 0
}

// Streams is the number of streams in progress.
func (c *Conn) Streams() int { return len(c.streams) }

// EachBlocked calls fn for each stream whose response waits for the
// client to open its window.
func (c *Conn) EachBlocked(fn func(s *Stream)) {
	for _, s := range append([]*Stream(nil), c.blocked...) { // fn may reset one
		fn(s)
	}
}

// Blocked reports whether a stream's response waits for the client to
// open its window.
func (c *Conn) Blocked() bool { return len(c.blocked) > 0 }

// Shutdown starts a graceful end (RFC 9113 6.8): GOAWAY with the last
// stream the server will answer; streams in progress finish, new ones
// are refused. Done reports the end.
func (c *Conn) Shutdown() {
	if c.draining || c.dead {
		return
	}
	c.draining = true
	c.goAway(ErrNo)
	c.Flush()
}

// Feed reads frames from data, what the client sent, and returns the
// bytes used: whole frames only, the rest is to be given again with more.
// After a connection error it returns ErrConnection: the GOAWAY is
// written, and the caller closes once it is sent.
func (c *Conn) Feed(data []byte) (int, error) {
	used := 0
	defer c.Flush()
	if c.dead {
		return len(data), ErrConnection
	}
	if !c.preface {
		n := min(len(data), len(Preface))
		if string(data[:n]) != Preface[:n] {
			c.fail(ErrProtocol)
			return len(data), ErrConnection
		}
		if n < len(Preface) {
			return 0, nil
		}
		c.preface = true
		used = len(Preface)
	}
	for !c.dead {
		rest := data[used:]
		if len(rest) < frameHeaderLen {
			break
		}
		fh := parseFrameHeader(rest)
		if fh.Length > minMaxFrameSize {
			// Our SETTINGS_MAX_FRAME_SIZE is the default.
			c.fail(ErrFrameSize)
			break
		}
		if len(rest) < frameHeaderLen+int(fh.Length) {
			break
		}
		used += frameHeaderLen + int(fh.Length)
		c.frame(fh, rest[frameHeaderLen:frameHeaderLen+int(fh.Length)])
	}
	if c.dead {
		return len(data), ErrConnection
	}
	return used, nil
}

// frame handles one frame.
func (c *Conn) frame(fh FrameHeader, p []byte) {
	if !c.settled {
		if fh.Type != FrameSettings || fh.Has(FlagAck) {
			c.fail(ErrProtocol) // the preface's SETTINGS first (3.4)
			return
		}
		c.settled = true
	}
	if c.inHeaders && (fh.Type != FrameContinuation || fh.StreamID != c.hdrStream) {
		c.fail(ErrProtocol) // a header block is one piece (4.3)
		return
	}
	switch fh.Type {
	case FrameData:
		c.data(fh, p)
	case FrameHeaders:
		c.headers(fh, p)
	case FramePriority:
		c.priority(fh, p)
	case FrameRSTStream:
		c.rstStream(fh, p)
	case FrameSettings:
		c.settings(fh, p)
	case FramePushPromise:
		c.fail(ErrProtocol) // a client does not push (8.4)
	case FramePing:
		c.ping(fh, p)
	case FrameGoAway:
		if fh.StreamID != 0 {
			c.fail(ErrProtocol)
			return
		}
		if len(p) < goAwayMinLen {
			c.fail(ErrFrameSize)
			return
		}
		c.peerGone = true
		if c.client {
			c.refuseAfter(uint32(p[0])&0x7f<<24 | uint32(p[1])<<16 | uint32(p[2])<<8 | uint32(p[3]))
		}
	case FrameWindowUpdate:
		c.windowUpdate(fh, p)
	case FrameContinuation:
		if !c.inHeaders {
			c.fail(ErrProtocol)
			return
		}
		c.continuation(fh, p)
	default:
		// Unknown types are ignored (4.1, 5.5).
	}
}

// fail ends the connection with code: GOAWAY, then nothing more is read
// (5.4.1). Streams in progress are told.
func (c *Conn) fail(code ErrCode) {
	if c.dead {
		return
	}
	c.goAway(code)
	c.dead, c.Err = true, code
	c.active = 0
	for id, s := range c.streams {
		delete(c.streams, id)
		s.closed, s.pend = true, nil
		if !s.done {
			s.done = true
			c.sh.Closed(s, code)
		}
	}
	c.blocked = c.blocked[:0]
}

// goAway writes GOAWAY with the last stream the client opened.
func (c *Conn) goAway(code ErrCode) {
	c.wbuf = appendFrameHeader(c.wbuf, goAwayMinLen, FrameGoAway, 0, 0)
	c.wbuf = appendU32(appendU32(c.wbuf, c.lastID), uint32(code))
}

// flooded reports whether the client lets the server's answers pile up
// past MaxOutput while asking for more of them; the connection is then
// ended (ENHANCE_YOUR_CALM).
func (c *Conn) flooded() bool {
	if c.out.Buffered()+len(c.wbuf) > c.lim.MaxOutput {
		c.fail(ErrEnhanceYourCalm)
		return true
	}
	return false
}

// ping answers a PING (6.7).
func (c *Conn) ping(fh FrameHeader, p []byte) {
	switch {
	case fh.StreamID != 0:
		c.fail(ErrProtocol)
	case len(p) != pingLen:
		c.fail(ErrFrameSize)
	case fh.Has(FlagAck):
		// An answer to a PING the server did not send: ignored.
	case !c.flooded():
		c.wbuf = append(appendFrameHeader(c.wbuf, pingLen, FramePing, FlagAck, 0), p...)
	}
}

// settings applies the client's SETTINGS and acknowledges them (6.5).
func (c *Conn) settings(fh FrameHeader, p []byte) {
	switch {
	case fh.StreamID != 0:
		c.fail(ErrProtocol)
		return
	case fh.Has(FlagAck):
		if len(p) != 0 {
			c.fail(ErrFrameSize)
		}
		return
	case len(p)%settingLen != 0:
		c.fail(ErrFrameSize)
		return
	case c.flooded():
		return
	}
	for ; len(p) > 0; p = p[settingLen:] {
		id, v := uint16(p[0])<<8|uint16(p[1]), uint32(p[2])<<24|uint32(p[3])<<16|uint32(p[4])<<8|uint32(p[5])
		switch id {
		case SettingHeaderTableSize:
			c.enc.SetMaxDynamicTableSizeLimit(min(v, defaultTable))
		case SettingEnablePush:
			if v > 1 || c.client && v != 0 {
				c.fail(ErrProtocol)
				return
			}
		case SettingInitialWindowSize:
			if v > maxWindow {
				c.fail(ErrFlowControl)
				return
			}
			delta := int64(v) - c.peerWindow
			c.peerWindow = int64(v)
			for _, s := range c.streams {
				if s.sendWindow += delta; s.sendWindow > maxWindow {
					c.fail(ErrFlowControl)
					return
				}
			}
		case SettingMaxFrameSize:
			if v < minMaxFrameSize || v > maxMaxFrameSize {
				c.fail(ErrProtocol)
				return
			}
			c.peerMaxFrame = int(v)
		case SettingMaxConcurrentStreams:
			if c.client {
				c.peerMaxStreams = v
			}
		}
	}
	c.wbuf = appendFrameHeader(c.wbuf, 0, FrameSettings, FlagAck, 0)
	c.sendBlocked() // a larger window lets waiting data go
}

// windowUpdate widens a send window (6.9).
func (c *Conn) windowUpdate(fh FrameHeader, p []byte) {
	if len(p) != windowUpdateLen {
		c.fail(ErrFrameSize)
		return
	}
	inc := int64(uint32(p[0])<<24|uint32(p[1])<<16|uint32(p[2])<<8|uint32(p[3])) & streamIDMask
	if fh.StreamID == 0 {
		if inc == 0 {
			c.fail(ErrProtocol)
			return
		}
		if c.sendWindow += inc; c.sendWindow > maxWindow {
			c.fail(ErrFlowControl)
			return
		}
		c.sendBlocked()
		return
	}
	s := c.streams[fh.StreamID]
	if s == nil {
		if c.idle(fh.StreamID) {
			c.fail(ErrProtocol) // an idle stream (5.1)
		}
		return // a closed one: frames in flight are ignored
	}
	if inc == 0 {
		c.fault(s.id, ErrProtocol)
		return
	}
	if s.sendWindow += inc; s.sendWindow > maxWindow {
		c.fault(s.id, ErrFlowControl)
		return
	}
	s.send()
}

// priority checks a PRIORITY frame; plb does not prioritise (RFC 9113
// deprecates the scheme, 5.3.2).
func (c *Conn) priority(fh FrameHeader, p []byte) {
	if fh.StreamID == 0 {
		c.fail(ErrProtocol)
		return
	}
	if len(p) != priorityLen {
		c.fault(fh.StreamID, ErrFrameSize)
		return
	}
	if dep := uint32(p[0])<<24&0x7f000000 | uint32(p[1])<<16 | uint32(p[2])<<8 | uint32(p[3]); dep == fh.StreamID {
		c.fault(fh.StreamID, ErrProtocol) // a stream depending on itself (5.3.1)
	}
}

// rstStream ends a stream at the client's word (6.4).
func (c *Conn) rstStream(fh FrameHeader, p []byte) {
	switch {
	case fh.StreamID == 0:
		c.fail(ErrProtocol)
		return
	case len(p) != rstLen:
		c.fail(ErrFrameSize)
		return
	}
	s := c.streams[fh.StreamID]
	if s == nil {
		if c.idle(fh.StreamID) {
			c.fail(ErrProtocol) // an idle stream
		}
		// Reset by both sides now: what the client sends on it from
		// here on is its error, no longer frames in flight.
		c.unmarkReset(fh.StreamID)
		return
	}
	code := ErrCode(uint32(p[0])<<24 | uint32(p[1])<<16 | uint32(p[2])<<8 | uint32(p[3]))
	c.forget(s)
	if !s.done {
		s.done = true
		c.sh.Closed(s, code)
		c.countLost()
	}
}

// countLost counts a stream ended before its response, by the client's
// RST_STREAM or by the server's for the client's error: past MaxResets,
// and half of the requests that reached the handler, the connection ends
// (ENHANCE_YOUR_CALM). Rapid reset (CVE-2023-44487) resets streams
// itself; MadeYouReset (CVE-2025-8671) makes the server reset them with
// frames it must refuse: both make the server start work and drop it, and
// free a slot under MaxConcurrentStreams at once.
func (c *Conn) countLost() {
	if c.client {
		return // a server resets what it must (a deadline, say): no attack on plb
	}
	c.lost++
	if c.lost > c.lim.MaxResets && c.lost > c.opened/2 {
		c.fail(ErrEnhanceYourCalm)
	}
}

// fault resets stream id for the client's error (5.4.2) and counts it
// (countLost).
func (c *Conn) fault(id uint32, code ErrCode) {
	c.streamError(id, code)
	c.countLost()
}

// streamError resets stream id, known or not, with code (5.4.2).
func (c *Conn) streamError(id uint32, code ErrCode) {
	if s := c.streams[id]; s != nil {
		c.resetStream(s, code)
		return
	}
	c.writeRST(id, code)
}

// resetStream ends s with code: RST_STREAM, and the handler is told.
func (c *Conn) resetStream(s *Stream, code ErrCode) {
	c.writeRST(s.id, code)
	c.forget(s)
	if !s.done {
		s.done = true
		c.sh.Closed(s, code)
	}
}

// writeRST writes RST_STREAM, unless the client lets the server's
// output pile up (flooded ends the connection), and remembers the stream
// as reset by the server (wasReset).
func (c *Conn) writeRST(id uint32, code ErrCode) {
	if c.dead || c.flooded() {
		return
	}
	c.wbuf = appendU32(appendFrameHeader(c.wbuf, rstLen, FrameRSTStream, 0, id), uint32(code))
	c.resetIDs[c.resetNext%uint32(len(c.resetIDs))] = id
	c.resetNext++
}

// unmarkReset forgets that the server reset stream id.
func (c *Conn) unmarkReset(id uint32) {
	for i, r := range c.resetIDs {
		if r == id {
			c.resetIDs[i] = 0
		}
	}
}

// wasReset reports whether the server reset stream id lately: frames the
// client sent before it learnt are then ignored, not a connection error
// (5.1, closed).
func (c *Conn) wasReset(id uint32) bool {
	for _, r := range c.resetIDs {
		if r == id {
			return true
		}
	}
	return false
}

// forget drops s from the connection: it is closed.
func (c *Conn) forget(s *Stream) {
	if c.streams[s.id] != s {
		return
	}
	delete(c.streams, s.id)
	c.active--
	s.pend, s.closed = nil, true
	if s.queued {
		for i, b := range c.blocked {
			if b == s {
				c.blocked = append(c.blocked[:i], c.blocked[i+1:]...)
				break
			}
		}
		s.queued = false
	}
}

// sendBlocked sends what streams waiting for window may send now.
func (c *Conn) sendBlocked() {
	for i := 0; i < len(c.blocked) && c.sendWindow > 0; {
		s := c.blocked[i]
		s.queued = false
		c.blocked = append(c.blocked[:i], c.blocked[i+1:]...)
		s.send()
		if s.queued {
			i++ // still waiting (its own window)
		}
	}
}

// stripPadding removes the padding of a PADDED frame's payload; ok false
// is a PROTOCOL_ERROR (6.1).
func stripPadding(fh FrameHeader, p []byte) ([]byte, bool) {
	if !fh.Has(FlagPadded) {
		return p, true
	}
	if len(p) < 1 || int(p[0]) > len(p)-1 {
		return nil, false
	}
	return p[1 : len(p)-int(p[0])], true
}

// idle reports whether stream id was never opened (5.1): above the last
// the client opened, or, on the client side, not yet opened.
func (c *Conn) idle(id uint32) bool {
	if c.client {
		return id >= c.nextID
	}
	return id > c.lastID
}
