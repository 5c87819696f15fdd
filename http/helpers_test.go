package http

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"
)

// reqResult is a copy of everything ParseRequest returns, comparable with
// == and printable, so that two ways of feeding a head can be compared.
type reqResult struct {
	N         int
	Status    int    // of the *Error; 0 when none
	Msg       string // of the *Error
	Method    string
	URI       string
	Path      string
	AbsHost   string
	Host      string
	Upgrade   string
	Major     int
	Minor     int
	Headers   string // "Name: Value\n" lines
	CL        int64
	Chunked   bool
	Close     bool
	KA        bool
	ConnUp    bool
	Expect100 bool
	HeadLen   int
	KeepAlive bool
	Body      BodyMode
}

func snapReq(n int, err error, h *RequestHead) reqResult {
	r := reqResult{N: n}
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			panic(fmt.Sprintf("error %v (%T) is not an *Error", err, err))
		}
		r.Status, r.Msg = e.Status, e.Msg
		return r
	}
	if n == 0 {
		return r
	}
	r.Method, r.URI, r.Path = string(h.Method), string(h.URI), string(h.Path)
	r.AbsHost, r.Host, r.Upgrade = string(h.AbsHost), string(h.Host), string(h.Upgrade)
	r.Major, r.Minor = h.Major, h.Minor
	r.Headers = headerLines(h.Headers)
	r.CL, r.Chunked = h.ContentLength, h.Chunked
	r.Close, r.KA, r.ConnUp = h.ConnClose, h.ConnKeepAlive, h.ConnUpgrade
	r.Expect100, r.HeadLen = h.Expect100, h.HeadLen
	r.KeepAlive, r.Body = h.KeepAlive(), h.BodyMode()
	return r
}

type respResult struct {
	N          int
	Status     int // of the *Error
	Msg        string
	Major      int
	Minor      int
	Code       int
	Reason     string
	Headers    string
	CL         int64
	Chunked    bool
	Close      bool
	KA         bool
	KATimeout  int
	HeadLen    int
	Body       BodyMode
	BodyHEAD   BodyMode
	KeepAlive  bool
	UntilClose bool
}

func snapResp(n int, err error, h *ResponseHead) respResult {
	r := respResult{N: n}
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			panic(fmt.Sprintf("error %v (%T) is not an *Error", err, err))
		}
		r.Status, r.Msg = e.Status, e.Msg
		return r
	}
	if n == 0 {
		return r
	}
	r.Major, r.Minor, r.Code, r.Reason = h.Major, h.Minor, h.Status, string(h.Reason)
	r.Headers = headerLines(h.Headers)
	r.CL, r.Chunked, r.Close, r.KA = h.ContentLength, h.Chunked, h.ConnClose, h.ConnKeepAlive
	r.KATimeout, r.HeadLen = h.KeepAliveTimeout, h.HeadLen
	r.Body, r.BodyHEAD = h.BodyMode(false), h.BodyMode(true)
	r.KeepAlive, r.UntilClose = h.KeepAlive(false), h.untilClose
	return r
}

func headerLines(hs []Header) string {
	var b strings.Builder
	for _, h := range hs {
		b.Write(h.Name)
		b.WriteString(": ")
		b.Write(h.Value)
		b.WriteByte('\n')
	}
	return b.String()
}

// parseReqOnce parses a copy of in with a single call.
func parseReqOnce(in string, l Limits) reqResult {
	p := Parser{Limits: l}
	var h RequestHead
	n, err := p.ParseRequest([]byte(in), &h)
	return snapReq(n, err, &h)
}

// parseReqSplit feeds a copy of in to one Parser in growing prefixes, step
// bytes more each time, and returns the first answer (or the last call's
// "need more").
func parseReqSplit(in string, l Limits, step int) reqResult {
	p := Parser{Limits: l}
	var h RequestHead
	buf := []byte(in)
	for k := 0; ; {
		k += step
		if k > len(buf) {
			k = len(buf)
		}
		n, err := p.ParseRequest(buf[:k], &h)
		if n > 0 || err != nil || k == len(buf) {
			return snapReq(n, err, &h)
		}
	}
}

func parseRespOnce(in string, l Limits) respResult {
	p := Parser{Limits: l}
	var h ResponseHead
	n, err := p.ParseResponse([]byte(in), &h)
	return snapResp(n, err, &h)
}

func parseRespSplit(in string, l Limits, step int) respResult {
	p := Parser{Limits: l}
	var h ResponseHead
	buf := []byte(in)
	for k := 0; ; {
		k += step
		if k > len(buf) {
			k = len(buf)
		}
		n, err := p.ParseResponse(buf[:k], &h)
		if n > 0 || err != nil || k == len(buf) {
			return snapResp(n, err, &h)
		}
	}
}

// within reports whether v is a view inside buf (an empty v always is).
func within(buf, v []byte) bool {
	if len(v) == 0 {
		return true
	}
	b := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(v)))
	return p >= b && p+uintptr(len(v)) <= b+uintptr(len(buf))
}

// scanChunked feeds in to a ChunkedScanner in pieces of step bytes (as a
// proxy would: unconsumed bytes stay at the front of its buffer) and
// returns the payload, the bytes consumed, whether it is done, and the
// error.
func scanChunked(in []byte, step int) (payload []byte, consumed int, done bool, err error) {
	var s ChunkedScanner
	have := 0 // bytes of in "received"
	for {
		if consumed == have {
			if have == len(in) {
				return payload, consumed, false, nil
			}
			have = min(have+step, len(in))
		}
		buf := in[consumed:have]
		n, p, d, e := s.Scan(buf)
		if n > len(buf) || !within(buf[:n], p) {
			panic(fmt.Sprintf("Scan(%q) = %d, %q: payload outside consumed bytes", buf, n, p))
		}
		if e != nil {
			return payload, consumed + n, false, e
		}
		payload = append(payload, p...)
		consumed += n
		if d {
			return payload, consumed, true, nil
		}
		if n == 0 && len(buf) > 0 {
			panic(fmt.Sprintf("Scan(%q) made no progress", buf))
		}
	}
}
