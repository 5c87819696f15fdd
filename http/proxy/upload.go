package proxy

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/plb/plb/http"
	"golang.org/x/sys/unix"
)

// Request bodies read before a backend is asked for (Perlbal's
// buffer_backend_connect and buffer_uploads).
//
// With buffer_backend_connect > 0 a request body is held in memory (the
// connection's unread input) until that many bytes, or the whole body,
// have arrived: a slow uploader holds no backend while it trickles its
// first bytes. With buffer_uploads the body is spooled to a file in
// buffer_uploads_path instead, when its Content-Length reaches
// buffer_upload_threshold_size (decided at once), or, once the memory
// buffer is full, when the upload is slower than
// buffer_upload_threshold_rate bytes/s or would take longer than
// buffer_upload_threshold_time to finish; a chunked body is always
// spooled, de-chunked, and the backend gets a Content-Length. Once the
// spool is complete its name is removed, a backend is asked for, and the
// file is sent after the head with sendfile. "Expect: 100-continue" is
// answered by plb whenever it reads the body first.

// maxHeldBody bounds the body held in memory whatever
// buffer_backend_connect says (the engine closes a connection that leaves
// too much input unread).
const maxHeldBody = 256 << 10

var continue100 = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// upload is a request body read before a backend is asked for.
type upload struct {
	start   time.Time           // when the body began to be read
	reason  string              // why it is spooled: size, rate, time or chunked ("": in memory)
	f       *os.File            // the spool
	name    string              // the spool's path until it is complete
	size    int64               // body bytes in the spool
	sc      http.ChunkedScanner // in memory, chunked: how far the body was scanned
	scanned int                 // bytes of input scanned by sc
}

// holdBody decides, for a request just parsed, whether its body is read
// before a backend is asked for; if so it moves the client to clBuffer and
// reports true. in is the input after the head. It reports false with the
// connection closing when the request cannot be served. Runs on the loop.
func (cl *client) holdBody(st *Settings, r *http.RequestHead, in []byte) bool {
	svc := st.Svc
	reason := ""
	switch {
	case cl.bodyMode == http.BodyNone:
		return false
	case cl.grpc:
		// A gRPC call's body is a stream of messages the backend answers
		// as they come (ping-pong): never held back.
		return false
	}
	switch cl.bodyMode {
	case http.BodyChunked:
		switch {
		case svc.BufferUploads:
			reason = "chunked"
		case r.Minor == 0 && len(r.Host) == 0:
			// The backend request would be HTTP/1.0, which has no
			// chunked coding: only a de-chunked spool could carry it.
			cl.fail(411, "chunked request body needs buffer_uploads")
			return false
		case svc.BufferBackendConnect <= 0:
			return false
		}
	case http.BodyLength:
		switch {
		case svc.BufferUploads && svc.BufferUploadThresholdSize > 0 && r.ContentLength >= svc.BufferUploadThresholdSize:
			reason = "size"
		case svc.BufferBackendConnect <= 0 || int64(len(in)) >= cl.bodyLeft:
			return false // nothing to wait for
		}
	}
	cl.upl = &upload{start: cl.conn.Loop().Now()}
	rs := cl.rs
	if r.Expect100 {
		cl.conn.Write(continue100)
		rs.head = dropField(rs.head, "Expect")
	}
	cl.setState(clBuffer)
	if reason != "" {
		return cl.startSpool(reason)
	}
	return true
}

// isGRPC reports whether r is a gRPC call (its content-type
// application/grpc, or application/grpc+proto and the like).
func isGRPC(r *http.RequestHead) bool {
	ct := r.Get("Content-Type")
	return len(ct) >= 16 && equalFold(ct[:16], "application/grpc") && (len(ct) == 16 || ct[16] == '+' || ct[16] == ';')
}

