// Package webserver is the web_server role on the event loops: it parses
// requests with the incremental parser, asks package static what to send,
// and sends file bodies with sendfile(2) under the engine's flow control.
package webserver

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
	"github.com/plb/plb/http"
	"github.com/plb/plb/http/accesslog"
	"github.com/plb/plb/http/handoff"
	"github.com/plb/plb/http/plugin"
	"github.com/plb/plb/http/static"
	"github.com/plb/plb/http/status"
)

// Settings is a web_server's immutable snapshot.
type Settings struct {
	Svc    *config.Service
	Static *static.Server
	// Hooks are the service's plugins when some hook the serving of
	// files (LazyCDN); nil otherwise.
	Hooks *plugin.Hooks
	// Resolve finds the service a hook hands a request to (nil: none).
	Resolve handoff.Resolver
	// AccessLog gets a combined-format line per request (nil: none).
	AccessLog *accesslog.Log
}

// NewSettings builds the static file server for svc with the MIME table
// mime (nil: plb's default table; it must not be modified afterwards).
func NewSettings(svc *config.Service, mime map[string]string) *Settings {
	return &Settings{Svc: svc, Static: static.New(static.Options{
		Docroot:      svc.Docroot,
		DirIndexing:  svc.DirIndexing,
		IndexFiles:   svc.IndexFiles,
		ServerTokens: svc.ServerTokens,
		EnablePut:    svc.EnablePut,
		EnableDelete: svc.EnableDelete,
		EnableMD5:    svc.EnableMD5,
		// Perlbal checks min_put_directory and max_put_size on
		// Content-Length PUTs only; plb on chunked ones too.
		MinPutDirectory:      svc.MinPutDirectory,
		MaxPutSize:           svc.MaxPutSize,
		MaxChunkedSize:       svc.MaxChunkedRequestSize,
		EnableConcatenateGet: svc.EnableConcatenateGet,
		MIME:                 mime,
	})}
}

// Service is a running web_server.
type Service struct {
	Name     string
	log      *slog.Logger
	settings atomic.Pointer[Settings]
	draining atomic.Bool
	// scratch holds each loop's response buffer (lines.go).
	scratchMu sync.Mutex
	scratch   map[*engine.Loop]*scratch
	// Requests counts requests served. Safe from any goroutine.
	Requests atomic.Int64
	// Stats are the other counters. Safe from any goroutine.
	Stats Stats
}

// Stats are a web_server's counters besides Requests.
type Stats struct {
	ClientsOpen atomic.Int64    // open client connections
	BytesIn     atomic.Int64    // request head bytes read
	BytesOut    atomic.Int64    // response bytes queued (heads, bodies, file regions)
	Status      [6]atomic.Int64 // responses by class: 1xx..5xx at [1..5]
}

// New creates a web_server service.
func New(name string, st *Settings, log *slog.Logger) *Service {
	s := &Service{Name: name, log: log}
	s.settings.Store(st)
	return s
}

// Settings returns the current snapshot. Safe from any goroutine.
func (s *Service) Settings() *Settings { return s.settings.Load() }

// Update publishes new settings. Safe from any goroutine.
func (s *Service) Update(st *Settings) {
	if old := s.settings.Swap(st); old != nil && old.Static != st.Static {
		old.Static.Close()
	}
}

// Drain makes clients close after their current response.
func (s *Service) Drain() { s.draining.Store(true) }

// Accept is the engine's OnAccept for this service. Runs on the loop.
func (s *Service) Accept(c *engine.Conn) engine.Handler {
	s.Stats.ClientsOpen.Add(1)
	wc := &conn{svc: s, scratch: s.scratchFor(c.Loop())}
	// Perlbal takes chunked PUTs from HTTP/1.0 clients (its test
	// 22-chunked-put sends one); the connection closes after each.
	wc.parser.Limits.ChunkedHTTP10 = true
	return wc
}

