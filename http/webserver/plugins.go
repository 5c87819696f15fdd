package webserver

import (
	"bytes"
	"time"

	"github.com/plb/plb/engine"
	"github.com/plb/plb/http/handoff"
	"github.com/plb/plb/http/plugin"
	"github.com/plb/plb/http/static"
	"github.com/plb/plb/http/status"
)

// The web server's own hook points: after the docroot was looked at,
// Perlbal's static_get_poststat_file_missing and
// static_get_poststat_pre_send (and their concat_get_ twins), which LazyCDN
// uses to hand a request on to another service. The request hooks
// (start_web_request, ...) run in the front (package selector). Only for
// a service whose plugins have such hooks: Settings.Hooks is nil otherwise
// and none of this runs.

// fileHooks runs the file hooks for the GET or HEAD just answered by the
// docroot (head and resp, not sent yet). handled reports that a hook took
// the request: then used is what serve returns (0 when the request went to
// another service, which reads it again from the connection's input).
func (wc *conn) fileHooks(c *engine.Conn, st *Settings, n, all int, head []byte, resp *static.Response) (used int, handled bool) {
	r := &wc.req
	if m := string(r.Method); m != "GET" && m != "HEAD" {
		return 0, false
	}
	var mtime time.Time
	missing := resp.Status == 404
	if !missing {
		if resp.Status != 200 {
			return 0, false
		}
		var ok bool
		if mtime, ok = lastModified(head); !ok {
			return 0, false // not a file (a directory listing)
		}
	}
	if wc.preq == nil {
		wc.preq = &plugin.Request{}
		wc.exists = func(name string) bool {
			st := wc.svc.Settings()
			return st.Resolve.Find(name) != nil
		}
	}
	pr := wc.preq
	pr.Reset()
	pr.Svc, pr.Head, pr.Conn, pr.Now, pr.Log, pr.Exists = st.Svc, r, c, c.Loop().Now(), wc.svc.log, wc.exists
	defer func() { pr.Head = nil }()
	if missing {
		handled = st.Hooks.StaticFileMissing(pr)
	} else {
		handled = st.Hooks.StaticPreSend(pr, mtime)
	}
	if !handled {
		return 0, false
	}
	if name := pr.Target(); name != "" && !pr.Answered() {
		return wc.handOff(c, st, n, name, resp)
	}
	if !pr.Answered() {
		return 0, false // nothing done after all: serve the file
	}
	resp.Close()
	wc.scratch.b = resp.Buffer
	o := status.Options{ServerTokens: st.Svc.ServerTokens, Head: string(r.Method) == "HEAD", Conn: wc.connLines(st)}
	if r.Minor >= 1 {
		o.Proto = "HTTP/1.1"
	}
	buf := plugin.AppendResponse(wc.scratch.b[:0], pr.Response(), o)
	h := bytes.Index(buf, []byte("\r\n\r\n")) + 4 // the head, then the body
	out := &static.Response{Status: pr.Response().Status, Body: buf[h:len(buf):len(buf)], Buffer: buf}
	return wc.respond(c, st, n, all, buf[:h:h], out), true
}

// handOff gives the connection to service name for the request at the
// start of its input: the web server consumes nothing and counts nothing
// of it. After the response the connection goes where this one would
// have gone (the selector that handed it here, if any). A name that does
// not resolve, a service that takes no HTTP client (an SMTP relay), or
// too many hand-offs, serve the file after all.
func (wc *conn) handOff(c *engine.Conn, st *Settings, n int, name string, resp *static.Response) (int, bool) {
	t := st.Resolve.Find(name)
	hc := &handoff.Client{Persist: st.Svc.PersistClient, Hops: 1}
	if wc.hc != nil {
		hc.Base, hc.Persist, hc.Rules, hc.Hops = wc.hc.Base, wc.hc.Persist, wc.hc.Rules, wc.hc.Hops+1
	}
	if t == nil || !handoff.TakesHTTP(t.Role()) || hc.Hops > handoff.MaxHops {
		return 0, false
	}
	resp.Close()
	wc.scratch.b = resp.Buffer
	wc.svc.Requests.Add(-1)
	wc.svc.Stats.BytesIn.Add(-int64(n))
	wc.svc.Stats.ClientsOpen.Add(-1) // the connection leaves this service
	wc.parser.Reset()
	t.Adopt(c, hc)
	return 0, true
}

// lastModified finds the Last-Modified date of a response head.
func lastModified(head []byte) (time.Time, bool) {
	const field = "\r\nLast-Modified: "
	i := bytes.Index(head, []byte(field))
	if i < 0 {
		return time.Time{}, false
	}
	v := head[i+len(field):]
	if j := bytes.IndexByte(v, '\r'); j >= 0 {
		v = v[:j]
	}
	t, err := time.Parse("Mon, 02 Jan 2006 15:04:05 GMT", string(v))
	return t, err == nil
}
