package http

import (
	"bytes"
	"errors"
	"net/http/httputil"
	"testing"
)

// Small limits make the fuzzer reach the 414 and 431 paths.
var fuzzLimits = []Limits{{}, {MaxHeadBytes: 64, MaxURIBytes: 16, MaxHeaders: 4}}

func FuzzParseRequest(f *testing.F) {
	for _, tc := range reqCases {
		if len(tc.in) < 512 { // big seeds make minimizing crawl
			f.Add([]byte(tc.in))
		}
	}
	f.Add([]byte(browserRequest))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, l := range fuzzLimits {
			checkRequest(t, data, l)
		}
	})
}

func checkRequest(t *testing.T, data []byte, l Limits) {
	buf := bytes.Clone(data)
	p := Parser{Limits: l}
	var h RequestHead
	n, err := p.ParseRequest(buf, &h)
	once := snapReq(n, err, &h) // panics on an error that is not an *Error
	if n < 0 || n > len(buf) {
		t.Fatalf("n = %d for %d bytes", n, len(buf))
	}
	if !bytes.Equal(buf, data) {
		t.Fatal("ParseRequest modified its buffer")
	}
	if err != nil {
		if n != 0 {
			t.Fatalf("n = %d with error %v", n, err)
		}
		switch s := err.(*Error).Status; s {
		case 400, 414, 431, 501, 505:
		default:
			t.Fatalf("status %d", s)
		}
	}
	if n > 0 {
		if n != h.HeadLen || n > l.maxHead() {
			t.Fatalf("n = %d, HeadLen %d", n, h.HeadLen)
		}
		head := buf[:n]
		for _, v := range [][]byte{h.Method, h.URI, h.AbsHost, h.Upgrade} {
			if !within(head, v) {
				t.Fatalf("view %q outside the head", v)
			}
		}
		if !within(head, h.Host) && !within(h.hostBuf[:], h.Host) {
			t.Fatalf("Host %q outside the head", h.Host)
		}
		if !within(head, h.Path) && !within(h.slash[:], h.Path) {
			t.Fatalf("Path %q outside the head", h.Path)
		}
		for _, f := range h.Headers {
			if !within(head, f.Name) || !within(head, f.Value) {
				t.Fatalf("header %q outside the head", f.Name)
			}
		}
		if len(h.Headers) > l.maxHeaders() {
			t.Fatalf("%d headers", len(h.Headers))
		}
		// The head alone parses the same, with the same (reset) parser.
		n2, err2 := p.ParseRequest(buf[:n], &h)
		if r := snapReq(n2, err2, &h); r != once {
			t.Fatalf("head alone:\n%+v\nwith the rest:\n%+v", r, once)
		}
	}
	// Incremental feeding must not change the answer.
	for _, step := range []int{1, 3, len(data)/3 + 1} {
		if r := parseReqSplit(string(data), l, step); r != once {
			t.Fatalf("in steps of %d:\n%+v\nall at once:\n%+v", step, r, once)
		}
	}
}

func FuzzParseResponse(f *testing.F) {
	for _, tc := range respCases {
		f.Add([]byte(tc.in))
	}
	f.Add([]byte(typicalResponse))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, l := range fuzzLimits {
			checkResponse(t, data, l)
		}
	})
}

func checkResponse(t *testing.T, data []byte, l Limits) {
	buf := bytes.Clone(data)
	p := Parser{Limits: l}
	var h ResponseHead
	n, err := p.ParseResponse(buf, &h)
	once := snapResp(n, err, &h)
	if n < 0 || n > len(buf) {
		t.Fatalf("n = %d for %d bytes", n, len(buf))
	}
	switch {
	case n > 0 && !bytes.Equal(buf[n:], data[n:]):
		t.Fatal("ParseResponse modified bytes after the head")
	case n == 0 && err == nil && !bytes.Equal(buf, data):
		t.Fatal("ParseResponse modified an incomplete head")
	}
	if err != nil {
		if n != 0 {
			t.Fatalf("n = %d with error %v", n, err)
		}
	}
	if n > 0 {
		if n != h.HeadLen || n > l.maxHead() {
			t.Fatalf("n = %d, HeadLen %d", n, h.HeadLen)
		}
		head := buf[:n]
		if !within(head, h.Reason) {
			t.Fatal("reason outside the head")
		}
		for _, f := range h.Headers {
			if !within(head, f.Name) || !within(head, f.Value) {
				t.Fatalf("header %q outside the head", f.Name)
			}
			for _, c := range f.Value {
				if !isValueByte(c) {
					t.Fatalf("header %q has byte %#x", f.Name, c)
				}
			}
		}
		if h.Status < 100 || h.Status > 999 {
			t.Fatalf("status %d", h.Status)
		}
		if h.Chunked && h.BodyMode(false) != BodyChunked && h.Status >= 200 && h.Status != 204 && h.Status != 304 {
			t.Fatal("chunked but not BodyChunked")
		}
	}
	for _, step := range []int{1, 4, len(data)/3 + 1} {
		if r := parseRespSplit(string(data), l, step); r != once {
			t.Fatalf("in steps of %d:\n%+v\nall at once:\n%+v", step, r, once)
		}
	}
}

func FuzzChunked(f *testing.F) {
	for _, tc := range chunkCases {
		if len(tc.in) < 512 { // big seeds make minimizing crawl
			f.Add([]byte(tc.in), uint8(3))
		}
	}
	f.Add([]byte(chunkedBody(300, 70)), uint8(17))
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		// Any split gives the same answer.
		p0, c0, d0, e0 := scanChunked(data, len(data)+1)
		for _, st := range []int{1, int(step) + 1} {
			p, c, d, e := scanChunked(data, st)
			if !bytes.Equal(p, p0) || c != c0 || d != d0 || !errors.Is(e, e0) {
				t.Fatalf("step %d: %q %d %v %v; at once: %q %d %v %v", st, p, c, d, e, p0, c0, d0, e0)
			}
		}
		if c0 > len(data) || len(p0) > c0 {
			t.Fatalf("consumed %d of %d, payload %d", c0, len(data), len(p0))
		}
		if e0 != nil {
			if _, ok := e0.(*Error); !ok {
				t.Fatalf("%T", e0)
			}
		}
		// Whatever net/http writes, the scanner reads back.
		var enc bytes.Buffer
		w := httputil.NewChunkedWriter(&enc)
		for rest := data; len(rest) > 0; {
			k := min(len(rest), int(step)+1)
			w.Write(rest[:k])
			rest = rest[k:]
		}
		w.Close()
		enc.WriteString("Trailer-Name: v\r\n\r\nNEXT")
		p, c, d, e := scanChunked(enc.Bytes(), int(step)+1)
		if e != nil || !d || !bytes.Equal(p, data) || enc.Len()-c != 4 {
			t.Fatalf("round trip of %q: %q %d %v %v", data, p, c, d, e)
		}
	})
}
