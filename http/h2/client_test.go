package h2

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/http2/hpack"
)

// server builds a server's bytes for a client Conn.
type server struct {
	b   []byte
	enc *hpack.Encoder
	eb  bytes.Buffer
}

// newServer starts with the server's SETTINGS (settings: id, value
// pairs).
func newServer(settings ...uint32) *server {
	s := &server{}
	s.enc = hpack.NewEncoder(&s.eb)
	s.b = appendFrameHeader(s.b, len(settings)/2*settingLen, FrameSettings, 0, 0)
	for i := 0; i+1 < len(settings); i += 2 {
		s.b = appendU32(append(s.b, byte(settings[i]>>8), byte(settings[i])), settings[i+1])
	}
	return s
}

func (s *server) frame(t FrameType, flags uint8, id uint32, p []byte) *server {
	s.b = append(appendFrameHeader(s.b, len(p), t, flags, id), p...)
	return s
}

// block is a header block: fields as name, value pairs.
func (s *server) block(fields ...string) []byte {
	s.eb.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		s.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return append([]byte(nil), s.eb.Bytes()...)
}

// recorder is a ClientHandler that writes down what it hears.
type recorder struct {
	log []string
}

func (r *recorder) Response(s *Stream, status int, fields []hpack.HeaderField, end bool) {
	var b strings.Builder
	for _, f := range fields {
		b.WriteString(" " + f.Name + "=" + f.Value)
	}
	r.log = append(r.log, "resp "+itoa(int(s.ID()))+" "+itoa(status)+b.String()+endMark(end))
}

func (r *recorder) Data(s *Stream, p []byte, end bool) {
	e := "data " + itoa(int(s.ID())) + " " + string(p)
	for _, f := range s.Trailers {
		e += " " + f.Name + "=" + f.Value
	}
	r.log = append(r.log, e+endMark(end))
	s.Consumed(len(p))
}

func (r *recorder) Closed(s *Stream, code ErrCode) {
	r.log = append(r.log, "closed "+itoa(int(s.ID()))+" "+code.String())
}

func itoa(n int) string { return strconv.Itoa(n) }

func endMark(end bool) string {
	if end {
		return " END"
	}
	return ""
}

func get(path string) []hpack.HeaderField {
	return []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: "t"}, {Name: ":path", Value: path}}
}

// TestClientExchange: the client's preface and SETTINGS (no push), a
// request with a body on one stream and one without on the next, their
// responses (an interim head, a body, trailers) heard in order, and the
// streams closed once both sides ended.
func TestClientExchange(t *testing.T) {
	out := &memOut{}
	r := &recorder{}
	c := NewClientConn(out, r, Limits{})
	if !bytes.HasPrefix(out.buf, []byte(Preface)) {
		t.Fatal("no preface")
	}
	out.buf = out.buf[len(Preface):]
	fs := out.frames(t)
	if fs[0].Type != FrameSettings || !bytes.Contains(fs[0].p, []byte{0, SettingEnablePush, 0, 0, 0, 0}) {
		t.Fatalf("first frames %v", fs)
	}
	s1 := c.Open(append(get("/post"), hpack.HeaderField{Name: "te", Value: "trailers"}), false)
	s1.WriteData([]byte("hello"), false)
	s1.WriteTrailers([]hpack.HeaderField{{Name: "x-check", Value: "1"}})
	s3 := c.Open(get("/get"), true)
	if s1.ID() != 1 || s3.ID() != 3 || c.Streams() != 2 {
		t.Fatalf("streams %d %d, %d open", s1.ID(), s3.ID(), c.Streams())
	}
	fs = out.frames(t)
	kinds := ""
	for _, f := range fs {
		kinds += f.Type.String() + " "
	}
	if kinds != "HEADERS DATA HEADERS HEADERS " || fs[2].Flags&FlagEndStream == 0 || fs[3].Flags&FlagEndStream == 0 {
		t.Fatalf("frames written: %s", kinds)
	}
	sv := newServer(SettingMaxConcurrentStreams, 10)
	sv.frame(FrameHeaders, FlagEndHeaders, 1, sv.block(":status", "103", "link", "</a>")).
		frame(FrameHeaders, FlagEndHeaders, 1, sv.block(":status", "200", "content-type", "x")).
		frame(FrameData, 0, 1, []byte("body")).
		frame(FrameHeaders, FlagEndHeaders|FlagEndStream, 1, sv.block("grpc-status", "0")).
		frame(FrameHeaders, FlagEndHeaders|FlagEndStream, 3, sv.block(":status", "204"))
	if n, err := c.Feed(sv.b); err != nil || n != len(sv.b) {
		t.Fatalf("Feed: %d of %d, %v", n, len(sv.b), err)
	}
	want := []string{"resp 1 103 link=</a>", "resp 1 200 content-type=x", "data 1 body", "data 1  grpc-status=0 END", "resp 3 204 END"}
	if strings.Join(r.log, "|") != strings.Join(want, "|") {
		t.Fatalf("heard %q\nwant  %q", r.log, want)
	}
	if c.Streams() != 0 || !s1.Closed() || !s3.Closed() {
		t.Fatalf("%d streams left", c.Streams())
	}
	if fs := out.frames(t); len(fs) == 0 || fs[0].Type != FrameSettings || fs[0].Flags&FlagAck == 0 {
		t.Fatalf("the server's SETTINGS not acknowledged: %v", fs)
	}
}

