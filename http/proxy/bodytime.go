package proxy

import "time"

// A request body must arrive in time: client_body_timeout, plus one
// second for every client_body_min_rate bytes received (Apache
// mod_reqtimeout's body=…,MinRate=… model). Every byte resetting the idle
// timeout is not enough: a body trickled a byte a second holds its buffer
// (up to buffer_backend_connect in memory) and its backend for ever. The
// clock runs only while plb reads: it starts again after plb paused the
// body (waiting for a backend, or a backend slower than the client).

// restartBodyClock starts the body's clock now, from its byte at.
func (cl *client) restartBodyClock(at int64) {
	cl.rs.bodyClock, cl.rs.bodyClockAt, cl.bodyPaused = cl.conn.Loop().Now().UnixNano(), at, false
}

// bodyDeadline is when a body of which got bytes have arrived is late
// (ok false: no limit).
func (cl *client) bodyDeadline(got int64) (dl time.Time, ok bool) {
	svc := cl.st.Svc
	if svc.ClientBodyTimeout <= 0 {
		return time.Time{}, false
	}
	rs := cl.rs
	dl = time.Unix(0, rs.bodyClock).Add(svc.ClientBodyTimeout)
	if rate := svc.ClientBodyMinRate; rate > 0 && got > rs.bodyClockAt {
		dl = dl.Add(time.Duration((got - rs.bodyClockAt) * int64(time.Second) / rate))
	}
	return dl, true
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
	idle := cl.st.Svc.IdleTimeout
	dl, ok := cl.bodyDeadline(got)
	if !ok {
		cl.conn.SetTimeout(idle)
		return true
	}
	left := dl.Sub(cl.conn.Loop().Now())
	if left <= 0 {
		cl.bodyTimedOut()
		return false
	}
	if idle <= 0 || left < idle {
		idle = left
	}
	cl.conn.SetTimeout(idle)
	return true
}

// bodyLate reports whether the body's deadline has passed at now.
func (cl *client) bodyLate(now time.Time) bool {
	dl, ok := cl.bodyDeadline(cl.rs.bodyGot)
	return ok && !now.Before(dl)
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
