package h2

import (
	"net"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/net/http2/hpack"
)

// netOut writes a test server's frames to its net.Conn.
type netOut struct{ c net.Conn }

func (o netOut) Write(p []byte) error { _, err := o.c.Write(p); return err }
func (o netOut) Buffered() int        { return 0 }

// echo answers every request, once it is whole, with 200 and a body
// saying what it got: "METHOD PATH n" (n body bytes), padded with dots to
// the size asked by an x-size field, so that flow control shows.
type echo struct{}

func (echo) Request(s *Stream, r *Request, end bool) {
	size := 0
	for _, f := range r.Fields {
		if f.Name == "x-size" {
			size, _ = strconv.Atoi(f.Value)
		}
	}
	s.User = &echoState{what: r.Method + " " + r.Path, size: size}
	if end {
		echo{}.answer(s)
	}
}

type echoState struct {
	what       string
	size, body int
}

func (echo) Data(s *Stream, p []byte, end bool) {
	st := s.User.(*echoState)
	st.body += len(p)
	s.Consumed(len(p))
	if end {
		echo{}.answer(s)
	}
}

func (echo) answer(s *Stream) {
	st := s.User.(*echoState)
	body := []byte(st.what + " " + strconv.Itoa(st.body))
	for len(body) < st.size {
		body = append(body, '.')
	}
	s.Respond(200, []hpack.HeaderField{{Name: "content-type", Value: "text/plain"}, {Name: "content-length", Value: strconv.Itoa(len(body))}}, body)
}

func (echo) Closed(*Stream, ErrCode) {}

// serve runs a test server of h with lim on a loopback port until the
// test ends; it returns the address.
func serve(t *testing.T, h Handler, lim Limits) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				serveConn(nc, h, lim)
			}()
		}
	}()
	return ln.Addr().String()
}

// serveConn runs one connection: reads fed to the codec, frames written
// at once.
func serveConn(nc net.Conn, h Handler, lim Limits) {
	c := NewConn(netOut{nc}, h, lim)
	buf := make([]byte, 0, 64<<10)
	tmp := make([]byte, 32<<10)
	for {
		n, err := nc.Read(tmp)
		if n > 0 {
			buf = append(buf, tmp[:n]...)
			used, ferr := c.Feed(buf)
			buf = append(buf[:0], buf[used:]...)
			if ferr != nil || c.Done() {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
