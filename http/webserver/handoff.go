package webserver

import (
	"sync/atomic"

	"github.com/plb/plb/engine"
	"github.com/plb/plb/http"
	"github.com/plb/plb/http/handoff"
)

// Adopt takes over a client connection a selector hands on (see package
// handoff), for the request at the start of its buffered input. The web
// server serves it as its own; after the response the connection goes back
// to hc.Base. The request the web server sees is the client's, with the
// selector's HEADER rules applied and the URI a start_serve_request hook
// set; the selector's persist_client decides keep-alive. Runs on the loop,
// inside the selector's OnData.
func (s *Service) Adopt(c *engine.Conn, hc *handoff.Client) {
	inner := s.Accept(c).(*conn) // counted open, as an accepted connection
	inner.svc = s.view(hc.Persist)
	inner.hc = hc
	a := &adopted{inner: inner, real: s, hc: hc}
	a.parser.Limits = inner.parser.Limits
	c.SetHandler(a)
	a.inner.OnOpen(c)
	c.ResumeRead()
	c.Kick()
}

// adopted hands one request at a time to the web server's own handler,
// and nothing beyond it: a pipelined request waits for the selector.
type adopted struct {
	inner   *conn
	real    *Service // inner.svc is a view of it when persist_client differs
	hc      *handoff.Client
	parser  http.Parser
	req     http.RequestHead
	state   adoptedState
	left    int64 // Content-Length body bytes not yet passed on
	chunked bool  // a chunked body not yet passed on in full
	chunks  http.ChunkedScanner
	head    []byte
}

// adoptedState is the state of a connection a selector handed on.
type adoptedState uint8

// Adopted connection states.
const (
	adHead adoptedState = iota // reading a request head
	adBody                     // passing the request body on (a PUT)
	adDone                     // the request is whole: the response follows
)

// view is the web server as a connection handed on by a selector sees it:
// s itself, or, when the selector's persist_client differs from s's, a
// Service with s's settings but that persist_client, whose counters
// adopted.settle moves to s.
func (s *Service) view(persist bool) *Service {
	st := s.Settings()
	if st.Svc.PersistClient == persist {
		return s
	}
	svc := *st.Svc
	svc.PersistClient = persist
	vst := *st
	vst.Svc = &svc
	v := &Service{Name: s.Name, log: s.log}
	v.settings.Store(&vst)
	v.draining.Store(s.draining.Load())
	return v
}

// settle moves what a view counted to the real service.
func (a *adopted) settle() {
	v := a.inner.svc
	if v == a.real {
		return
	}
	move := func(from, to *atomic.Int64) {
		if n := from.Swap(0); n != 0 {
			to.Add(n)
		}
	}
	move(&v.Requests, &a.real.Requests)
	move(&v.Stats.ClientsOpen, &a.real.Stats.ClientsOpen)
	move(&v.Stats.BytesIn, &a.real.Stats.BytesIn)
	move(&v.Stats.BytesOut, &a.real.Stats.BytesOut)
	for i := range v.Stats.Status {
		move(&v.Stats.Status[i], &a.real.Stats.Status[i])
	}
}

// idle reports whether the web server has queued its whole response (no
// file body waiting for the output queue to drain).
func (wc *conn) idle() bool { return !wc.busy }

func (a *adopted) OnOpen(c *engine.Conn) {}

func (a *adopted) OnData(c *engine.Conn, data []byte) int {
	defer a.settle()
	used := 0
	switch a.state {
	case adDone:
		a.finish(c)
		if c.Handler() == a {
			c.PauseRead() // the next request is the selector's
		}
		return 0
	case adHead:
		n, err := a.parser.ParseRequest(data, &a.req)
		if err != nil {
			return a.inner.OnData(c, data) // the web server answers the error
		}
		if n == 0 {
			return 0
		}
		r := &a.req
		a.chunked, a.left = r.Chunked, 0
		a.chunks.Reset()
		if !r.Chunked && r.ContentLength > 0 {
			a.left = r.ContentLength
		}
		head := data[:n]
		if a.hc.URI != nil || a.hc.Rules != nil { // the web server sees another head
			a.head = a.rewrite(a.head[:0], r)
			head = a.head
		}
		m := a.inner.OnData(c, head)
		switch {
		case c.Closing():
			return len(data)
		case m == 0:
			a.parser.Reset() // not taken yet: read again
			return 0
		case m != len(head):
			c.Close()
			return len(data)
		}
		used = n
		a.state = adBody
	}
	rest := data[used:]
	switch {
	case a.chunked:
		used += a.passChunked(c, rest)
	case a.left > 0:
		k := min(int64(len(rest)), a.left)
		if k > 0 {
			m := a.inner.OnData(c, rest[:k])
			used += m
			a.left -= int64(m)
		}
	}
	if c.Closing() {
		return len(data)
	}
	if a.left == 0 && !a.chunked {
		a.state = adDone
		a.finish(c)
		if c.Handler() == a && used < len(data) {
			c.PauseRead()
		}
	}
	return used
}

