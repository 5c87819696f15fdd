package h2

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/net/http2/hpack"
)

// memOut is an Output that keeps what is written, and claims a backlog
// of backlog unsent bytes (a client that does not read).
type memOut struct {
	buf     []byte
	backlog int
}

func (o *memOut) Write(p []byte) error { o.buf = append(o.buf, p...); return nil }
func (o *memOut) Buffered() int        { return o.backlog }

// frames parses what was written so far and forgets it.
func (o *memOut) frames(t *testing.T) []testFrame {
	t.Helper()
	var out []testFrame
	b := o.buf
	for len(b) >= frameHeaderLen {
		fh := parseFrameHeader(b)
		if len(b) < frameHeaderLen+int(fh.Length) {
			t.Fatalf("a partial frame written: %v", fh)
		}
		out = append(out, testFrame{fh, append([]byte(nil), b[frameHeaderLen:frameHeaderLen+int(fh.Length)]...)})
		b = b[frameHeaderLen+int(fh.Length):]
	}
	if len(b) > 0 {
		t.Fatalf("%d stray bytes written", len(b))
	}
	o.buf = o.buf[:0]
	return out
}

type testFrame struct {
	FrameHeader
	p []byte
}

// goAway is the error code of the GOAWAY among fs, or -1.
func goAway(fs []testFrame) int {
	for _, f := range fs {
		if f.Type == FrameGoAway {
			return int(uint32(f.p[4])<<24 | uint32(f.p[5])<<16 | uint32(f.p[6])<<8 | uint32(f.p[7]))
		}
	}
	return -1
}

// client builds a client's bytes.
type client struct {
	b   []byte
	enc *hpack.Encoder
	eb  bytes.Buffer
}

func newClient() *client {
	c := &client{}
	c.enc = hpack.NewEncoder(&c.eb)
	c.b = append(c.b, Preface...)
	c.b = appendFrameHeader(c.b, 0, FrameSettings, 0, 0)
	return c
}

func (c *client) frame(t FrameType, flags uint8, id uint32, p []byte) *client {
	c.b = append(appendFrameHeader(c.b, len(p), t, flags, id), p...)
	return c
}

