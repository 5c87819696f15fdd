package h2

import (
	"testing"
)

// discard is an Output that drops what is written.
type discard struct{}

func (discard) Write([]byte) error { return nil }
func (discard) Buffered() int      { return 0 }

// FuzzFeed: any bytes after the preface, given in two pieces, never make
// the codec panic, write a partial frame, or lose count of its streams;
// after a connection error it reads nothing more.
func FuzzFeed(f *testing.F) {
	cl := newClient()
	ok := cl.frame(FrameHeaders, FlagEndHeaders, 1, cl.block("/a", "content-length", "3")).
		frame(FrameData, FlagEndStream, 1, []byte("abc")).
		frame(FrameHeaders, FlagEndHeaders|FlagEndStream, 3, cl.block("/b")).
		frame(FramePing, 0, 0, []byte("12345678")).
		frame(FrameWindowUpdate, 0, 0, appendU32(nil, 1000)).b
	f.Add(ok[len(Preface):], 10)
	f.Add(newClient().frame(FrameHeaders, 0, 1, []byte{0x82}).frame(FrameContinuation, FlagEndHeaders, 1, []byte{0x84, 0x86}).b[len(Preface):], 3)
	f.Add(newClient().frame(FrameRSTStream, 0, 1, []byte{0, 0, 0, 8}).b[len(Preface):], 0)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		out := &memOut{}
		c := NewConn(out, echo{}, Limits{MaxConcurrentStreams: 4, MaxHeaderListSize: 4096})
		feedTwice(t, c, append([]byte(Preface), data...), cut)
		out.frames(t) // whole frames only
	})
}

// feedTwice gives c in, cut in two at cut, and checks what holds after
// any input: Feed uses no more than it got, a connection error leaves it
// dead and reading nothing more, and it counts its streams right.
func feedTwice(t *testing.T, c *Conn, in []byte, cut int) {
	t.Helper()
	cut = min(max(cut, 0), len(in))
	n, err := c.Feed(in[:cut])
	rest := append(in[n:cut:cut], in[cut:]...)
	if err == nil {
		m, err2 := c.Feed(rest)
		if err2 == nil && m > len(rest) {
			t.Fatalf("Feed used %d of %d", m, len(rest))
		}
		err = err2
	}
	if err != nil {
		if !c.dead {
			t.Fatalf("error %v on a live connection", err)
		}
		if _, again := c.Feed([]byte("more")); again != ErrConnection {
			t.Fatal("a dead connection read on")
		}
	}
	if c.active != len(c.streams) {
		t.Fatalf("%d active, %d streams", c.active, len(c.streams))
	}
}

// TestBodyPathAllocatesNothing: once a stream is open, its request body
// (DATA frames, the window given back) and PINGs cost no allocation.
func TestBodyPathAllocatesNothing(t *testing.T) {
	cl := newClient()
	cl.frame(FrameHeaders, FlagEndHeaders, 1, cl.block("/upload"))
	c := NewConn(discard{}, echo{}, Limits{})
	if _, err := c.Feed(cl.b); err != nil || c.Streams() != 1 {
		t.Fatalf("%v, %d streams", err, c.Streams())
	}
	frames := appendFrameHeader(nil, 1000, FrameData, 0, 1)
	frames = append(frames, make([]byte, 1000)...)
	frames = append(appendFrameHeader(frames, 8, FramePing, 0, 0), "pingpong"...)
	if a := testing.AllocsPerRun(1000, func() {
		if n, err := c.Feed(frames); err != nil || n != len(frames) {
			t.Fatalf("%d, %v", n, err)
		}
	}); a != 0 {
		t.Errorf("%v allocations per DATA and PING", a)
	}
}

// TestFrameHeaderAllocatesNothing: reading and writing frame headers.
func TestFrameHeaderAllocatesNothing(t *testing.T) {
	buf := make([]byte, 0, 64)
	if a := testing.AllocsPerRun(1000, func() {
		buf = appendFrameHeader(buf[:0], 16384, FrameData, FlagEndStream, 12345)
		if fh := parseFrameHeader(buf); fh.Length != 16384 || fh.StreamID != 12345 || !fh.Has(FlagEndStream) {
			t.Fatal(fh)
		}
	}); a != 0 {
		t.Errorf("%v allocations", a)
	}
}

// BenchmarkRequest: a GET on a new stream and its small response, on one
// connection; the client gives the response's bytes back to the
// connection's window, as a client does.
func BenchmarkRequest(b *testing.B) {
	cl := newClient()
	c := NewConn(discard{}, echo{}, Limits{})
	if _, err := c.Feed(cl.b); err != nil {
		b.Fatal(err)
	}
	block := cl.block("/bench")
	req := appendFrameHeader(nil, len(block), FrameHeaders, FlagEndHeaders|FlagEndStream, 1)
	req = append(req, block...)
	const answer = len("GET /bench 0") // echo's
	req = appendU32(appendFrameHeader(req, windowUpdateLen, FrameWindowUpdate, 0, 0), uint32(answer))
	b.ReportAllocs()
	id := uint32(1)
	for b.Loop() {
		req[5], req[6], req[7], req[8] = byte(id>>24), byte(id>>16), byte(id>>8), byte(id)
		if _, err := c.Feed(req); err != nil {
			b.Fatal(err, c.Err)
		}
		if id += 2; id > maxStreamID-2 {
			b.Fatal("out of stream identifiers")
		}
	}
}

// BenchmarkBody: request body DATA frames of 16 KiB on an open stream.
func BenchmarkBody(b *testing.B) {
	cl := newClient()
	cl.frame(FrameHeaders, FlagEndHeaders, 1, cl.block("/upload"))
	c := NewConn(discard{}, echo{}, Limits{})
	if _, err := c.Feed(cl.b); err != nil {
		b.Fatal(err)
	}
	frame := append(appendFrameHeader(nil, 16384, FrameData, 0, 1), make([]byte, 16384)...)
	b.ReportAllocs()
	b.SetBytes(16384)
	for b.Loop() {
		if _, err := c.Feed(frame); err != nil {
			b.Fatal(err)
		}
	}
}
