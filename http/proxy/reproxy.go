package proxy

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/plb/plb/engine"
	"github.com/plb/plb/http"
	"github.com/plb/plb/http/handoff"
	"github.com/plb/plb/http/status"
	"github.com/plb/plb/pool"
)

// Reproxying (enable_reproxy): a backend answers with X-REPROXY-FILE,
// X-REPROXY-URL or X-REPROXY-SERVICE instead of a body, the backend
// connection is released at once, and plb serves the client from a local
// file, from the first URL that answers, or hands it to another service.
// Nothing here runs for a service without enable_reproxy.

// maxReproxyHops bounds the X-REPROXY-SERVICE hand-offs of one request
// (services reproxying to each other).
const maxReproxyHops = 8

// serviceReproxy is a service's reproxy machinery: its cache, and its own
// fetch pools when the server gave it no shared ones.
type serviceReproxy struct {
	cache    reproxyCache
	cacheMax atomic.Int64
	once     sync.Once
	own      *Reproxy
}

// manager returns the fetch pools the service uses. Safe from any
// goroutine.
func (s *Service) manager(st *Settings) *Reproxy {
	if st.Reproxy != nil {
		return st.Reproxy
	}
	s.rp.once.Do(func() { s.rp.own = NewReproxy(len(s.idle)) })
	return s.rp.own
}

// reproxyState is a client's memory for reproxying, made on its first
// request to a service with enable_reproxy and reused after.
type reproxyState struct {
	// raw is the request head as the client sent it: the fetches take
	// its Range and Host, the cache its key, a hand-off all of it.
	raw    []byte
	parser http.Parser
	req    http.RequestHead // raw parsed, once needed
	parsed bool

	// The backend's (primary) response: status, reason and the header
	// lines the client gets, less X-REPROXY-* and framing.
	status   int
	reason   []byte
	hdrs     []byte
	fields   []rpField
	expected int64 // X-REPROXY-EXPECTED-SIZE (0: none)

	urls    []reproxyURL
	cur     int          // the URL being fetched
	retried bool         // the current URL was retried on a fresh connection
	fetch   *fetchConn   // the connection fetching it
	waiting *reproxyHost // the pool the client waits in for a connection

	hc  handoff.Client // an X-REPROXY-SERVICE hand-off
	buf []byte
	// node is the node that answered, when the client's response sets
	// its sticky cookie (nil: none; a cached answer came from no node).
	node *pool.Node
}

// rpField is one kept header line, hdrs[start:end], its name ending at
// nameEnd.
type rpField struct{ start, nameEnd, end int }

func (rp *reproxyState) reset() {
	rp.parsed = false
	rp.status, rp.reason = 0, rp.reason[:0]
	rp.hdrs, rp.fields = rp.hdrs[:0], rp.fields[:0]
	rp.expected = 0
	rp.urls = rp.urls[:0]
	rp.cur, rp.retried = 0, false
	rp.fetch, rp.waiting = nil, nil
	rp.node = nil
}

// request returns the client's request head, parsed from raw.
func (rp *reproxyState) request() *http.RequestHead {
	if !rp.parsed {
		rp.parser.Reset()
		if n, err := rp.parser.ParseRequest(rp.raw, &rp.req); err != nil || n == 0 {
			rp.req = http.RequestHead{}
		}
		rp.parsed = true
	}
	return &rp.req
}

// reqHost is the Host the request names: the absolute URI's, else the field.
func reqHost(r *http.RequestHead) []byte {
	if r.AbsHost != nil {
		return r.AbsHost
	}
	return r.Get("Host")
}

// addField keeps a header line of the primary response.
func (rp *reproxyState) addField(name, value []byte) {
	f := rpField{start: len(rp.hdrs)}
	rp.hdrs = append(rp.hdrs, name...)
	f.nameEnd = len(rp.hdrs)
	rp.hdrs = append(rp.hdrs, ": "...)
	rp.hdrs = append(rp.hdrs, value...)
	rp.hdrs = append(rp.hdrs, "\r\n"...)
	f.end = len(rp.hdrs)
	rp.fields = append(rp.fields, f)
}

