// Package webserver is the web_server role on the event loops: it parses
// requests with the incremental parser, asks package static what to send,
// and sends file bodies with sendfile(2) under the engine's flow control.
package webserver

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
	"github.com/plb/plb/http"
	"github.com/plb/plb/http/static"
	"github.com/plb/plb/http/status"
)

// Settings is a web_server's immutable snapshot.
type Settings struct {
	Svc    *config.Service
	Static *static.Server
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
		MIME:         mime,
	})}
}

// Service is a running web_server.
type Service struct {
	Name     string
	log      *slog.Logger
	settings atomic.Pointer[Settings]
	draining atomic.Bool
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
	return &conn{svc: s}
}

type conn struct {
	svc    *Service
	parser http.Parser
	req    http.RequestHead
	buf    []byte
	busy   bool // a file body is still being sent
	ka     bool
	reqs   int
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
		n := wc.serve(c, data[used:])
		if n == 0 {
			break
		}
		used += n
	}
	if wc.busy {
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
		wc.buf = status.AppendSimple(wc.buf[:0], code, msg, status.Options{ServerTokens: st.Svc.ServerTokens})
		wc.svc.count(code, int64(len(wc.buf)))
		c.Write(wc.buf)
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
	sr := static.Request{
		Method:          string(r.Method),
		URI:             r.Path,
		IfModifiedSince: r.Get("If-Modified-Since"),
		Range:           r.Get("Range"),
		Proto:           proto,
	}
	timeout := int(st.Svc.PersistClientIdleTimeout / time.Second)
	ka := wc.ka
	head, resp := st.Static.Serve(wc.buf[:0], &sr, c.Loop().Now(), func(dst []byte) []byte {
		return status.AppendConnection(dst, ka, timeout)
	})
	wc.buf = head
	wc.svc.count(resp.Status, int64(len(head))+int64(len(resp.Body))+resp.Length)
	if resp.File != nil {
		c.Write(head)
		c.SendFile(resp.File, resp.Offset, resp.Length, true)
	} else {
		c.Write2(head, resp.Body)
	}
	if cap(wc.buf) > 64<<10 {
		wc.buf = nil
	}
	if !wc.ka {
		c.Close()
		return len(data)
	}
	c.SetTimeout(st.Svc.PersistClientIdleTimeout)
	wc.parser.Reset()
	if c.Full() || c.Pending() && resp.File != nil {
		// Answer pipelined requests only once this body is on its way.
		wc.busy = true
		c.NotifyEmpty()
	}
	return n
}

func (wc *conn) OnEOF(c *engine.Conn) { c.Close() }

func (wc *conn) OnDrain(c *engine.Conn) {
	if wc.busy {
		wc.busy = false
		c.ResumeRead()
	}
}

func (wc *conn) OnTimeout(c *engine.Conn) {
	if c.Pending() && c.LastWrite().After(c.Loop().Now().Add(-wc.svc.Settings().Svc.IdleTimeout)) {
		c.SetTimeout(wc.svc.Settings().Svc.IdleTimeout)
		return
	}
	c.Abort(engine.ErrTimeout)
}

func (wc *conn) OnClose(c *engine.Conn, err error) { wc.svc.Stats.ClientsOpen.Add(-1) }

// DrainIdle closes the connection if it waits for a next request (graceful
// shutdown). Runs on the loop.
func (wc *conn) DrainIdle(c *engine.Conn) {
	if !wc.busy && !c.Pending() && len(c.Inbound()) == 0 {
		c.Close()
	}
}
