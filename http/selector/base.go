package selector

import (
	"errors"
	"strconv"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
	"github.com/plb/plb/http"
	"github.com/plb/plb/http/handoff"
	"github.com/plb/plb/http/plugin"
	"github.com/plb/plb/http/status"
)

// baseState is a selector client's state.
type baseState uint8

// Base client states.
const (
	stHead    baseState = iota // reading a request head
	stLatency                  // waiting the selector's latency before selecting
	stAway                     // handed to a target
	stClosing
)

// base is one client connection while it is with the selector: between
// requests, and while a request head is read and a target chosen. Every
// method runs on the connection's loop.
type base struct {
	svc   *Service
	conn  *engine.Conn
	outer *handoff.Client // set when another selector handed c here
	state baseState

	parser   http.Parser
	req      http.RequestHead
	preq     plugin.Request
	hc       handoff.Client // the current hand-off, given to the target
	exists   func(string) bool
	buf      []byte
	requests int
	counted  bool // counted in Stats.ClientsOpen
	waited   bool // the latency of the current request has passed
	timer    *engine.Timer
}

func (s *Service) newBase(c *engine.Conn, outer *handoff.Client) *base {
	b := &base{svc: s, conn: c, outer: outer, counted: true}
	s.Stats.ClientsOpen.Add(1)
	b.exists = b.serviceExists
	return b
}

// release ends the selector's part: c went to a target for good (another
// selector gets the next request), or closed.
func (b *base) release() {
	if b.counted {
		b.counted = false
		b.svc.Stats.ClientsOpen.Add(-1)
	}
}

func (b *base) serviceExists(name string) bool {
	st := b.svc.Settings()
	return st.Resolve.Find(name) != nil
}

// persist is the persist_client that decides keep-alive: the first
// selector's.
func (b *base) persist(st *Settings) bool {
	if b.outer != nil {
		return b.outer.Persist
	}
	return st.Svc.PersistClient
}

func (b *base) OnOpen(c *engine.Conn) {
	c.SetTimeout(headerTimeout(b.svc.Settings().Svc))
}

func headerTimeout(svc *config.Service) time.Duration {
	if svc.HeaderTimeout > 0 {
		return svc.HeaderTimeout
	}
	return svc.IdleTimeout
}

func (b *base) OnData(c *engine.Conn, data []byte) int {
	switch b.state {
	case stClosing:
		return len(data)
	case stHead:
	default:
		c.PauseRead() // until the latency passed, or the target takes over
		return 0
	}
	n, err := b.parser.ParseRequest(data, &b.req)
	if err != nil {
		code, msg := 400, err.Error()
		var he *http.Error
		if errors.As(err, &he) {
			code, msg = he.Status, he.Msg
		}
		b.answer(c, &plugin.Response{Status: code, Msg: msg}, false)
		return len(data)
	}
	if n == 0 {
		return 0
	}
	st := b.svc.Settings()
	if st.Svc.Latency > 0 && !b.waited {
		// Perlbal's latency: wait, then select (the head is read again).
		b.state = stLatency
		c.PauseRead()
		b.timer = c.Loop().AfterFunc(st.Svc.Latency, b.latencyPassed)
		return 0
	}
	b.waited = false
	b.svc.Stats.Requests.Add(1)
	c.SetTimeout(st.Svc.IdleTimeout)
	return b.route(c, st, n)
}

func (b *base) latencyPassed() {
	c := b.conn
	if b.state != stLatency || c.Closing() {
		return
	}
	b.state = stHead
	b.waited = true
	b.parser.Reset()
	c.ResumeRead()
	c.Kick()
}

// route runs the plugins, chooses the target and hands c over; it returns
// the bytes consumed (the head, when the selector answered itself; none
// when a target took the request).
func (b *base) route(c *engine.Conn, st *Settings, n int) int {
	r := &b.preq
	r.Reset()
	r.Svc, r.Head, r.Conn, r.Now, r.Exists = st.Svc, &b.req, c, c.Loop().Now(), b.exists
	var target handoff.Target
	if st.Fixed != nil {
		if st.Hooks.StartWeb(r) {
			return b.answered(c, st, n)
		}
		target = st.Fixed
	} else {
		if st.Hooks.StartHTTP(r) {
			return b.answered(c, st, n)
		}
		name := ""
		if st.Hooks.Select(r) {
			if r.Answered() {
				return b.answered(c, st, n)
			}
			name = r.Target()
		}
		if name == "" {
			name = st.Svc.DefaultService
		}
		if name == "" {
			if !st.Hooks.HasSelector() {
				r.Respond(500, "No service selector configured.")
			} else {
				r.Respond(404, "Not Found (no matching service)")
			}
			return b.answered(c, st, n)
		}
		if target = st.Resolve.Find(name); target == nil {
			r.Respond(404, "Not Found ("+name+" not a defined service)")
			return b.answered(c, st, n)
		}
	}
	if role := target.Role(); !handoff.TakesHTTP(role) {
		r.Respond(500, "Can't map to service type "+role)
		return b.answered(c, st, n)
	}
	if ht, ok := target.(HookedTarget); ok && st.Fixed == nil {
		// A web server with plugins: its hooks run here, as its own.
		hooks, svc := ht.Hooks()
		host := r.HostEdit()
		r.Reset()
		r.Svc, r.Head, r.Conn, r.Now = svc, &b.req, c, c.Loop().Now()
		if hooks.StartWeb(r) {
			return b.answered(c, st, n)
		}
		r.SetHost(host)
	}
	b.handOff(c, st, target, r.ServeURI())
	return 0
}