// savePrimary copies what the client's response keeps of r.
func (rp *reproxyState) savePrimary(r *http.ResponseHead) {
	rp.status = r.Status
	rp.reason = append(rp.reason[:0], r.Reason...)
	rp.hdrs, rp.fields = rp.hdrs[:0], rp.fields[:0]
	for i := range r.Headers {
		h := &r.Headers[i]
		if hopByHop(h.Name) || isReproxyField(h.Name) || equalFold(h.Name, "content-length") ||
			equalFold(h.Name, "transfer-encoding") {
			continue
		}
		rp.addField(h.Name, h.Value)
	}
	rp.expected, _ = parseExpectedSize(r.Get("X-Reproxy-Expected-Size"))
}

func isReproxyField(name []byte) bool {
	const p = "x-reproxy-"
	return len(name) >= len(p) && equalFold(name[:len(p)], p)
}

// appendStatusLine appends the client's status line for code: the
// primary's reason when the code is the primary's.
func (rp *reproxyState) appendStatusLine(dst []byte, minor, code int) []byte {
	var reason []byte
	if code == rp.status {
		reason = rp.reason
	}
	return appendStatusLine(dst, minor, code, reason)
}

// appendFields appends the kept header lines, less those skip names.
func (rp *reproxyState) appendFields(dst []byte, skip func(name []byte) bool) []byte {
	for _, f := range rp.fields {
		if skip != nil && skip(rp.hdrs[f.start:f.nameEnd]) {
			continue
		}
		dst = append(dst, rp.hdrs[f.start:f.end]...)
	}
	return dst
}

func isRangeField(name []byte) bool {
	return equalFold(name, "accept-ranges") || equalFold(name, "content-range")
}

// appendConn appends the client's Connection lines.
func (cl *client) appendConn(dst []byte, ka bool) []byte {
	if ka {
		return append(dst, cl.st.keepAliveHdr...)
	}
	return append(dst, "Connection: close\r\n"...)
}

// reproxyKeepAlive is whether the client keeps its connection after a
// reproxied response whose length it knows.
func (cl *client) reproxyKeepAlive() bool { return cl.wantKA && cl.bodyDone }

// reproxyRequest keeps what reproxying the request just read may need, and
// answers it from the reproxy cache when it can; it reports whether it
// did. readHead calls it for a service with enable_reproxy; r views head.
func (cl *client) reproxyRequest(head []byte, r *http.RequestHead) bool {
	if cl.rp == nil {
		cl.rp = &reproxyState{}
	}
	rp := cl.rp
	rp.reset()
	rp.raw = append(rp.raw[:0], head...)
	st := cl.st
	if st.Svc.ReproxyCacheMaxsize <= 0 || cl.bodyMode != http.BodyNone || cl.upgrade {
		return false
	}
	rc := cl.svc.reproxyCache(st)
	if rc == nil {
		return false
	}
	rp.buf = appendCacheKey(rp.buf[:0], r)
	now := cl.conn.Loop().Now()
	e := rc.get(rp.buf, now)
	if e == nil {
		return false
	}
	cl.setState(clResp)
	if ims := r.Get("If-Modified-Since"); len(ims) > 0 && e.lastMod != nil && bytes.Equal(stripIMSLength(ims), e.lastMod) {
		ka := cl.reproxyKeepAlive()
		b := rp.appendStatusLine(rp.buf[:0], int(cl.minor), 304)
		b = append(b, "Content-Length: 0\r\n"...)
		b = append(cl.appendConn(b, ka), "\r\n"...)
		rp.buf = b
		cl.countResponse(304)
		cl.write(b)
		cl.flush()
		cl.responseDone(ka)
		return true
	}
	// A 200 with Date and the cached headers, then the URLs are fetched.
	rp.status = 200
	var date [status.DateLen]byte
	rp.addField([]byte("Date"), status.AppendDate(date[:0], now))
	for _, h := range e.headers {
		rp.addField(h.Name, h.Value)
	}
	rp.urls = parseReproxyURLs(rp.urls[:0], e.urls)
	cl.reproxyTry()
	return true
}