// TestClientLimits: the server's SETTINGS_MAX_CONCURRENT_STREAMS caps
// Open; GOAWAY refuses the streams above its last (REFUSED_STREAM, safe
// to send again) and lets those below finish; a server's reset and a
// malformed response end their stream only; a push, or ENABLE_PUSH from
// a server, ends the connection.
func TestClientLimits(t *testing.T) {
	out := &memOut{}
	r := &recorder{}
	c := NewClientConn(out, r, Limits{})
	sv := newServer(SettingMaxConcurrentStreams, 3)
	if _, err := c.Feed(sv.b); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if c.Open(get("/"), true) == nil {
			t.Fatal("refused under the limit")
		}
	}
	if c.CanOpen() || c.Open(get("/"), true) != nil {
		t.Fatal("a fourth stream past the server's limit of 3")
	}
	sv = &server{enc: sv.enc}
	sv.frame(FrameRSTStream, 0, 1, appendU32(nil, uint32(ErrCancel))).
		frame(FrameHeaders, FlagEndHeaders|FlagEndStream, 3, sv.block(":status", "200", "connection", "close")).
		frame(FrameGoAway, 0, 0, append(appendU32(nil, 3), 0, 0, 0, 0))
	if _, err := c.Feed(sv.b); err != nil {
		t.Fatal(err)
	}
	want := "closed 1 CANCEL|closed 3 PROTOCOL_ERROR|closed 5 REFUSED_STREAM"
	if got := strings.Join(r.log, "|"); got != want {
		t.Fatalf("heard %q, want %q", got, want)
	}
	if c.CanOpen() || !c.PeerGone() {
		t.Fatal("a stream may open after GOAWAY")
	}

	for _, bad := range []*server{
		newServer().frame(FramePushPromise, FlagEndHeaders, 1, append(appendU32(nil, 2), 0x82)),
		newServer(SettingEnablePush, 1),
		newServer().frame(FrameHeaders, FlagEndHeaders, 2, []byte{0x88}),
	} {
		c := NewClientConn(&memOut{}, &recorder{}, Limits{})
		c.Open(get("/"), true)
		if _, err := c.Feed(bad.b); err != ErrConnection {
			t.Errorf("%x: %v, want a connection error", bad.b, err)
		}
	}
}

// TestClientFlowControl: a request body goes no further than the
// server's windows let it, and the rest follows their WINDOW_UPDATE; the
// response body is given back as the handler consumes it.
func TestClientFlowControl(t *testing.T) {
	out := &memOut{}
	c := NewClientConn(out, &recorder{}, Limits{})
	out.buf = out.buf[:0]
	c.Feed(newServer(SettingInitialWindowSize, 10).b)
	s := c.Open(get("/up"), false)
	s.WriteData(bytes.Repeat([]byte("x"), 25), true)
	sent := 0
	for _, f := range out.frames(t) {
		if f.Type == FrameData {
			sent += len(f.p)
		}
	}
	if sent != 10 || s.Pending() != 15 {
		t.Fatalf("sent %d, pending %d; want 10 and 15", sent, s.Pending())
	}
	c.Feed(newServer().frame(FrameWindowUpdate, 0, 1, appendU32(nil, 100)).b[frameHeaderLen:])
	sent, end := 0, false
	for _, f := range out.frames(t) {
		if f.Type == FrameData {
			sent += len(f.p)
			end = end || f.Flags&FlagEndStream != 0
		}
	}
	if sent != 15 || !end || s.Pending() != 0 {
		t.Fatalf("after WINDOW_UPDATE: sent %d (end %v), pending %d", sent, end, s.Pending())
	}
}

// TestClientResponseAllocatesNothing: once a response head is in, its
// body's DATA frames (given back to the windows) cost no allocation.
func TestClientResponseAllocatesNothing(t *testing.T) {
	c := NewClientConn(discard{}, &consumer{}, Limits{})
	c.Open(get("/big"), true)
	sv := newServer()
	sv.frame(FrameHeaders, FlagEndHeaders, 1, sv.block(":status", "200"))
	if _, err := c.Feed(sv.b); err != nil {
		t.Fatal(err)
	}
	frame := append(appendFrameHeader(nil, 1000, FrameData, 0, 1), make([]byte, 1000)...)
	if a := testing.AllocsPerRun(1000, func() {
		if n, err := c.Feed(frame); err != nil || n != len(frame) {
			t.Fatalf("%d, %v", n, err)
		}
	}); a != 0 {
		t.Errorf("%v allocations per DATA frame", a)
	}
}