// handOff gives c to target for the request just read.
func (b *base) handOff(c *engine.Conn, st *Settings, target handoff.Target, uri []byte) {
	rules := st.Rules
	if st.Fixed != nil {
		rules = nil // a front applies no HEADER rules to its own service
	}
	if b.outer != nil {
		rules = handoff.Chain(b.outer.Rules, rules)
	}
	if host := b.preq.HostEdit(); host != nil {
		rules = rules.With([]byte("Host"), host)
	}
	b.hc = handoff.Client{Base: b, Persist: b.persist(st), Rules: rules, URI: uri}
	if b.outer != nil {
		b.hc.Base = b.outer.Base
		b.hc.Hops = b.outer.Hops
		b.release() // this selector is done with c
		b.state = stClosing
	} else {
		b.state = stAway
	}
	b.svc.Stats.Handoffs.Add(1)
	b.parser.Reset()
	b.preq.Reset()
	c.SetTimeout(st.Svc.IdleTimeout)
	target.Adopt(c, &b.hc)
}

// answered sends the answer a plugin (or the selector) gave to the request
// whose head is n bytes, and returns the bytes consumed.
func (b *base) answered(c *engine.Conn, st *Settings, n int) int {
	hasBody := b.req.BodyMode() != http.BodyNone
	ka := b.persist(st) && b.req.KeepAlive() && !hasBody && !b.svc.draining.Load()
	resp := *b.preq.Response()
	b.answer(c, &resp, ka)
	b.preq.Reset()
	if !ka {
		return n // the connection closes: the rest is dropped
	}
	b.parser.Reset()
	b.requests++
	if b.outer != nil {
		// Handed here by another selector: the next request is its.
		b.release()
		b.state = stClosing
		b.outer.Base.Return(c)
		return n
	}
	c.SetTimeout(st.Svc.PersistClientIdleTimeout)
	c.Kick()
	return n
}

// answer writes a generated response; without keep-alive the connection
// closes after it.
func (b *base) answer(c *engine.Conn, resp *plugin.Response, ka bool) {
	st := b.svc.Settings()
	o := status.Options{
		ServerTokens: st.Svc.ServerTokens,
		Head:         string(b.req.Method) == "HEAD",
		KeepAlive:    ka,
	}
	if b.req.Minor == 1 {
		o.Proto = "HTTP/1.1"
	}
	if ka {
		o.KeepAliveTimeout = int(st.Svc.PersistClientIdleTimeout / time.Second)
	}
	b.buf = plugin.AppendResponse(b.buf[:0], resp, o)
	if code := resp.Status / 100; code > 0 && code < len(b.svc.Stats.Status) {
		b.svc.Stats.Status[code].Add(1)
	}
	b.svc.Stats.BytesOut.Add(int64(len(b.buf)))
	c.Write(b.buf)
	if cap(b.buf) > 16<<10 {
		b.buf = nil
	}
	if !ka {
		b.state = stClosing
		c.Close()
	}
}

// Return takes the connection back after a response (handoff.Base).
func (b *base) Return(c *engine.Conn) {
	if c.Closing() {
		return
	}
	st := b.svc.Settings()
	if st.Hooks.ReturnToBase(c) {
		return
	}
	b.state = stHead
	b.requests++
	c.SetHandler(b)
	if b.svc.draining.Load() && len(c.Inbound()) == 0 {
		b.state = stClosing
		c.Close()
		return
	}
	c.SetTimeout(st.Svc.PersistClientIdleTimeout)
	c.ResumeRead()
	c.Kick()
}

func (b *base) OnEOF(c *engine.Conn) {
	if b.state == stHead && len(c.Inbound()) > 0 && b.requests == 0 {
		b.answer(c, &plugin.Response{Status: 400, Msg: "incomplete request"}, false)
		return
	}
	b.state = stClosing
	c.Close()
}

func (b *base) OnDrain(c *engine.Conn) {}

func (b *base) OnTimeout(c *engine.Conn) {
	if b.state == stHead && len(c.Inbound()) > 0 && !c.Pending() {
		b.answer(c, &plugin.Response{Status: 408, Msg: "request head timeout"}, false)
		return
	}
	b.state = stClosing
	c.Abort(engine.ErrTimeout)
}

func (b *base) OnClose(c *engine.Conn, err error) {
	b.release()
	b.state = stClosing
	if b.timer != nil {
		b.timer.Stop()
	}
}

// DrainIdle closes the connection if it waits for a next request (graceful
// shutdown). Runs on the loop.
func (b *base) DrainIdle(c *engine.Conn) {
	if b.state == stHead && len(c.Inbound()) == 0 && !c.Pending() && !c.Young() {
		b.state = stClosing
		c.Close()
	}
}

// Describe implements engine.Describer with Perlbal's ClientHTTPBase
// description. Runs on the loop.
func (b *base) Describe(c *engine.Conn) engine.ConnInfo {
	d := make([]byte, 0, 64)
	if la := c.LocalAddr(); la.IsValid() {
		d = append(d, ": localport="...)
		d = strconv.AppendUint(d, uint64(la.Port()), 10)
	}
	state := "reading_headers"
	if b.requests > 0 && len(c.Inbound()) == 0 {
		state = "persist_wait"
	}
	d = append(d, "; reqs="...)
	d = strconv.AppendInt(d, int64(b.requests), 10)
	d = append(d, "; "...)
	d = append(d, state...)
	return engine.ConnInfo{Class: "Perlbal::ClientHTTPBase", Service: b.svc.Name, State: state, Detail: string(d)}
}
