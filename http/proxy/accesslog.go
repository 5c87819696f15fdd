package proxy

import (
	"github.com/plb/plb/http"
	"github.com/plb/plb/http/accesslog"
)

// The reverse proxy's access_log: one combined-format line per request,
// written when its response is complete (or the connection ends first:
// status 499 when no response had started). Only a service with an
// access_log builds entries; the others pay a nil test per request.

// accessEntry is what the line of the current request needs; e's byte
// fields are copies of the request head's (which does not outlive the
// request), their memory reused from request to request.
type accessEntry struct {
	e       accesslog.Entry
	sent0   int64 // client.sent at the request's start
	headLen int   // bytes of the response head (0: unknown)
	active  bool  // a request is being logged
	line    []byte
}

// maxLoggedURI bounds the URI kept for the log line.
const maxLoggedURI = 4 << 10

// startAccessLog records the request just parsed (nil: one that could
// not be parsed, logged as "-").
func (cl *client) startAccessLog(r *http.RequestHead) {
	a := cl.alog
	if a == nil {
		a = &accessEntry{}
		cl.alog = a
	}
	e := &a.e
	e.Addr, e.Status, e.Bytes, e.Proto = cl.conn.RemoteAddr().Addr(), 0, 0, cl.conn.Proto()
	e.Method, e.URI, e.Referer, e.Agent = e.Method[:0], e.URI[:0], e.Referer[:0], e.Agent[:0]
	if r == nil {
		e.Time, e.Minor = cl.conn.Loop().Now(), 0
	} else {
		e.Time, e.Minor = cl.conn.Loop().ClockTime(cl.reqStart), r.Minor
		e.Method = append(e.Method, r.Method...)
		e.URI = append(e.URI, r.URI[:min(len(r.URI), maxLoggedURI)]...)
		e.Referer = append(e.Referer, r.Get("Referer")...)
		e.Agent = append(e.Agent, r.Get("User-Agent")...)
	}
	a.sent0, a.headLen, a.active = cl.sent, 0, true
}

// countOut counts n response bytes sent (or queued) to the client: for
// the service's figures and the access log's.
func (cl *client) countOut(n int64) {
	cl.svc.Stats.BytesOut.Add(n)
	cl.sent += n
}

// logStatus records the status the client gets and the length of its
// head (0: unknown, the whole response is counted as body).
func (cl *client) logStatus(code, headLen int) {
	if a := cl.alog; a != nil && a.active {
		a.e.Status, a.headLen = code, headLen
	}
}

// writeAccessLog writes the current request's line, once.
func (cl *client) writeAccessLog() {
	a := cl.alog
	if a == nil || !a.active {
		return
	}
	a.active = false
	st := cl.st
	if st == nil {
		st = cl.svc.Settings()
	}
	if st.AccessLog == nil {
		return
	}
	if a.e.Status == 0 {
		a.e.Status = 499 // nginx's "client closed the connection"
	}
	a.e.Bytes = cl.sent - a.sent0 - int64(a.headLen)
	a.line = accesslog.AppendCombined(a.line[:0], &a.e)
	st.AccessLog.Add(a.line)
}
