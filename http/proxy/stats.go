package proxy

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/plb/plb/engine"
	"github.com/plb/plb/http"
)

// NumLatencyBounds is the number of bounded buckets of Latency.
const NumLatencyBounds = 18

// LatencyBounds returns the upper bounds of the latency histogram's
// buckets, in increasing order.
func LatencyBounds() [NumLatencyBounds]time.Duration {
	return [...]time.Duration{
		100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
		time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
		10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
		100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
		time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
		30 * time.Second, 60 * time.Second,
	}
}

// Latency is a histogram of request durations with one shard per loop, so
// that loops never write to the same cache line. Observe runs on the loop;
// Snapshot is safe from any goroutine.
type Latency struct {
	shards []latencyShard
}

type latencyShard struct {
	counts [NumLatencyBounds + 1]atomic.Int64 // the last: above every bound
	sum    atomic.Int64                       // nanoseconds
	_      [64]byte                           // keep shards off each other's cache lines
}

func (h *Latency) init(nloops int) { h.shards = make([]latencyShard, nloops) }

// Observe records one duration on loop id's shard. Runs on that loop.
func (h *Latency) Observe(id int, d time.Duration) {
	if id < 0 || id >= len(h.shards) {
		return
	}
	s := &h.shards[id]
	bounds := LatencyBounds()
	i := 0
	for i < len(bounds) && d > bounds[i] {
		i++
	}
	s.counts[i].Add(1)
	s.sum.Add(int64(d))
}

// LatencySnapshot is a histogram read at one moment.
type LatencySnapshot struct {
	// Counts[i] is the number of durations in bucket i (not cumulative):
	// at most LatencyBounds()[i] and above the previous bound; the last
	// entry counts those above every bound.
	Counts [NumLatencyBounds + 1]int64
	Count  int64
	Sum    time.Duration
}

// Snapshot adds the shards up. Safe from any goroutine.
func (h *Latency) Snapshot() LatencySnapshot {
	var s LatencySnapshot
	for i := range h.shards {
		sh := &h.shards[i]
		for j := range sh.counts {
			n := sh.counts[j].Load()
			s.Counts[j] += n
			s.Count += n
		}
		s.Sum += time.Duration(sh.sum.Load())
	}
	return s
}

// setState moves the client to state s, keeping Stats.Waiting (clients
// waiting for a backend) true.
func (cl *client) setState(s clientState) {
	if was := cl.state == clWait; was != (s == clWait) {
		if was {
			cl.svc.Stats.Waiting.Add(-1)
			cl.unlinkWait()
			cl.waitSince = 0
		} else {
			cl.svc.Stats.Waiting.Add(1)
			cl.waitSince = cl.conn.Loop().Clock()
			cl.linkWait()
		}
	}
	cl.state = s
}

// observeLatency records the time since the request head was parsed, once
// per request.
func (cl *client) observeLatency() {
	if cl.reqStart == 0 {
		return
	}
	cl.writeAccessLog()
	l := cl.conn.Loop()
	cl.svc.Stats.Latency.Observe(l.ID(), time.Duration(l.Clock()-cl.reqStart))
	cl.reqStart = 0
}

// ready ends the backend's pending (connecting or verifying) period.
func (be *backend) ready() {
	if be.pending {
		be.pending = false
		be.svc.Stats.Connecting.Add(-1)
	}
}

// maxWhere bounds the request description kept for the console.
const maxWhere = 200

// appendWhere appends "host/uri" of r, cut at maxWhere bytes.
func appendWhere(dst []byte, r *http.RequestHead) []byte {
	host := r.Host
	if len(host) == 0 {
		host = []byte("unknown")
	}
	dst = append(dst, host...)
	dst = append(dst, r.Path...)
	if len(dst) > maxWhere {
		dst = dst[:maxWhere]
	}
	return dst
}