// appendSticky appends the Set-Cookie of the node that answered, when the
// response sets its sticky cookie (rp.node).
func (rp *reproxyState) appendSticky(dst []byte, cl *client) []byte {
	if rp.node == nil || cl.st.sticky == nil {
		return dst
	}
	return cl.st.sticky.appendSetCookie(dst, rp.node, cl.conn.TLS())
}

// appendCacheKey appends "Host|URI", the reproxy cache's key.
func appendCacheKey(dst []byte, r *http.RequestHead) []byte {
	dst = append(dst, reqHost(r)...)
	dst = append(dst, '|')
	return append(dst, r.URI...)
}

// reproxyResponse takes over a backend response carrying X-REPROXY-FILE,
// -URL or -SERVICE: the backend is released at once and the client served
// from the file, the URLs or the other service. It returns the bytes of
// data used, and false (nothing done) for an ordinary response. readHead
// calls it for a service with enable_reproxy.
func (be *backend) reproxyResponse(cl *client, data []byte, n int) (int, bool) {
	r := &be.resp
	rp := cl.rp
	if rp == nil || r.Status == 101 {
		return 0, false
	}
	file, urls, svc := r.Get("X-Reproxy-File"), r.Get("X-Reproxy-Url"), r.Get("X-Reproxy-Service")
	if len(file) == 0 && len(urls) == 0 && len(svc) == 0 {
		return 0, false
	}
	rp.savePrimary(r)
	if cl.st.sticky != nil && !cl.rs.stuck(be.node) {
		rp.node = be.node
	}
	var name string
	switch {
	case len(file) > 0:
		name = string(file)
	case len(urls) > 0:
		rp.urls = parseReproxyURLs(rp.urls[:0], urls)
		if cf := r.Get("X-Reproxy-Cache-For"); len(cf) > 0 {
			if rc := cl.svc.reproxyCache(cl.st); rc != nil {
				cl.cacheReproxy(rc, r, cf, urls)
			}
		}
	default:
		name = string(svc)
	}
	used := be.releaseForReproxy(cl, data, n)
	cl.setState(clResp)
	switch {
	case len(file) > 0:
		cl.reproxyFile(name)
	case len(urls) > 0:
		cl.reproxyTry()
	default:
		cl.reproxyService(name)
	}
	return used, true
}

// releaseForReproxy ends the backend's part: it is kept for reuse when its
// response (and any small body, skipped) is complete, else closed. It
// returns the bytes of data used.
func (be *backend) releaseForReproxy(cl *client, data []byte, n int) int {
	r := &be.resp
	st := cl.st
	used := n
	keep := st.Svc.PersistBackend && be.reusable(cl, r)
	switch r.BodyMode(cl.isHEAD) {
	case http.BodyNone:
		be.cooling()
	case http.BodyLength:
		if r.ContentLength <= int64(len(data)-n) {
			used += int(r.ContentLength)
		} else {
			keep = false
		}
	default:
		keep = false
	}
	if used < len(data) {
		keep = false // bytes past the response: never the next one
		be.spokeUnasked("bytes past the end of a response")
	}
	be.kaTimeout = r.KeepAliveTimeout
	be.pool.Release(be.node)
	be.client = nil
	cl.be = nil
	if keep && !be.conn.Closing() {
		be.svc.putIdle(be, st)
	} else {
		be.conn.Close()
	}
	return used
}

// cacheReproxy stores an X-REPROXY-URL answer with X-REPROXY-CACHE-FOR.
func (cl *client) cacheReproxy(rc *reproxyCache, r *http.ResponseHead, cf, urls []byte) {
	spec, ok := parseCacheFor(cf)
	if !ok {
		return
	}
	req := cl.rp.request()
	e := &cacheEntry{
		key:     string(appendCacheKey(nil, req)),
		expires: cl.conn.Loop().Now().Add(time.Duration(spec.Secs) * time.Second),
		urls:    bytes.Clone(urls),
	}
	for _, name := range spec.Names {
		v := r.Get(string(name))
		if len(v) == 0 {
			continue
		}
		h := http.Header{Name: bytes.Clone(name), Value: bytes.Clone(v)}
		e.headers = append(e.headers, h)
		if equalFold(name, "last-modified") {
			e.lastMod = h.Value
		}
	}
	rc.set(e)
}