type conn struct {
	svc    *Service
	parser http.Parser
	req    http.RequestHead
	// logLine is where access_log lines are built (nil until one is).
	logLine []byte
	// scratch is where response heads (and small files) are built: one
	// buffer per loop, not per connection, since a response is written or
	// copied to the output queue before the loop builds the next one.
	scratch *scratch
	busy    bool // a file body is still being sent
	ka      bool
	reqs    int
	put     *putState // a PUT body being received (put.go)
	// connFn appends the Connection lines for ka and kaTimeout; made once
	// per connection, so that no request allocates a closure.
	connFn    func([]byte) []byte
	kaTimeout int
	corked    bool // TCP_CORK is set until the output queue is empty
	// hc is the hand-off that brought the connection here (nil: accepted
	// by the web server itself).
	hc *handoff.Client
	// preq and exists serve the file hooks (plugins.go), made on first use.
	preq   *plugin.Request
	exists func(string) bool
}

func (wc *conn) OnOpen(c *engine.Conn) {
	c.SetTimeout(wc.svc.Settings().Svc.IdleTimeout)
}

func (wc *conn) OnData(c *engine.Conn, data []byte) int {
	// Answer every complete request in data (pipelining), until one
	// leaves a body to send first: the rest waits in the engine's buffer
	// and comes back after OnDrain.
	used := 0
	for used < len(data) && !wc.busy && !c.Closing() {
		var n int
		if wc.put != nil {
			// A PUT body: written to disk as it comes, all of it
			// consumed, so memory holds no more than one read.
			n = wc.putBody(c, data[used:])
		} else {
			n = wc.serve(c, data[used:])
		}
		if n == 0 {
			break
		}
		used += n
	}
	if wc.busy && used < len(data) {
		// A pipelined request waits for this body: read no more until
		// it is sent. (Without one, reading goes on, which spares two
		// epoll_ctl calls per large response.)
		c.PauseRead()
	}
	return used
}

// serve answers the request at the start of data and returns the bytes it
// used (0: the head is incomplete).
func (wc *conn) serve(c *engine.Conn, data []byte) int {
	n, err := wc.parser.ParseRequest(data, &wc.req)
	st := wc.svc.Settings()
	if err != nil {
		code := 400
		msg := err.Error()
		var he *http.Error
		if errors.As(err, &he) {
			code, msg = he.Status, he.Msg
		}
		buf := status.AppendSimple(wc.scratch.b[:0], code, msg, status.Options{ServerTokens: st.Svc.ServerTokens})
		wc.scratch.b = buf
		wc.svc.count(code, int64(len(buf)))
		if st.AccessLog != nil {
			wc.accessLog(c, st, nil, code, 0) // an unparsable request: "-"
		}
		c.Write(buf)
		c.Close()
		return len(data)
	}
	if n == 0 {
		return 0
	}
	wc.svc.Requests.Add(1)
	wc.svc.Stats.BytesIn.Add(int64(n))
	wc.reqs++
	r := &wc.req
	hasBody := r.BodyMode() != http.BodyNone
	wc.ka = st.Svc.PersistClient && r.KeepAlive() && !hasBody && !wc.svc.draining.Load()
	proto := "HTTP/1.0"
	if r.Minor >= 1 {
		proto = "HTTP/1.1"
	}
	if st.Svc.EnablePut && string(r.Method) == "PUT" {
		return wc.startPut(c, st, n, proto)
	}
	sr := static.Request{
		Method:          methodString(r.Method),
		URI:             r.Path,
		IfModifiedSince: r.Get("If-Modified-Since"),
		Range:           r.Get("Range"),
		Proto:           proto,
		Cache:           &wc.scratch.files,
	}
	head, resp := st.Static.Serve(wc.scratch.b[:0], &sr, c.Loop().Now(), wc.connLines(st))
	if st.Hooks != nil {
		if used, ok := wc.fileHooks(c, st, n, len(data), head, &resp); ok {
			return used
		}
	}
	return wc.respond(c, st, n, len(data), head, &resp)
}