// block is a header block of a GET of path, plus fields ("name", "value"
// pairs).
func (c *client) block(path string, fields ...string) []byte {
	c.eb.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "t"}, {":path", path}} {
		c.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	for i := 0; i+1 < len(fields); i += 2 {
		c.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return append([]byte(nil), c.eb.Bytes()...)
}

// feed gives the client's bytes to a new Conn and returns it with what
// it wrote (its SETTINGS first).
func feed(t *testing.T, h Handler, lim Limits, out *memOut, b []byte) (*Conn, []testFrame, error) {
	t.Helper()
	c := NewConn(out, h, lim)
	n, err := c.Feed(b)
	if err == nil && n != len(b) {
		t.Fatalf("Feed used %d of %d bytes", n, len(b))
	}
	return c, out.frames(t), err
}

// counting counts the handler's calls.
type counting struct {
	echo
	requests, closed int
}

func (h *counting) Request(s *Stream, r *Request, end bool) { h.requests++ }
func (h *counting) Closed(*Stream, ErrCode)                 { h.closed++ }

// TestRapidReset (CVE-2023-44487): a client that opens streams and
// resets each at once ends its connection (GOAWAY ENHANCE_YOUR_CALM)
// after MaxResets, holding no stream; one that resets a few of many
// keeps it.
func TestRapidReset(t *testing.T) {
	cl := newClient()
	rst := appendU32(nil, uint32(ErrCancel))
	for i := range 1000 {
		id := uint32(2*i + 1)
		cl.frame(FrameHeaders, FlagEndHeaders, id, cl.block("/")).frame(FrameRSTStream, 0, id, rst)
	}
	h := &counting{}
	c, fs, err := feed(t, h, Limits{}, &memOut{}, cl.b)
	if err != ErrConnection || goAway(fs) != int(ErrEnhanceYourCalm) {
		t.Fatalf("1,000 streams reset at once: %v, GOAWAY %d", err, goAway(fs))
	}
	if h.requests > DefaultLimits().MaxResets+2 || c.Streams() != 0 {
		t.Fatalf("%d requests reached the handler, %d streams held", h.requests, c.Streams())
	}

	cl = newClient()
	for i := range 1000 {
		id := uint32(2*i + 1)
		cl.frame(FrameHeaders, FlagEndHeaders|FlagEndStream, id, cl.block("/"))
		if i%10 == 0 {
			cl.frame(FrameRSTStream, 0, id, rst) // after its answer: not counted
		}
	}
	if _, fs, err := feed(t, echo{}, Limits{}, &memOut{}, cl.b); err != nil || goAway(fs) >= 0 {
		t.Fatalf("1,000 requests, a tenth reset after their answer: %v, GOAWAY %d", err, goAway(fs))
	}
}

// TestContinuationFlood (CVE-2024-27316): a header block that never ends
// ends the connection once it passes twice MaxHeaderListSize, and holds
// no more than that.
func TestContinuationFlood(t *testing.T) {
	cl := newClient()
	junk := bytes.Repeat([]byte{0x40, 0x01, 'a', 0x01, 'b'}, 3000) // 15 KB of literal fields
	cl.frame(FrameHeaders, 0, 1, cl.block("/"))
	for range 100 {
		cl.frame(FrameContinuation, 0, 1, junk)
	}
	c, fs, err := feed(t, &counting{}, Limits{MaxHeaderListSize: 16 << 10}, &memOut{}, cl.b)
	if err != ErrConnection || goAway(fs) != int(ErrEnhanceYourCalm) {
		t.Fatalf("1.5 MB of CONTINUATION: %v, GOAWAY %d", err, goAway(fs))
	}
	if cap(c.hdrBuf) > 2*(32<<10) {
		t.Fatalf("the header block buffer grew to %d bytes", cap(c.hdrBuf))
	}
}

// TestHPACKBomb: a small block that decodes to megabytes (one large
// field in the dynamic table, referenced again and again) is answered
// 431 with the decoded fields bounded; the connection goes on.
func TestHPACKBomb(t *testing.T) {
	cl := newClient()
	cl.eb.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "t"}, {":path", "/"}} {
		cl.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	cl.enc.WriteField(hpack.HeaderField{Name: "x-big", Value: strings.Repeat("b", 3000)})
	block := append([]byte(nil), cl.eb.Bytes()...)
	idx := byte(0x80 | 62) // the dynamic table's newest entry, indexed
	block = append(block, bytes.Repeat([]byte{idx}, 4000)...)
	cl.frame(FrameHeaders, FlagEndHeaders|FlagEndStream, 1, block)
	cl.frame(FrameHeaders, FlagEndHeaders|FlagEndStream, 3, cl.block("/after"))
	h := &counting{}
	c, fs, err := feed(t, h, Limits{}, &memOut{}, cl.b)
	if err != nil {
		t.Fatal(err)
	}
	if cap(c.fields) > 64 {
		t.Fatalf("%d decoded fields kept", cap(c.fields))
	}
	dec := hpack.NewDecoder(4096, nil)
	var status []string
	for _, f := range fs {
		if f.Type == FrameHeaders {
			hf, err := dec.DecodeFull(f.p)
			if err != nil {
				t.Fatal(err)
			}
			status = append(status, hf[0].Value)
		}
	}
	if len(status) != 1 || status[0] != "431" || h.requests != 1 {
		t.Fatalf("answers %v, %d requests to the handler (want 431, then the next request)", status, h.requests)
	}
}

// TestControlFloods: PING and SETTINGS from a client that does not read
// the answers (MaxOutput bytes unsent) end the connection.
func TestControlFloods(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame func(*client)
	}{
		{"ping", func(c *client) { c.frame(FramePing, 0, 0, []byte("12345678")) }},
		{"settings", func(c *client) { c.frame(FrameSettings, 0, 0, nil) }},
	} {
		cl := newClient()
		for range 10 {
			tc.frame(cl)
		}
		if _, _, err := feed(t, echo{}, Limits{}, &memOut{}, cl.b); err != nil {
			t.Fatalf("%s: a reading client's frames: %v", tc.name, err)
		}
		_, fs, err := feed(t, echo{}, Limits{}, &memOut{backlog: 2 << 20}, cl.b)
		if err != ErrConnection || goAway(fs) != int(ErrEnhanceYourCalm) {
			t.Fatalf("%s from a client 2 MB behind: %v, GOAWAY %d", tc.name, err, goAway(fs))
		}
	}
}

