package webserver

import (
	"errors"

	"github.com/plb/plb/engine"
	"github.com/plb/plb/http"
	"github.com/plb/plb/http/static"
)

// putState is a PUT whose body is being received: each read goes to the
// file at once (a blocking write on the loop, as Perlbal's aio_mode none),
// so the connection holds no body in memory.
type putState struct {
	up      *static.Upload
	st      *Settings // the settings the upload started with
	chunked bool
	remain  int64 // Content-Length bytes still to come
	cs      http.ChunkedScanner
	req     static.Request // for Finish: method and protocol only
	// keepAlive is whether the client may keep the connection once the
	// body is complete.
	keepAlive bool
}

// continueLine is the interim response for "Expect: 100-continue". Perlbal
// sends it in HTTP/1.1 form whatever the request's version, and its test
// 22-chunked-put expects exactly that.
const continueLine = "HTTP/1.1 100 Continue\r\n\r\n"

// startPut handles a PUT head of n bytes: the checks and the open in
// static.StartPut, then "100 Continue" if the client waits for it, and the
// body follows through putBody. It returns the bytes used, as serve.
func (wc *conn) startPut(c *engine.Conn, st *Settings, n int, proto string) int {
	r := &wc.req
	sr := static.Request{
		Method:        "PUT",
		URI:           r.Path,
		Proto:         proto,
		ContentLength: r.ContentLength,
		Chunked:       r.Chunked,
		ContentMD5:    r.Get("Content-MD5"),
	}
	now := c.Loop().Now()
	keepAlive := st.Svc.PersistClient && r.KeepAlive() && !wc.svc.draining.Load()
	// A refused PUT with a body leaves that body unread: the connection
	// closes after the answer (the engine discards what still arrives).
	wc.ka = keepAlive && r.BodyMode() == http.BodyNone
	up, head, resp := st.Static.StartPut(wc.scratch.b[:0], &sr, now, wc.connLines(st))
	if up == nil {
		return wc.respond(c, st, n, n, head, &resp)
	}
	wc.put = &putState{
		up:        up,
		st:        st,
		chunked:   r.Chunked,
		remain:    max(r.ContentLength, 0),
		req:       static.Request{Method: "PUT", Proto: proto},
		keepAlive: keepAlive,
	}
	if r.Expect100 {
		c.Write([]byte(continueLine))
	}
	c.SetTimeout(st.Svc.IdleTimeout)
	if !r.Chunked && wc.put.remain == 0 {
		// No body: the empty file is complete.
		return wc.finishPut(c, n)
	}
	return n
}

// putBody consumes body bytes of the PUT in progress and returns how many
// it used; once the body is complete it answers, and the rest of data is
// the next request.
func (wc *conn) putBody(c *engine.Conn, data []byte) int {
	p := wc.put
	c.SetTimeout(p.st.Svc.IdleTimeout)
	if !p.chunked {
		k := int64(len(data))
		if k > p.remain {
			k = p.remain
		}
		wc.svc.Stats.BytesIn.Add(k)
		if err := p.up.Write(data[:k]); err != nil {
			return wc.failPut(c, err, len(data))
		}
		p.remain -= k
		if p.remain == 0 {
			return wc.finishPut(c, int(k))
		}
		return int(k)
	}
	used := 0
	for used < len(data) {
		n, payload, done, err := p.cs.Scan(data[used:])
		used += n
		wc.svc.Stats.BytesIn.Add(int64(n))
		if err != nil {
			return wc.failPut(c, err, len(data))
		}
		if len(payload) > 0 {
			if err := p.up.Write(payload); err != nil {
				return wc.failPut(c, err, len(data))
			}
		}
		if done {
			return wc.finishPut(c, used)
		}
		if n == 0 {
			break
		}
	}
	return used
}

// finishPut answers a complete upload; used are the bytes of data that
// ended the body.
func (wc *conn) finishPut(c *engine.Conn, used int) int {
	p := wc.put
	wc.put = nil
	wc.ka = p.keepAlive && !wc.svc.draining.Load()
	head, resp := p.up.Finish(wc.scratch.b[:0], &p.req, c.Loop().Now(), wc.connLines(p.st))
	return wc.respond(c, p.st, used, used, head, &resp)
}

// failPut answers an upload that cannot go on (a broken chunked body, the
// size limit, a disk error) and closes the connection; the upload is
// aborted (a temporary file removed).
func (wc *conn) failPut(c *engine.Conn, err error, all int) int {
	p := wc.put
	wc.put = nil
	p.up.Abort()
	code, msg := 400, ""
	var ue *static.UploadError
	var he *http.Error
	switch {
	case errors.As(err, &ue):
		code, msg = ue.Code, ue.Msg
	case errors.As(err, &he):
		code, msg = he.Status, he.Msg
	}
	wc.ka = false
	head, resp := p.st.Static.Simple(wc.scratch.b[:0], &p.req, c.Loop().Now(), nil, code, msg)
	return wc.respond(c, p.st, all, all, head, &resp)
}

// abortPut drops an upload in progress (the client went away or timed out).
func (wc *conn) abortPut() {
	if wc.put != nil {
		wc.put.up.Abort()
		wc.put = nil
	}
}