// bufferBody reads body bytes in state clBuffer. Runs on the loop.
func (cl *client) bufferBody(data []byte) int {
	u := cl.upl
	if got := int64(len(data)) + u.size; !cl.bodyOnTime(got) {
		return len(data)
	}
	if u.f != nil {
		return cl.spoolBody(data)
	}
	switch cl.bodyMode {
	case http.BodyLength:
		if int64(len(data)) >= cl.bodyLeft {
			return cl.bodyHeld(data[:cl.bodyLeft])
		}
	case http.BodyChunked:
		for u.scanned < len(data) {
			n, _, done, err := u.sc.Scan(data[u.scanned:])
			if err != nil {
				cl.uploadFail(400, errMsg(err))
				return len(data)
			}
			u.scanned += n
			if done {
				return cl.bodyHeld(data[:u.scanned])
			}
			if n == 0 {
				break
			}
		}
		if limit := cl.st.Svc.MaxChunkedRequestSize; limit > 0 && int64(u.scanned) > limit {
			cl.uploadFail(413, "request body too large")
			return len(data)
		}
	}
	svc := cl.st.Svc
	if int64(len(data)) < min(svc.BufferBackendConnect, maxHeldBody) {
		return 0 // go on reading
	}
	if svc.BufferUploads && cl.bodyMode == http.BodyLength {
		if reason := spoolReason(svc.BufferUploadThresholdRate, svc.BufferUploadThresholdTime,
			int64(len(data)), cl.bodyLeft-int64(len(data)), cl.conn.Loop().Now().Sub(u.start)); reason != "" {
			if !cl.startSpool(reason) {
				return len(data)
			}
			return cl.spoolBody(data)
		}
	}
	cl.bodyHeld(nil)
	return 0
}

// spoolReason decides, once the memory buffer is full, whether an upload
// of which read bytes came in elapsed, with left to come, is spooled:
// "rate" when slower than rate bytes/s, "time" when the rest would take
// longer than limit at that speed (a zero threshold is no check).
func spoolReason(rate int64, limit time.Duration, read, left int64, elapsed time.Duration) string {
	secs := max(elapsed, time.Millisecond).Seconds()
	speed := float64(read) / secs
	reason := ""
	if rate > 0 && speed < float64(rate) {
		reason = "rate"
	}
	if limit > 0 && speed > 0 && float64(left)/speed > limit.Seconds() {
		reason = "time"
	}
	return reason
}

// bodyHeld asks for a backend once the held body is complete (body: for a
// request that may be resent it is taken from the input, and the bytes
// used are returned) or the memory buffer full (body nil); otherwise the
// body then streams from the connection's input.
func (cl *client) bodyHeld(body []byte) int {
	cl.upl = nil
	n := 0
	if body != nil && cl.retrySafe {
		n = cl.holdWhole(body)
	}
	cl.setState(clWait)
	cl.conn.PauseRead()
	cl.connectBackend()
	return n
}

// holdArrived holds the body of a request that may be resent and arrived
// whole with its head (in), when it has a Content-Length of at most
// maxHeldBody, and returns the bytes it took from the input. Other bodies
// stream from the input as they are (no copy: they are never sent twice).
func (cl *client) holdArrived(in []byte) int {
	if !cl.retrySafe || cl.bodyMode != http.BodyLength || cl.bodyLeft > maxHeldBody || int64(len(in)) < cl.bodyLeft {
		return 0
	}
	return cl.holdWhole(in[:cl.bodyLeft])
}

// holdWhole keeps the body of a request that may be resent, all in
// memory, with the request: it goes out with the head in one write, and
// again if the request is resent (resend). It returns len(body).
func (cl *client) holdWhole(body []byte) int {
	cl.rs.body = append(cl.rs.body[:0], body...)
	cl.bodyLeft = 0
	cl.bodyDone = true
	cl.svc.Stats.BytesIn.Add(int64(len(body)))
	return len(body)
}

// startSpool creates the spool file, named as Perlbal names it:
// <buffer_uploads_path>/<service>-<listen>-client-<fd>-<random>. With
// PERLBAL_DEBUG_BUFFERED_UPLOADS set the backend request tells why.
func (cl *client) startSpool(reason string) bool {
	st := cl.st
	u := cl.upl
	u.reason = reason
	dir := st.Svc.BufferUploadsPath
	if dir == "" {
		dir = st.spoolDir()
	}
	name := filepath.Join(dir, cl.svc.Name+"-"+st.Svc.Listen+"-client-"+
		strconv.Itoa(cl.conn.Fd())+"-"+strconv.FormatUint(uint64(rand.Uint32()), 10))
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_TRUNC, 0o600)
	if err != nil {
		cl.svc.log.Error("can't create the upload spool", "err", err)
		cl.uploadFail(500, "can't buffer the upload")
		return false
	}
	u.f, u.name = f, name
	if cl.bodyMode == http.BodyChunked {
		cl.rs.head = dropField(cl.rs.head, "Transfer-Encoding")
	} else if st.DebugUploads {
		cl.rs.head = appendHeadField(cl.rs.head, "X-PERLBAL-BUFFERED-UPLOAD-REASON", reason)
	}
	return true
}

