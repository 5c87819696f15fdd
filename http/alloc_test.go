//go:build !race

package http

import "testing"

// The race detector allocates on its own, hence the build tag.

func TestParseRequestAllocs(t *testing.T) {
	buf := []byte(browserRequest)
	abs := []byte("GET http://EXAMPLE.com:8080/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
	var p Parser
	var h RequestHead
	p.ParseRequest(buf, &h) // warm-up: Headers gets its capacity
	allocs := testing.AllocsPerRun(100, func() {
		if n, err := p.ParseRequest(buf, &h); n != len(buf) || err != nil {
			t.Fatal(n, err)
		}
		if n, err := p.ParseRequest(abs, &h); n != len(abs) || err != nil {
			t.Fatal(n, err)
		}
		for k := 1; k < 40; k++ {
			p.ParseRequest(buf[:k], &h)
		}
		p.Reset()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per run", allocs)
	}
}

func TestParseErrorAllocs(t *testing.T) {
	bad := []byte("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n")
	var p Parser
	var h RequestHead
	p.ParseRequest(bad, &h)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := p.ParseRequest(bad, &h); err == nil {
			t.Fatal("no error")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per run", allocs)
	}
}

func TestParseResponseAllocs(t *testing.T) {
	buf := []byte(typicalResponse)
	fold := []byte("HTTP/1.1 200 OK\r\nX: a\r\n b\r\nTransfer-Encoding: chunked\r\n\r\n")
	scratch := make([]byte, len(fold))
	var p Parser
	var h ResponseHead
	p.ParseResponse(buf, &h)
	allocs := testing.AllocsPerRun(100, func() {
		if n, err := p.ParseResponse(buf, &h); n != len(buf) || err != nil {
			t.Fatal(n, err)
		}
		copy(scratch, fold) // folding rewrites the buffer
		if n, err := p.ParseResponse(scratch, &h); n != len(fold) || err != nil || string(h.Headers[0].Value) != "a b" {
			t.Fatal(n, err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per run", allocs)
	}
}

func TestGetAllocs(t *testing.T) {
	var p Parser
	var req RequestHead
	var resp ResponseHead
	p.ParseRequest([]byte(browserRequest), &req)
	p.ParseResponse([]byte(typicalResponse), &resp)
	allocs := testing.AllocsPerRun(100, func() {
		if req.Get("cookie") == nil || req.Get("X-Missing") != nil || resp.Get("content-type") == nil {
			t.Fatal("Get")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per run", allocs)
	}
}

func TestChunkedScanAllocs(t *testing.T) {
	buf := []byte(chunkedBody(10000, 1000) + "")
	trailers := []byte("5;ext=1\r\nhello\r\n0\r\nX: y\r\n\r\n")
	var s ChunkedScanner
	allocs := testing.AllocsPerRun(100, func() {
		for _, body := range [][]byte{buf, trailers} {
			s.Reset()
			for in := body; ; {
				n, _, done, err := s.Scan(in)
				if err != nil {
					t.Fatal(err)
				}
				in = in[n:]
				if done {
					break
				}
			}
		}
		s.Reset()
		s.Scan([]byte("zz")) // the error path
	})
	if allocs != 0 {
		t.Errorf("%v allocations per run", allocs)
	}
}
