package plugin

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strconv"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
	"github.com/plb/plb/http"
	"github.com/plb/plb/http/handoff"
	"github.com/plb/plb/http/status"
)

// Request is what a hook sees of a request, and how it acts on it. The
// role fills the exported fields; a role reuses one Request per connection
// (Reset), so a hook must not keep it, nor the views it holds, past the
// call.
type Request struct {
	// Svc is the service whose plugins run.
	Svc *config.Service
	// Head is the parsed request head (views into the connection's input).
	Head *http.RequestHead
	// Conn is the client connection (nil in tests that set PeerAddr and
	// LocalPort).
	Conn *engine.Conn
	// PeerAddr and LocalPort stand in for Conn's addresses when set.
	PeerAddr  netip.Addr
	LocalPort uint16
	// TLS reports a connection that arrived over TLS.
	TLS bool
	// Now is the loop's clock.
	Now time.Time
	// Exists reports whether a service exists, for selectors (nil: every
	// name exists).
	Exists func(name string) bool
	// Assigned is when a backend was given the request (reverse_proxy).
	Assigned time.Time
	// Queue describes the service's queues of clients waiting for a
	// backend (reverse_proxy).
	Queue QueueInfo
	// Resp is the backend's response head in backend_response_received
	// and modify_response_headers (reverse_proxy; views valid during the
	// call only), nil elsewhere.
	Resp *http.ResponseHead
	// Log is the service's logger (nil: nothing is logged; see Logger).
	Log *slog.Logger

	kept      []keptValue
	answered  bool
	resp      Response
	target    string
	high, low bool
	serveURI  []byte
	hostEdit  []byte // a selector's new Host for the request
	delay     time.Duration
	delayed   bool // Delay was called
	resumed   bool // handled again after a Delay
	dropped   bool
	status    int    // modify_response_headers: the client's status
	prepend   []byte // modify_response_headers: bytes before the body
}

// QueueInfo describes the clients waiting for a backend.
type QueueInfo struct {
	Count, HighCount int           // clients waiting, normal and high priority
	Age, HighAge     time.Duration // how long the oldest of each has waited
}

// Reset clears what the hooks set, keeping nothing of the last request.
func (r *Request) Reset() { *r = Request{} }

// ResetResumed readies r for a request a hook postponed (Delay), when its
// time has come: as Reset, but what Keep stored stays and Resumed is true.
func (r *Request) ResetResumed() {
	kept := r.kept
	*r = Request{kept: kept, resumed: true}
}