// TestConcurrencyLimit: streams past MaxConcurrentStreams are refused
// (REFUSED_STREAM) and never reach the handler; once one ends, a new one
// is taken.
func TestConcurrencyLimit(t *testing.T) {
	cl := newClient()
	for i := range 5 {
		cl.frame(FrameHeaders, FlagEndHeaders, uint32(2*i+1), cl.block("/")) // bodies to come
	}
	h := &counting{}
	out := &memOut{}
	c, fs, err := feed(t, h, Limits{MaxConcurrentStreams: 3}, out, cl.b)
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, f := range fs {
		if f.Type == FrameRSTStream && ErrCode(uint32(f.p[3])) == ErrRefusedStream {
			refused++
		}
	}
	if h.requests != 3 || refused != 2 || c.Streams() != 3 {
		t.Fatalf("%d requests, %d refused, %d streams", h.requests, refused, c.Streams())
	}
	c.streams[1].Reset(ErrCancel)
	next := newClient()
	next.b = nil
	next.frame(FrameHeaders, FlagEndHeaders, 11, cl.block("/"))
	if _, err := c.Feed(next.b); err != nil || h.requests != 4 {
		t.Fatalf("after a stream ended: %v, %d requests", err, h.requests)
	}
}

// TestFlowControlWaits: a response larger than the client's window waits
// for WINDOW_UPDATE, and goes whole once it comes.
func TestFlowControlWaits(t *testing.T) {
	cl := newClient()
	cl.b = cl.b[:len(Preface)]
	cl.frame(FrameSettings, 0, 0, []byte{0, SettingInitialWindowSize, 0, 0, 0, 10})
	cl.frame(FrameHeaders, FlagEndHeaders|FlagEndStream, 1, cl.block("/", "x-size", "100"))
	out := &memOut{}
	c, fs, err := feed(t, echo{}, Limits{}, out, cl.b)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, f := range fs {
		if f.Type == FrameData {
			got += len(f.p)
		}
	}
	if got != 10 || c.streams[1] == nil || c.streams[1].Pending() != 90 {
		t.Fatalf("window 10: %d bytes sent, stream %v", got, c.streams[1])
	}
	if _, err := c.Feed(appendU32(appendFrameHeader(nil, 4, FrameWindowUpdate, 0, 1), 1000)); err != nil {
		t.Fatal(err)
	}
	end := false
	for _, f := range out.frames(t) {
		if f.Type == FrameData {
			got += len(f.p)
			end = f.Has(FlagEndStream)
		}
	}
	if got != 100 || !end || c.Streams() != 0 {
		t.Fatalf("after WINDOW_UPDATE: %d bytes, end %v, %d streams", got, end, c.Streams())
	}
}

// TestMadeYouReset (CVE-2025-8671): streams the server must reset for
// the client's error (a WINDOW_UPDATE of 0 here) count as resets, and
// malformed streams do not count as requests that would excuse them:
// the connection ends (ENHANCE_YOUR_CALM) either way.
func TestMadeYouReset(t *testing.T) {
	cl := newClient()
	for i := range 5000 {
		id := uint32(2*i + 1)
		cl.frame(FrameHeaders, FlagEndHeaders, id, cl.block("/")).frame(FrameWindowUpdate, 0, id, appendU32(nil, 0))
	}
	if _, fs, err := feed(t, &counting{}, Limits{}, &memOut{}, cl.b); err != ErrConnection || goAway(fs) != int(ErrEnhanceYourCalm) {
		t.Fatalf("5,000 streams reset for WINDOW_UPDATE 0: %v, GOAWAY %d", err, goAway(fs))
	}
	cl = newClient()
	rst := appendU32(nil, uint32(ErrCancel))
	for i := range 2500 {
		bad, good := uint32(4*i+1), uint32(4*i+3)
		cl.eb.Reset()
		cl.enc.WriteField(hpack.HeaderField{Name: ":method", Value: "GET"}) // no :path: malformed
		cl.frame(FrameHeaders, FlagEndHeaders|FlagEndStream, bad, append([]byte(nil), cl.eb.Bytes()...))
		cl.frame(FrameHeaders, FlagEndHeaders, good, cl.block("/")).frame(FrameRSTStream, 0, good, rst)
	}
	if _, fs, err := feed(t, &counting{}, Limits{}, &memOut{}, cl.b); err != ErrConnection || goAway(fs) != int(ErrEnhanceYourCalm) {
		t.Fatalf("resets between malformed streams: %v, GOAWAY %d", err, goAway(fs))
	}
}