// passChunked passes on the complete lines and data of a chunked body in
// rest, up to its end and no further, and returns the bytes the web server
// took.
func (a *adopted) passChunked(c *engine.Conn, rest []byte) int {
	sc := a.chunks
	k, done := 0, false
	for k < len(rest) {
		n, _, end, err := sc.Scan(rest[k:])
		if err != nil {
			k = len(rest) // the web server answers the broken framing
			break
		}
		k += n
		if done = end; done || n == 0 {
			break
		}
	}
	if k == 0 {
		return 0
	}
	m := a.inner.OnData(c, rest[:k])
	if m == k {
		a.chunks = sc
		a.chunked = !done
		return m
	}
	for off := 0; off < m; { // a part taken: follow it
		n, _, end, err := a.chunks.Scan(rest[off:m])
		if err != nil || n == 0 {
			break
		}
		off += n
		a.chunked = !end
	}
	return m
}

// rewrite builds the head the web server sees.
func (a *adopted) rewrite(dst []byte, r *http.RequestHead) []byte {
	dst = append(dst, r.Method...)
	dst = append(dst, ' ')
	if a.hc.URI != nil {
		dst = append(dst, a.hc.URI...)
	} else {
		dst = append(dst, r.URI...)
	}
	if r.Minor >= 1 {
		dst = append(dst, " HTTP/1.1\r\n"...)
	} else {
		dst = append(dst, " HTTP/1.0\r\n"...)
	}
	for _, h := range r.Headers {
		if a.hc.Rules.Removed(h.Name) {
			continue
		}
		dst = appendHeader(dst, h.Name, h.Value)
	}
	if a.hc.Rules != nil {
		for _, h := range a.hc.Rules.Inserts {
			dst = appendHeader(dst, h.Name, h.Value)
		}
	}
	return append(dst, "\r\n"...)
}

func appendHeader(dst, name, value []byte) []byte {
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	dst = append(dst, value...)
	return append(dst, "\r\n"...)
}

// finish gives the connection back to the selector once the response is
// queued in full and the connection stays open.
func (a *adopted) finish(c *engine.Conn) {
	if c.Closing() || !a.inner.idle() || c.Handler() != a {
		return
	}
	if a.hc.Base == nil {
		a.state = adHead
		a.parser.Reset()
		return
	}
	a.settle()
	a.real.Stats.ClientsOpen.Add(-1)
	a.hc.Base.Return(c)
}

func (a *adopted) OnEOF(c *engine.Conn) { a.inner.OnEOF(c); a.settle() }

func (a *adopted) OnDrain(c *engine.Conn) {
	a.inner.OnDrain(c)
	a.settle()
	if a.state == adDone {
		a.finish(c)
	}
}

func (a *adopted) OnTimeout(c *engine.Conn)          { a.inner.OnTimeout(c); a.settle() }
func (a *adopted) OnClose(c *engine.Conn, err error) { a.inner.OnClose(c, err); a.settle() }

// DrainIdle closes the connection if it waits for a request (graceful
// shutdown). Runs on the loop.
func (a *adopted) DrainIdle(c *engine.Conn) {
	if a.state == adHead {
		a.inner.DrainIdle(c)
	}
}

// Describe implements engine.Describer. Runs on the loop.
func (a *adopted) Describe(c *engine.Conn) engine.ConnInfo { return a.inner.Describe(c) }