// reproxyAnswer sends a generated response (a reproxy failure), keeping
// the connection when it can.
func (cl *client) reproxyAnswer(code int, msg string) {
	ka := cl.reproxyKeepAlive()
	rp := cl.rp
	rp.buf = status.AppendSimple(rp.buf[:0], code, msg, cl.answerOptions(cl.st, ka))
	cl.countResponse(code)
	cl.write(rp.buf)
	cl.flush()
	cl.responseDone(ka)
}

// reproxyFile serves the file an X-REPROXY-FILE names: 404 when it is
// missing, empty, not a regular file or not of the expected size; else the
// primary response with Accept-Ranges, the file's length and one range
// honoured, the file sent with sendfile.
func (cl *client) reproxyFile(path string) {
	rp := cl.rp
	f, size := openReproxyFile(path)
	if f == nil || rp.expected > 0 && size != rp.expected {
		if f != nil {
			f.Close()
		}
		cl.reproxyAnswer(404, "")
		return
	}
	code, off, n := 200, int64(0), size
	if rg := rp.request().Get("Range"); rg != nil {
		code, off, n = http.ParseRange(rg, size)
	}
	ka := cl.reproxyKeepAlive()
	b := rp.buf[:0]
	resp := code
	if code == 416 {
		// A fresh 416, as Perlbal's: the backend's headers do not apply.
		b = rp.appendStatusLine(b, int(cl.minor), 416)
		b = http.AppendContentRange(b, 416, 0, 0, size)
		b = append(b, "Content-Length: 0\r\n"...)
	} else {
		resp = rp.status
		if resp == 204 {
			resp = 200
		}
		if code == 206 {
			resp = 206
		}
		b = rp.appendStatusLine(b, int(cl.minor), resp)
		b = rp.appendFields(b, isRangeField)
		b = append(b, "Accept-Ranges: bytes\r\n"...)
		b = http.AppendContentRange(b, code, off, n, size)
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, n, 10)
		b = append(b, "\r\n"...)
	}
	b = rp.appendSticky(b, cl)
	b = append(cl.appendConn(b, ka), "\r\n"...)
	rp.buf = b
	cl.countResponse(resp)
	cl.write(b)
	cl.flush()
	if code == 416 || cl.isHEAD || n <= 0 {
		f.Close()
	} else {
		cl.countOut(n)
		cl.conn.SendFile(f, off, n, true)
	}
	cl.responseDone(ka)
}