// TestRSTFlood: frames that make the server answer RST_STREAM (DATA on
// closed streams here) from a client that does not read end the
// connection as PINGs do.
func TestRSTFlood(t *testing.T) {
	cl := newClient()
	cl.frame(FrameHeaders, FlagEndHeaders|FlagEndStream, 1, cl.block("/"))
	for range 1000 {
		cl.frame(FrameData, 0, 1, []byte("x"))
	}
	if _, fs, err := feed(t, echo{}, Limits{}, &memOut{backlog: 2 << 20}, cl.b); err != ErrConnection || goAway(fs) != int(ErrEnhanceYourCalm) {
		t.Fatalf("RST_STREAM answers to a client 2 MB behind: %v, GOAWAY %d", err, goAway(fs))
	}
}

// TestFramesAfterServerReset: trailers (HEADERS) the client sends on a
// stream the server refused are dropped, not a connection error (RFC
// 9113 5.1, closed); once the client reset the stream too, they are.
func TestFramesAfterServerReset(t *testing.T) {
	cl := newClient()
	cl.frame(FrameHeaders, FlagEndHeaders, 1, cl.block("/"))
	cl.frame(FrameHeaders, FlagEndHeaders, 3, cl.block("/refused")) // over the limit of 1
	cl.eb.Reset()
	cl.enc.WriteField(hpack.HeaderField{Name: "x-trailer", Value: "t"})
	cl.frame(FrameHeaders, FlagEndHeaders|FlagEndStream, 3, append([]byte(nil), cl.eb.Bytes()...))
	c, fs, err := feed(t, &counting{}, Limits{MaxConcurrentStreams: 1}, &memOut{}, cl.b)
	if err != nil || goAway(fs) >= 0 || c.Streams() != 1 {
		t.Fatalf("trailers on a refused stream: %v, GOAWAY %d, %d streams", err, goAway(fs), c.Streams())
	}
	more := &client{enc: cl.enc}
	more.frame(FrameRSTStream, 0, 3, appendU32(nil, uint32(ErrCancel)))
	more.eb = cl.eb
	more.frame(FrameHeaders, FlagEndHeaders|FlagEndStream, 3, append([]byte(nil), cl.eb.Bytes()...))
	if _, err := c.Feed(more.b); err != ErrConnection || c.Err != ErrStreamClosed {
		t.Fatalf("HEADERS after both sides reset: %v, %v", err, c.Err)
	}
}

// TestRequestTargets: :path is an absolute path, or * for OPTIONS; the
// absolute form (whose authority would replace :authority in the
// HTTP/1.1 request a role reads), a bare word, a space or an 8-bit byte
// in it, an authority with a path or a space, a method that is not a
// token and a signed content-length are malformed (RST_STREAM
// PROTOCOL_ERROR); the others reach the handler.
func TestRequestTargets(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		extra        []string
		ok           bool
		auth         string
	}{
		{"GET", "/", nil, false, "evil.example/x"},
		{"GET", "/", nil, false, "a b"},
		{"GET", "/", nil, true, "[::1]:8443"},
		{"GET", "/a?b", nil, true, ""},
		{"OPTIONS", "*", nil, true, ""},
		{"GET", "*", nil, false, ""},
		{"GET", "http://evil.example/admin", nil, false, ""},
		{"GET", "a", nil, false, ""},
		{"GE T", "/", nil, false, ""},
		{"POST", "/", []string{"content-length", "+5"}, false, ""},
		{"GET", "/a HTTP/1.0", nil, false, ""},
		{"GET", "/caf\xc3\xa9", nil, false, ""},
	} {
		cl := newClient()
		cl.eb.Reset()
		auth := tc.auth
		if auth == "" {
			auth = "good.example"
		}
		for _, f := range [][2]string{{":method", tc.method}, {":scheme", "http"}, {":authority", auth}, {":path", tc.path}} {
			cl.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		for i := 0; i+1 < len(tc.extra); i += 2 {
			cl.enc.WriteField(hpack.HeaderField{Name: tc.extra[i], Value: tc.extra[i+1]})
		}
		cl.frame(FrameHeaders, FlagEndHeaders|FlagEndStream, 1, append([]byte(nil), cl.eb.Bytes()...))
		h := &counting{}
		if _, _, err := feed(t, h, Limits{}, &memOut{}, cl.b); err != nil {
			t.Fatal(err)
		}
		if (h.requests == 1) != tc.ok {
			t.Errorf("%s %s %v: reached the handler %v, want %v", tc.method, tc.path, tc.extra, h.requests == 1, tc.ok)
		}
	}
}