// spoolBody writes body bytes to the spool, de-chunking a chunked body.
func (cl *client) spoolBody(data []byte) int {
	u := cl.upl
	used := 0
	switch cl.bodyMode {
	case http.BodyLength:
		used = int(min(int64(len(data)), cl.bodyLeft))
		if !cl.spoolWrite(data[:used]) {
			return len(data)
		}
		cl.bodyLeft -= int64(used)
		cl.bodyDone = cl.bodyLeft == 0
	case http.BodyChunked:
		for used < len(data) && !cl.bodyDone {
			n, payload, done, err := cl.rs.chunks.Scan(data[used:])
			if err != nil {
				cl.uploadFail(400, errMsg(err))
				return len(data)
			}
			used += n
			if len(payload) > 0 && !cl.spoolWrite(payload) {
				return len(data)
			}
			if limit := cl.st.Svc.MaxChunkedRequestSize; limit > 0 && u.size > limit {
				cl.uploadFail(413, "request body too large")
				return len(data)
			}
			cl.bodyDone = done
			if n == 0 {
				break
			}
		}
	}
	cl.svc.Stats.BytesIn.Add(int64(used))
	if cl.bodyDone {
		cl.spoolDone()
	}
	return used
}

func (cl *client) spoolWrite(p []byte) bool {
	u := cl.upl
	n, err := u.f.Write(p)
	u.size += int64(n)
	if err != nil {
		cl.svc.log.Error("upload spool write failed", "err", err)
		cl.uploadFail(500, "can't buffer the upload")
		return false
	}
	return true
}

// spoolDone asks for a backend once the whole body is in the spool. The
// name goes at once: the open file is all that is needed from now on.
func (cl *client) spoolDone() {
	u := cl.upl
	os.Remove(u.name)
	u.name = ""
	if cl.bodyMode == http.BodyChunked {
		cl.rs.head = appendHeadField(cl.rs.head, "Content-Length", strconv.FormatInt(u.size, 10))
	}
	cl.bodyLeft = 0
	cl.setState(clWait)
	cl.connectBackend()
}

// sendSpool queues the spooled body after the request head on be (the
// head is written already). The connection gets its own descriptor of
// the file, so that a retry can send it again and the client's copy can
// close whenever the client is done. Runs on the loop.
func (cl *client) sendSpool(be *backend) {
	u := cl.upl
	if u == nil || u.f == nil || u.size == 0 {
		return
	}
	fd, err := unix.FcntlInt(u.f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil { // out of descriptors: not the node's fault
		be.clientGone()
		cl.be = nil
		cl.svc.Stats.Errors503.Add(1)
		cl.uploadFail(503, "out of resources")
		return
	}
	be.conn.SendFile(os.NewFile(uintptr(fd), "upload"), 0, u.size, true)
}

// uploadFail answers with an error and removes the spool at once (the
// connection may linger a while before it closes).
func (cl *client) uploadFail(code int, msg string) {
	cl.dropUpload()
	cl.fail(code, msg)
}

// dropUpload closes the spool and removes its name if it is still there
// (the client went away before the body was complete). Runs on the loop.
func (cl *client) dropUpload() {
	u := cl.upl
	if u == nil {
		return
	}
	cl.upl = nil
	if u.f != nil {
		u.f.Close()
	}
	if u.name != "" {
		if err := os.Remove(u.name); err != nil && !errors.Is(err, os.ErrNotExist) {
			cl.svc.log.Warn("can't remove the upload spool", "err", err)
		}
	}
}

// uploadStateName is the client's state in Perlbal's words while it reads
// the body first.
func (cl *client) uploadStateName() string {
	if cl.upl != nil && cl.upl.f != nil {
		return "buffering_upload"
	}
	return "buffering_request"
}

// dropField removes the fields named name from a request head built by
// appendBackendRequest (CRLF lines, the request line first, an empty line
// last).
func dropField(head []byte, name string) []byte {
	i := 0
	first := true
	for i < len(head) {
		j := bytes.Index(head[i:], crlf)
		if j <= 0 {
			break // the empty line, or no line end
		}
		line := head[i : i+j]
		if !first && len(line) > len(name) && line[len(name)] == ':' && equalFold(line[:len(name)], name) {
			head = append(head[:i], head[i+j+2:]...)
			continue
		}
		first = false
		i += j + 2
	}
	return head
}

// appendHeadField adds a field at the end of a complete head.
func appendHeadField(head []byte, name, value string) []byte {
	head = head[:len(head)-2] // the empty line
	head = append(head, name...)
	head = append(head, ": "...)
	head = append(head, value...)
	return append(head, "\r\n\r\n"...)
}