// respond sends a response and readies the connection for the next
// request: it returns used (the bytes of this request), or all when the
// connection closes.
func (wc *conn) respond(c *engine.Conn, st *Settings, used, all int, head []byte, resp *static.Response) int {
	size := int64(len(head)) + int64(len(resp.Body)) + resp.Length
	for _, p := range resp.Parts {
		size += p.Length
	}
	wc.svc.count(resp.Status, size)
	if st.AccessLog != nil {
		wc.accessLog(c, st, &wc.req, resp.Status, size-int64(len(head)))
	}
	// The next response on this loop is built in the same memory (once
	// this one is written or copied into the output queue, below).
	wc.scratch.b = resp.Buffer
	switch {
	case resp.File != nil, resp.Parts != nil:
		// Corked, the head and the file leave in full-sized segments
		// rather than the head alone first: the client reads the file in
		// far fewer, larger pieces (twice the requests/s for 1 MiB files).
		wc.cork(c)
		c.Write(head)
		if resp.File != nil {
			c.SendFile(resp.File, resp.Offset, resp.Length, true)
		}
		for _, p := range resp.Parts {
			c.SendFile(p.File, p.Offset, p.Length, true)
		}
		wc.uncork(c)
	default:
		c.Write2(head, resp.Body)
	}
	if cap(wc.scratch.b) > 64<<10 {
		wc.scratch.b = nil
	}
	if !wc.ka {
		c.Close()
		return all
	}
	c.SetTimeout(st.Svc.PersistClientIdleTimeout)
	wc.parser.Reset()
	if c.Full() || c.Pending() && (resp.File != nil || resp.Parts != nil) {
		// Answer pipelined requests only once this body is on its way.
		wc.busy = true
		c.NotifyEmpty()
	}
	return used
}

func (wc *conn) OnEOF(c *engine.Conn) {
	wc.abortPut()
	c.Close()
}

func (wc *conn) OnDrain(c *engine.Conn) {
	wc.uncork(c)
	if wc.busy {
		wc.busy = false
		if c.Paused() {
			c.ResumeRead()
		} else {
			c.Kick()
		}
	}
}

func (wc *conn) OnTimeout(c *engine.Conn) {
	if c.Pending() && c.LastWrite().After(c.Loop().Now().Add(-wc.svc.Settings().Svc.IdleTimeout)) {
		c.SetTimeout(wc.svc.Settings().Svc.IdleTimeout)
		return
	}
	wc.abortPut()
	c.Abort(engine.ErrTimeout)
}

func (wc *conn) OnClose(c *engine.Conn, err error) {
	wc.abortPut()
	wc.svc.Stats.ClientsOpen.Add(-1)
}

// DrainIdle closes the connection if it waits for a next request (graceful
// shutdown). Runs on the loop.
func (wc *conn) DrainIdle(c *engine.Conn) {
	if !wc.busy && wc.put == nil && !c.Pending() && len(c.Inbound()) == 0 && !c.Young() {
		c.Close()
	}
}

// accessLog writes the access_log line of the request r (nil: the request
// could not be parsed) answered with code and body bytes.
func (wc *conn) accessLog(c *engine.Conn, st *Settings, r *http.RequestHead, code int, body int64) {
	e := accesslog.Entry{Addr: c.RemoteAddr().Addr(), Time: c.Loop().Now(), Status: code, Bytes: body, Proto: c.Proto()}
	if r != nil {
		e.Method, e.URI, e.Minor = r.Method, r.URI, r.Minor
		e.Referer, e.Agent = r.Get("Referer"), r.Get("User-Agent")
	}
	wc.logLine = accesslog.AppendCombined(wc.logLine[:0], &e)
	st.AccessLog.Add(wc.logLine)
}