// openReproxyFile opens a non-empty regular file by absolute path (nil
// otherwise). O_NONBLOCK keeps a FIFO from blocking the loop; a regular
// file ignores it.
func openReproxyFile(path string) (*os.File, int64) {
	if !filepath.IsAbs(path) {
		return nil, 0
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, 0
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() <= 0 {
		f.Close()
		return nil, 0
	}
	return f, fi.Size()
}

// errReproxyHops ends a request that went through too many services.
var errReproxyHops = errors.New("proxy: too many X-REPROXY-SERVICE hand-offs")

// reproxyService hands the client to the service an X-REPROXY-SERVICE
// names, with its request (read again from the start) as it sent it:
// 404 "Vhost twiddling not configured for requested pair." when there is
// no such service. The connection comes back here after the response (or
// to the selector that handed it here).
func (cl *client) reproxyService(name string) {
	st := cl.st
	t := st.Resolve.Find(name)
	if t == nil {
		cl.reproxyAnswer(404, "Vhost twiddling not configured for requested pair.")
		return
	}
	switch role := t.Role(); {
	case cl.bodyMode != http.BodyNone:
		// The body went to the backend: it cannot be read again.
		cl.reproxyAnswer(500, "X-REPROXY-SERVICE needs a request without a body.")
		return
	case cl.ho != nil && cl.ho.Hops >= maxReproxyHops:
		cl.svc.log.Warn("reproxy", "err", errReproxyHops, "service", name)
		cl.reproxyAnswer(500, "Too many service hand-offs.")
		return
	case !handoff.TakesHTTP(role):
		cl.reproxyAnswer(500, "Can't map to service type "+role)
		return
	}
	rp := cl.rp
	c := cl.conn
	if cl.ho != nil {
		// Handed here by a selector: the target gives the connection
		// back to it, and this client is done.
		rp.hc = *cl.ho
		rp.hc.Hops++
	} else {
		rp.hc = handoff.Client{Base: cl, Persist: st.Svc.PersistClient, Hops: 1}
	}
	cl.observeLatency()
	cl.endHooks()
	cl.releaseState()
	cl.detach() // counted again if it comes back
	c.Unread(rp.raw)
	t.Adopt(c, &rp.hc)
}

// Return takes the connection back after a service that an
// X-REPROXY-SERVICE named has answered (handoff.Base). Runs on the loop.
func (cl *client) Return(c *engine.Conn) {
	if c.Closing() {
		return
	}
	c.SetHandler(cl)
	cl.svc.Stats.ClientsOpen.Add(1)
	cl.st = cl.svc.Settings()
	if cl.svc.draining.Load() && len(c.Inbound()) == 0 {
		cl.setState(clClosing)
		c.Close()
		return
	}
	cl.nextRequest()
}

// reproxyBusy reports whether a fetch connection serves the client (its
// own timeouts apply, not the client's).
func (cl *client) reproxyBusy() bool { return cl.rp != nil && cl.rp.fetch != nil }

// reproxyDrain resumes the fetch a full client paused.
func (cl *client) reproxyDrain() {
	if fc := cl.rp.fetch; fc != nil && fc.conn.Paused() {
		fc.conn.ResumeRead()
	}
}

// reproxyClose lets go of the fetch of a client that closed.
func (cl *client) reproxyClose() {
	rp := cl.rp
	rp.waiting = nil // skipped when its turn comes
	if fc := rp.fetch; fc != nil {
		rp.fetch = nil
		fc.cl = nil
		fc.state = fcDone
		fc.conn.Abort(errClientGone)
	}
}

// reproxyTry asks for a connection for the current URL, or answers 503
// when none is left.
func (cl *client) reproxyTry() {
	rp := cl.rp
	if rp.cur >= len(rp.urls) {
		cl.svc.Stats.Errors503.Add(1)
		cl.reproxyAnswer(503, "")
		return
	}
	cl.svc.manager(cl.st).request(cl.conn.Loop(), cl, &rp.urls[rp.cur])
}

// reproxyNext moves on to the next URL: the current one failed.
func (cl *client) reproxyNext() {
	if cl.conn.Closing() {
		return
	}
	rp := cl.rp
	rp.cur++
	rp.retried = false
	cl.reproxyTry()
}

// reproxyURLHead builds the client's response head for a fetched response
// r: the primary response's status and headers, with r's length, a 206 or
// 416 with r's Accept-Ranges and Content-Range, a 204 turned into 200.
func (cl *client) reproxyURLHead(r *http.ResponseHead, chunked, ka bool) []byte {
	rp := cl.rp
	code := rp.status
	partial := r.Status == 206 || r.Status == 416
	if partial {
		code = r.Status
	}
	if code == 204 {
		code = 200
	}
	ar, cr := r.Get("Accept-Ranges"), r.Get("Content-Range")
	b := rp.appendStatusLine(rp.buf[:0], int(cl.minor), code)
	b = rp.appendFields(b, func(name []byte) bool {
		return partial && (ar != nil && equalFold(name, "accept-ranges") || cr != nil && equalFold(name, "content-range"))
	})
	if r.ContentLength >= 0 && !r.Chunked {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, r.ContentLength, 10)
		b = append(b, "\r\n"...)
	}
	if partial {
		if ar != nil {
			b = appendField(b, []byte("Accept-Ranges"), ar)
		}
		if cr != nil {
			b = appendField(b, []byte("Content-Range"), cr)
		}
	}
	if chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	b = rp.appendSticky(b, cl)
	b = append(cl.appendConn(b, ka), "\r\n"...)
	rp.buf = b
	cl.countResponse(code)
	return b
}
