package server

import (
	"bytes"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
	"github.com/plb/plb/http/h2"
	"github.com/plb/plb/http/h2srv"
)

// HTTP/2 to clients (http2): a service whose role speaks HTTP and whose
// http2 is on takes HTTP/2 connections, by ALPN h2 on a TLS listener
// and with h2c's prior knowledge on a plain one. The first bytes of a
// connection decide (sniff): HTTP/2 goes to package h2srv, which gives
// each stream to the role as an exchange of its own; anything else to
// the role as before.

// commitHTTP2 publishes sc's HTTP/2 settings for sv (nil: off).
func (s *Server) commitHTTP2(sv *service, sc *config.Service) {
	if !roleOf(sc.Role).alpnHTTP() || !sc.HTTP2On() {
		sv.h2.Store(nil)
		return
	}
	sv.h2.Store(&h2srv.Options{
		Limits:       h2.Limits{MaxConcurrentStreams: uint32(sc.HTTP2MaxConcurrentStreams)},
		Accept:       sv.acceptStream,
		IdleTimeout:  sc.PersistClientIdleTimeout,
		StallTimeout: sc.IdleTimeout,
		Log:          s.log.With("service", sc.Name),
		Stats:        &sv.h2Stats,
	})
}

// acceptStream is the role's accept for an HTTP/2 stream's exchange.
func (sv *service) acceptStream(c *engine.Conn) engine.Handler {
	c.Ctx = sv
	if sv.run == nil {
		return nil
	}
	return sv.run.Accept(c)
}

// sniff is the handler of a new connection to a service with HTTP/2 on,
// until its first bytes say which protocol it speaks.
type sniff struct {
	sv *service
	o  *h2srv.Options
}

var h2Preface = []byte(h2.Preface)

func (sn *sniff) OnOpen(c *engine.Conn) { c.SetTimeout(sn.o.IdleTimeout) }

func (sn *sniff) OnData(c *engine.Conn, data []byte) int {
	h2 := false
	if st, ok := c.TLSConnectionState(); ok {
		h2 = st.NegotiatedProtocol == "h2"
	} else if !c.TLS() {
		if n := min(len(data), len(h2Preface)); bytes.Equal(data[:n], h2Preface[:n]) {
			if n < len(h2Preface) {
				return 0 // a prefix of the preface: wait for the rest
			}
			h2 = true
		} else {
			switch http1Line(data) {
			case lineWait:
				return 0
			case lineOther:
				// Neither HTTP/2's preface nor an HTTP/1 request line:
				// closed without an answer, as an HTTP/2 server closes on
				// a bad preface (RFC 9113 3.4).
				c.Close()
				return len(data)
			}
		}
	}
	if h2 {
		h := h2srv.Serve(c, sn.o)
		c.SetHandler(h)
		return h.OnData(c, data)
	}
	h := sn.sv.run.Accept(c)
	if h == nil {
		c.Close()
		return len(data)
	}
	c.SetHandler(h)
	h.OnOpen(c)
	if c.Closing() {
		return len(data)
	}
	return h.OnData(c, data)
}

// DrainIdle closes a connection that has not said what it speaks yet.
func (sn *sniff) DrainIdle(c *engine.Conn) {
	if !c.Young() { // its first bytes may be on their way (FirstRequestGrace)
		c.Close()
	}
}

func (sn *sniff) OnEOF(c *engine.Conn)        { c.Close() }
func (sn *sniff) OnDrain(*engine.Conn)        {}
func (sn *sniff) OnTimeout(c *engine.Conn)    { c.Close() }
func (sn *sniff) OnClose(*engine.Conn, error) {}

// What a plain connection's first bytes are, for sniff.
const (
	lineHTTP1 = iota // an HTTP/1 request line (or too long to tell)
	lineWait         // not a whole line yet
	lineOther        // a line that is not HTTP/1
)

// http1Line tells whether data starts with an HTTP/1 request line: one
// ending in " HTTP/1.x". A line longer than 8 KiB goes to the role,
// which answers it as HTTP/1 (414).
func http1Line(data []byte) int {
	data = bytes.TrimLeft(data, "\r\n") // empty lines before a request (RFC 9112 2.2)
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		if len(data) < 8<<10 {
			return lineWait
		}
		return lineHTTP1
	}
	line := bytes.TrimRight(data[:i], "\r")
	if n := len(line); n >= 9 && bytes.Equal(line[n-9:n-1], []byte(" HTTP/1.")) {
		return lineHTTP1
	}
	return lineOther
}