// consumer consumes response bodies and keeps nothing.
type consumer struct{}

func (consumer) Response(*Stream, int, []hpack.HeaderField, bool) {}
func (consumer) Data(s *Stream, p []byte, _ bool)                 { s.Consumed(len(p)) }
func (consumer) Closed(*Stream, ErrCode)                          {}

// FuzzClientFeed: any bytes from a server, given in two pieces, never
// make the client side panic, write a partial frame, or lose count of
// its streams; after a connection error it reads nothing more.
func FuzzClientFeed(f *testing.F) {
	sv := newServer(SettingMaxConcurrentStreams, 2)
	sv.frame(FrameHeaders, FlagEndHeaders, 1, sv.block(":status", "200", "content-length", "3")).
		frame(FrameData, FlagEndStream, 1, []byte("abc")).
		frame(FrameHeaders, FlagEndHeaders, 3, sv.block(":status", "200")).
		frame(FrameHeaders, FlagEndHeaders|FlagEndStream, 3, sv.block("grpc-status", "0")).
		frame(FrameGoAway, 0, 0, append(appendU32(nil, 1), 0, 0, 0, 0)).
		frame(FramePing, 0, 0, []byte("12345678"))
	f.Add(sv.b, 20)
	f.Add(newServer().frame(FrameRSTStream, 0, 3, []byte{0, 0, 0, 7}).b, 5)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		out := &memOut{}
		c := NewClientConn(out, consumer{}, Limits{MaxHeaderListSize: 4096})
		c.Open(get("/a"), true)
		s := c.Open(get("/b"), false)
		s.WriteData([]byte("body"), true)
		feedTwice(t, c, data, cut)
		out.buf = out.buf[len(Preface):]
		out.frames(t) // whole frames only
	})
}

// TestClientMalformedResponses: what a server may and may not send on a
// client's stream (RFC 9113 8.1, 8.1.1): a HEAD's or 304's length with no
// body passes; DATA before the final head, a length with END_STREAM on
// the head, trailers past MaxHeaderListSize and a flood of 1xx heads
// reset the stream, never reaching the handler as a body or as cut
// trailers.
func TestClientMalformedResponses(t *testing.T) {
	head := []hpack.HeaderField{{Name: ":method", Value: "HEAD"}, {Name: ":scheme", Value: "http"}, {Name: ":authority", Value: "t"}, {Name: ":path", Value: "/"}}
	flood := newServer()
	for range 9 {
		flood.frame(FrameHeaders, FlagEndHeaders, 1, flood.block(":status", "103"))
	}
	for _, c := range []struct {
		name string
		req  []hpack.HeaderField
		sv   func(sv *server) *server
		want string
	}{
		{"HEAD with a length", head, func(sv *server) *server {
			return sv.frame(FrameHeaders, FlagEndHeaders, 1, sv.block(":status", "200", "content-length", "10")).frame(FrameData, FlagEndStream, 1, nil)
		}, "resp 1 200 content-length=10|data 1  END"},
		{"304 with a length", get("/"), func(sv *server) *server {
			return sv.frame(FrameHeaders, FlagEndHeaders|FlagEndStream, 1, sv.block(":status", "304", "content-length", "10"))
		}, "resp 1 304 content-length=10 END"},
		{"DATA before the head", get("/"), func(sv *server) *server {
			return sv.frame(FrameHeaders, FlagEndHeaders, 1, sv.block(":status", "103")).frame(FrameData, 0, 1, []byte("HTTP/1.1 200 OK\r\n\r\n"))
		}, "resp 1 103|closed 1 PROTOCOL_ERROR"},
		{"a length and no body", get("/"), func(sv *server) *server {
			return sv.frame(FrameHeaders, FlagEndHeaders|FlagEndStream, 1, sv.block(":status", "200", "content-length", "10"))
		}, "closed 1 PROTOCOL_ERROR"},
		{"trailers too large", get("/"), func(sv *server) *server {
			return sv.frame(FrameHeaders, FlagEndHeaders, 1, sv.block(":status", "200")).
				frame(FrameHeaders, FlagEndHeaders|FlagEndStream, 1, sv.block("x-a", strings.Repeat("a", 40), "x-b", strings.Repeat("b", 40), "grpc-status", "13"))
		}, "resp 1 200|closed 1 PROTOCOL_ERROR"},
		{"a flood of 1xx", get("/"), func(*server) *server { return flood },
			strings.Repeat("resp 1 103|", 8) + "closed 1 PROTOCOL_ERROR"},
	} {
		r := &recorder{}
		cc := NewClientConn(&memOut{}, r, Limits{MaxHeaderListSize: 150})
		cc.Open(c.req, true)
		sv := newServer()
		if _, err := cc.Feed(c.sv(sv).b); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := strings.Join(r.log, "|"); got != c.want {
			t.Errorf("%s: heard %q, want %q", c.name, got, c.want)
		}
	}
}
