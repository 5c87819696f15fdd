package proxy

import (
	"math"
	"time"
)

// A request body must arrive in time: client_body_timeout, plus one
// second for every client_body_min_rate bytes received (Apache
// mod_reqtimeout's body=…,MinRate=… model). Every byte resetting the idle
// timeout is not enough: a body trickled a byte a second holds its buffer
// (up to buffer_backend_connect in memory) and its backend for ever. The
// clock runs only while plb reads: it starts again after plb paused the
// body (waiting for a backend, or a backend slower than the client).

// restartBodyClock starts the body's clock now, from its byte at.
func (cl *client) restartBodyClock(at int64) {
	cl.rs.bodyClock, cl.rs.bodyClockAt, cl.bodyPaused = cl.conn.Loop().Clock(), at, false
}

// bodyResumed starts the body's clock again when plb reads the body again
// after it paused it (the backend took what it had): a client that then
// sends nothing is late in client_body_timeout, as any other.
func (cl *client) bodyResumed() {
	cl.restartBodyClock(cl.rs.bodyGot)
	cl.conn.SetTimeout(cl.bodyTimeout())
}

// bodyDeadline is when (a Loop.Clock reading) a body of which got bytes
// have arrived is late; 0: never.
func (cl *client) bodyDeadline(got int64) int64 {
	svc := cl.st.Svc
	if svc.ClientBodyTimeout <= 0 {
		return 0
	}
	rs := cl.rs
	dl := rs.bodyClock + int64(svc.ClientBodyTimeout)
	if rate := svc.ClientBodyMinRate; rate > 0 && got > rs.bodyClockAt {
		// A second per rate bytes, in whole seconds and the rest, so that
		// a body of many gigabytes does not overflow the nanoseconds.
		n := got - rs.bodyClockAt
		secs := n / rate
		if secs > math.MaxInt64/int64(time.Second)/2 {
			return 0 // centuries: no deadline to keep
		}
		dl += secs*int64(time.Second) + n%rate*int64(time.Second)/rate
	}
	return dl
}

// bodyOnTime checks a body of which got bytes have arrived against its
// deadline and sets the connection's timeout to the nearer of the idle
// timeout and the deadline. It answers 408 and returns false when the body
// is late.
func (cl *client) bodyOnTime(got int64) bool {
	if cl.bodyPaused {
		cl.restartBodyClock(got)
	}
	cl.rs.bodyGot = got
	if cl.bodyLate() {
		cl.bodyTimedOut()
		return false
	}
	cl.conn.SetTimeout(cl.bodyTimeout())
	return true
}

// bodyLate reports whether the body's deadline has passed (never while plb
// itself has paused the body).
func (cl *client) bodyLate() bool {
	if cl.bodyPaused {
		return false
	}
	dl := cl.bodyDeadline(cl.rs.bodyGot)
	return dl != 0 && cl.conn.Loop().Clock() >= dl
}

// bodyTimeout is the connection's next timeout: the idle timeout, or
// sooner the body's deadline while plb reads a body.
func (cl *client) bodyTimeout() time.Duration {
	idle := cl.idle()
	if (cl.state != clBody && cl.state != clBuffer) || cl.bodyPaused {
		return idle
	}
	dl := cl.bodyDeadline(cl.rs.bodyGot)
	if dl == 0 {
		return idle
	}
	if left := time.Duration(dl - cl.conn.Loop().Clock()); idle <= 0 || left < idle {
		return max(left, time.Millisecond)
	}
	return idle
}

// bodyTimedOut answers a late body with 408 and closes. A backend that
// has the start of the request is abandoned (not the node's failure); one
// that has begun its response leaves no room for a 408: the connection
// just closes.
func (cl *client) bodyTimedOut() {
	cl.svc.log.Info("request body too slow", "peer", cl.conn.RemoteAddr(), "got", cl.rs.bodyGot,
		"timeout", cl.st.Svc.ClientBodyTimeout, "min_rate", cl.st.Svc.ClientBodyMinRate)
	answered := false
	if be := cl.be; be != nil {
		answered = be.state >= beBody
		be.clientGone()
		cl.be = nil
	}
	cl.dropUpload()
	if answered {
		cl.setState(clClosing)
		cl.conn.Close()
		return
	}
	cl.fail(408, "request body timeout")
}