// Describe implements engine.Describer with Perlbal's ClientProxy
// description. Runs on the loop.
func (cl *client) Describe(c *engine.Conn) engine.ConnInfo {
	d := make([]byte, 0, 128)
	if la := c.LocalAddr(); la.IsValid() {
		d = append(d, ": localport="...)
		d = strconv.AppendUint(d, uint64(la.Port()), 10)
	}
	d = append(d, "; reqs="...)
	d = strconv.AppendInt(d, int64(cl.requests), 10)
	state := cl.stateName(c)
	d = append(d, "; "...)
	d = append(d, state...)
	if cl.rs != nil && len(cl.rs.where) > 0 {
		d = append(d, "; http://"...)
		d = append(d, cl.rs.where...)
	}
	if cl.be != nil {
		d = append(d, "; backend="...)
		d = append(d, cl.be.node.Name...)
	} else if n := c.Buffered(); n > 0 {
		d = append(d, "; write_buf_size="...)
		d = strconv.AppendInt(d, int64(n), 10)
	}
	if cl.state == clBody && cl.bodyMode == http.BodyLength {
		d = append(d, "; waiting_for="...)
		d = strconv.AppendInt(d, cl.bodyLeft, 10)
	}
	return engine.ConnInfo{
		Class: "Perlbal::ClientProxy", Service: cl.svc.Name, State: state,
		Detail: string(d), Since: cl.conn.Loop().ClockTime(cl.waitSince), OpenFile: cl.spool != nil,
	}
}

// stateName is the client's state in Perlbal's words where one exists.
func (cl *client) stateName(c *engine.Conn) string {
	switch cl.state {
	case clHead:
		if c.Pending() {
			return "draining_res"
		}
		if cl.requests > 0 && len(c.Inbound()) == 0 {
			return "persist_wait"
		}
		return "reading_headers"
	case clWait:
		return "wait_backend"
	case clBody:
		return "backend_req_sent"
	case clResp:
		if cl.be != nil && cl.be.state == beBody {
			return "xfer_res"
		}
		if cl.be == nil && c.Pending() {
			return "draining_res"
		}
		return "wait_res"
	case clTunnel:
		return "tunnel"
	case clBuffer:
		return cl.uploadStateName()
	case clDelay:
		return "throttled"
	}
	if c.Pending() {
		return "draining_res"
	}
	return "closed"
}

// Describe implements engine.Describer with Perlbal's BackendHTTP
// description. Runs on the loop.
func (be *backend) Describe(c *engine.Conn) engine.ConnInfo {
	d := make([]byte, 0, 96)
	if la := c.LocalAddr(); la.IsValid() {
		d = append(d, ": localport="...)
		d = strconv.AppendUint(d, uint64(la.Port()), 10)
	}
	if be.client != nil {
		d = append(d, "; client="...)
		d = strconv.AppendInt(d, int64(be.client.conn.Fd()), 10)
	}
	d = append(d, "; uses="...)
	d = strconv.AppendInt(d, int64(be.uses), 10)
	state := be.stateName(c)
	d = append(d, "; "...)
	d = append(d, state...)
	if st := be.svc.Settings(); st.Svc.VerifyBackend {
		d = append(d, "; has_attention="...)
		if be.state >= beReady {
			d = append(d, "yes"...)
		} else {
			d = append(d, "no"...)
		}
	}
	return engine.ConnInfo{Class: "Perlbal::BackendHTTP", Service: be.svc.Name, State: state, Detail: string(d)}
}

func (be *backend) stateName(c *engine.Conn) string {
	switch be.state {
	case beConnecting:
		return "connecting"
	case beVerifying:
		return "verifying_backend"
	case beReady, beIdle:
		return "bored"
	case beHead:
		if c.Pending() {
			return "sending_req"
		}
		return "wait_res"
	case beBody:
		return "xfer_res"
	case beTunnel:
		return "tunnel"
	}
	return "closed"
}