// Logger is Log, or a logger that discards everything.
func (r *Request) Logger() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Delay postpones the request by d (reverse_proxy, start_proxy_request
// only; the hook then returns true): the client's connection is left
// unread, and after d, on a timer of the connection's event loop, the
// request is handled again from its first hook, with Resumed true, unless
// the client left meanwhile. This is how Perlbal's Throttle puts a request
// on the back burner.
func (r *Request) Delay(d time.Duration) {
	r.delayed, r.delay = true, max(d, 0)
}

// Delayed reports whether a hook postponed the request, and by how long.
func (r *Request) Delayed() (time.Duration, bool) { return r.delay, r.delayed }

// Resumed reports whether the request is handled again after a Delay.
func (r *Request) Resumed() bool { return r.resumed }

// Drop closes the client's connection without an answer (the hook then
// returns true), as Perlbal's $client->close.
func (r *Request) Drop() { r.dropped = true }

// Dropped reports whether a hook dropped the connection.
func (r *Request) Dropped() bool { return r.dropped }

// SetStatus gives the client's response another status, with its
// standard reason phrase (modify_response_headers, reverse_proxy).
func (r *Request) SetStatus(code int) { r.status = code }

// StatusOverride is the status SetStatus set (0: the backend's).
func (r *Request) StatusOverride() int { return r.status }

// PrependBody sends b before the response body (Perlbal's prepend_body;
// modify_response_headers, reverse_proxy). The hook adjusts
// Content-Length itself. Not for a HEAD request or a response without a
// body; in a chunked body, b goes out as one chunk.
func (r *Request) PrependBody(b []byte) { r.prepend = b }

// Prepended is what PrependBody set.
func (r *Request) Prepended() []byte { return r.prepend }

// ClearResponseEdits forgets SetStatus and PrependBody (before the
// modify_response_headers hooks run).
func (r *Request) ClearResponseEdits() { r.status, r.prepend = 0, nil }

// Peer is the address of the TCP peer.
func (r *Request) Peer() netip.Addr {
	if r.PeerAddr.IsValid() || r.Conn == nil {
		return r.PeerAddr.Unmap()
	}
	return r.Conn.RemoteAddr().Addr().Unmap()
}

// Port is the local port the client connected to.
func (r *Request) Port() uint16 {
	if r.LocalPort != 0 || r.Conn == nil {
		return r.LocalPort
	}
	return r.Conn.LocalAddr().Port()
}

// Trusted reports whether the peer is trusted to send X-Forwarded-For
// (always_trusted, or an address in trusted_upstream_proxies).
func (r *Request) Trusted() bool {
	if r.Svc == nil {
		return false
	}
	if r.Svc.AlwaysTrusted {
		return true
	}
	peer := r.Peer()
	for _, p := range r.Svc.TrustedUpstreamProxies {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// ObservedIP is Perlbal's observed_ip_string: the first address of
// X-Forwarded-For when the peer is trusted; invalid otherwise (or when
// the field is missing or not an address).
func (r *Request) ObservedIP() netip.Addr {
	if r.Head == nil || !r.Trusted() {
		return netip.Addr{}
	}
	v := r.Head.Get("X-Forwarded-For")
	if i := bytes.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	a, err := netip.ParseAddr(string(bytes.TrimSpace(v)))
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// Host is the request's host as sent in the Host field (for an
// absolute-form URI, the URI's host, lower-cased).
func (r *Request) Host() []byte {
	if r.Head == nil {
		return nil
	}
	return r.Head.Host
}

// URI is the request target in origin form ("/path?query").
func (r *Request) URI() []byte {
	if r.Head == nil {
		return nil
	}
	return r.Head.Path
}

type keptValue struct{ key, val any }

// Keep stores val under key for the rest of the request: the hooks that
// run later for the same request (backend_response_received,
// modify_response_headers, which see no Head) find it with Kept. Keys
// should be values of a type of the plugin's own, as context keys are.
func (r *Request) Keep(key, val any) {
	for i := range r.kept {
		if r.kept[i].key == key {
			r.kept[i].val = val
			return
		}
	}
	r.kept = append(r.kept, keptValue{key, val})
}

// Kept returns what Keep stored under key, or nil.
func (r *Request) Kept(key any) any {
	for _, kv := range r.kept {
		if kv.key == key {
			return kv.val
		}
	}
	return nil
}

// Respond answers the request with a generated page: "<h1>code -
// text</h1>\n" followed by msg (trusted HTML), as Perlbal's send_response.
func (r *Request) Respond(code int, msg string) {
	r.answered = true
	r.resp = Response{Status: code, Msg: msg}
}

// RespondFull answers with the given header lines ("Name: value") and body,
// as Perlbal's send_full_response: Content-Length is added unless a header
// gives it.
func (r *Request) RespondFull(code int, header []string, body []byte) {
	r.answered = true
	r.resp = Response{Status: code, Header: header, Body: body, Full: true}
}

// Answered reports whether a hook answered the request.
func (r *Request) Answered() bool { return r.answered }

// Response is the answer a hook gave.
func (r *Request) Response() *Response { return &r.resp }

// SetTarget names the service a selector hands the request to.
func (r *Request) SetTarget(name string) { r.target = name }

// Target is the service a selector chose ("" for none).
func (r *Request) Target() string { return r.target }

// SetHost makes a selector change the request's Host field on its way to
// the target (Vhosts' /__using/).
func (r *Request) SetHost(host []byte) { r.hostEdit = host }

// HostEdit is the Host a selector set (nil: unchanged).
func (r *Request) HostEdit() []byte { return r.hostEdit }

// ServeURI is the URI a start_serve_request hook set (nil: unchanged).
func (r *Request) ServeURI() []byte { return r.serveURI }

// SetQueueLow gives the request low priority (AccessControl's queue_low).
func (r *Request) SetQueueLow() { r.low = true }

// HighPriority and LowPriority report the request's priority as the
// priority hooks decided it.
func (r *Request) HighPriority() bool { return r.high }

// LowPriority reports low priority.
func (r *Request) LowPriority() bool { return r.low }

// Response is a hook's answer.
type Response struct {
	Status int
	Msg    string   // a generated page's message
	Full   bool     // Header and Body instead of a generated page
	Header []string // "Name: value" lines
	Body   []byte
}

// AppendResponse appends the whole response to dst: a generated page as
// status.AppendSimple makes it, or a full one with o's status line, Server
// and Connection lines.
func AppendResponse(dst []byte, resp *Response, o status.Options) []byte {
	if !resp.Full {
		return status.AppendSimple(dst, resp.Status, resp.Msg, o)
	}
	dst = status.AppendStatusLine(dst, o.Protocol(), resp.Status)
	hasLen := false
	for _, h := range resp.Header {
		if len(h) >= 15 && handoff.EqualFold([]byte(h[:15]), []byte("content-length:")) {
			if !status.BodyAllowed(resp.Status) {
				continue
			}
			hasLen = true
		}
		dst = append(dst, h...)
		dst = append(dst, "\r\n"...)
	}
	if !hasLen && status.BodyAllowed(resp.Status) {
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, int64(len(resp.Body)), 10)
		dst = append(dst, "\r\n"...)
	}
	dst = o.AppendTail(dst)
	if !o.Head && status.BodyAllowed(resp.Status) {
		dst = append(dst, resp.Body...)
	}
	return dst
}

// HeaderEdits collects header changes a hook asks for: removals first,
// then insertions, each of which replaces a field of the same name.
type HeaderEdits struct {
	handoff.Rules
}

// Reset forgets every edit, keeping the memory.
func (e *HeaderEdits) Reset() {
	clear(e.Removes)
	clear(e.Inserts)
	e.Removes = e.Removes[:0]
	e.Inserts = e.Inserts[:0]
}

// Empty reports whether there is no edit.
func (e *HeaderEdits) Empty() bool { return len(e.Removes) == 0 && len(e.Inserts) == 0 }

// Set replaces the field name with value (both are copied).
func (e *HeaderEdits) Set(name string, value []byte) {
	n := []byte(name)
	for i := range e.Inserts {
		if handoff.EqualFold(e.Inserts[i].Name, n) {
			e.Inserts[i].Value = append([]byte(nil), value...)
			return
		}
	}
	e.Removes = append(e.Removes, n)
	e.Inserts = append(e.Inserts, handoff.Header{Name: n, Value: append([]byte(nil), value...)})
}

// Remove drops the field name.
func (e *HeaderEdits) Remove(name string) {
	n := []byte(name)
	for i := 0; i < len(e.Inserts); i++ {
		if handoff.EqualFold(e.Inserts[i].Name, n) {
			e.Inserts = append(e.Inserts[:i], e.Inserts[i+1:]...)
			i--
		}
	}
	e.Removes = append(e.Removes, n)
}
