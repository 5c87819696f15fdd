package http

import (
	"strings"
	"testing"
)

type respCase struct {
	name   string
	in     string
	limits Limits
	status int // expected *Error status; 0: accepted (or incomplete)
	msg    string
	check  func(t *testing.T, r respResult)
}

var respCases = []respCase{
	{name: "simple", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello", check: func(t *testing.T, r respResult) {
		want(t, r.Code, 200)
		want(t, r.Reason, "OK")
		want(t, r.CL, int64(5))
		want(t, r.Body, BodyLength)
		want(t, r.BodyHEAD, BodyNone)
		want(t, r.KeepAlive, true)
		want(t, r.N, len("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n"))
		want(t, r.Headers, "Content-Length: 5\nContent-Type: text/plain\n")
	}},
	{name: "LF only", in: "HTTP/1.0 404 Not Found\nServer: x\n\n", check: func(t *testing.T, r respResult) {
		want(t, r.Code, 404)
		want(t, r.Reason, "Not Found")
		want(t, r.Body, BodyUntilClose)
		want(t, r.KeepAlive, false)
	}},
	{name: "no reason", in: "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", check: func(t *testing.T, r respResult) {
		want(t, r.Reason, "")
		want(t, r.Body, BodyLength)
	}},
	{name: "empty reason", in: "HTTP/1.1 200 \r\n\r\n", check: func(t *testing.T, r respResult) {
		want(t, r.Reason, "")
	}},
	{name: "reason with spaces and obs-text", in: "HTTP/1.1 500 Internal\tServer Erreur \xe9\r\n\r\n", check: func(t *testing.T, r respResult) {
		want(t, r.Reason, "Internal\tServer Erreur \xe9")
	}},
	{name: "leading CRLF skipped", in: "\r\nHTTP/1.1 204 No Content\r\n\r\n", check: func(t *testing.T, r respResult) {
		want(t, r.Code, 204)
		want(t, r.Body, BodyNone)
		want(t, r.HeadLen, 2+len("HTTP/1.1 204 No Content\r\n\r\n"))
	}},
	{name: "304 has no body", in: "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", check: func(t *testing.T, r respResult) {
		want(t, r.Body, BodyNone)
		want(t, r.CL, int64(100))
		want(t, r.KeepAlive, true)
	}},
	{name: "100 continue", in: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", check: func(t *testing.T, r respResult) {
		want(t, r.Code, 100)
		want(t, r.Body, BodyNone)
		want(t, r.N, len("HTTP/1.1 100 Continue\r\n\r\n"))
	}},
	{name: "101 switching", in: "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", check: func(t *testing.T, r respResult) {
		want(t, r.Body, BodyNone)
	}},
	{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", check: func(t *testing.T, r respResult) {
		want(t, r.Chunked, true)
		want(t, r.Body, BodyChunked)
		want(t, r.BodyHEAD, BodyNone)
		want(t, r.KeepAlive, true)
	}},
	{name: "gzip, chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", check: func(t *testing.T, r respResult) {
		want(t, r.Body, BodyChunked)
	}},
	{name: "TE gzip reads until close", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", check: func(t *testing.T, r respResult) {
		want(t, r.Chunked, false)
		want(t, r.Body, BodyUntilClose)
		want(t, r.KeepAlive, false)
	}},
	{name: "TE chunked, gzip reads until close", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", check: func(t *testing.T, r respResult) {
		want(t, r.Body, BodyUntilClose)
	}},
	{name: "TE identity ignored", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 3\r\n\r\n", check: func(t *testing.T, r respResult) {
		want(t, r.Body, BodyLength)
		want(t, r.CL, int64(3))
	}},
	{name: "TE in HTTP/1.0 reads until close", in: "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n", check: func(t *testing.T, r respResult) {
		want(t, r.Body, BodyUntilClose)
		want(t, r.KeepAlive, false)
	}},
	{name: "no length reads until close", in: "HTTP/1.1 200 OK\r\n\r\n", check: func(t *testing.T, r respResult) {
		want(t, r.Body, BodyUntilClose)
		want(t, r.KeepAlive, false)
	}},
	{name: "HTTP/1.0 keep-alive", in: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 1\r\n\r\n", check: func(t *testing.T, r respResult) {
		want(t, r.KA, true)
		want(t, r.KATimeout, 5)
		want(t, r.KeepAlive, true)
	}},
	{name: "keep-alive timeout forms", in: "HTTP/1.1 200 OK\r\nKeep-Alive: max=3, Timeout = \"7\"\r\n\r\n", check: func(t *testing.T, r respResult) {
		want(t, r.KATimeout, 7)
	}},
	{name: "keep-alive timeout huge", in: "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=99999999999999999999999\r\n\r\n", check: func(t *testing.T, r respResult) {
		want(t, r.KATimeout, 1<<31-1)
	}},
	{name: "keep-alive timeout junk", in: "HTTP/1.1 200 OK\r\nKeep-Alive: timeouts=3, timeout=x\r\n\r\n", check: func(t *testing.T, r respResult) {
		want(t, r.KATimeout, 0)
	}},
	{name: "close", in: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", check: func(t *testing.T, r respResult) {
		want(t, r.Close, true)
		want(t, r.KeepAlive, false)
	}},
	{name: "obs-fold joined", in: "HTTP/1.1 200 OK\r\nX-Fold: a \r\n  b\r\n\tc\r\nY: d\r\n\r\n", check: func(t *testing.T, r respResult) {
		want(t, r.Headers, "X-Fold: a b c\nY: d\n")
	}},
	{name: "obs-fold onto empty value", in: "HTTP/1.1 200 OK\r\nX:\r\n b\r\n\r\n", check: func(t *testing.T, r respResult) {
		want(t, r.Headers, "X: b\n")
	}},
	{name: "obs-fold of nothing", in: "HTTP/1.1 200 OK\r\nX: a\r\n \r\n\r\n", check: func(t *testing.T, r respResult) {
		want(t, r.Headers, "X: a\n")
	}},
	{name: "obs-fold LF only", in: "HTTP/1.1 200 OK\nX: a\n b\n\n", check: func(t *testing.T, r respResult) {
		want(t, r.Headers, "X: a b\n")
	}},
	{name: "obs-fold Content-Length", in: "HTTP/1.1 200 OK\r\nContent-Length:\r\n 7\r\n\r\n", check: func(t *testing.T, r respResult) {
		want(t, r.CL, int64(7))
	}},
	{name: "status 999", in: "HTTP/1.1 999 Odd\r\n\r\n", check: func(t *testing.T, r respResult) {
		want(t, r.Code, 999)
	}},
	{name: "HTTP/1.1 minor 9", in: "HTTP/1.9 200 OK\r\nContent-Length: 0\r\n\r\n", check: func(t *testing.T, r respResult) {
		want(t, r.Minor, 9)
	}},
	{name: "incomplete", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"},

	{name: "CL and TE", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400, msg: "Content-Length with Transfer-Encoding"},
	{name: "CL and TE gzip", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\n", status: 400},
	{name: "chunked twice", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", status: 400},
	{name: "TE bad token", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chun ked\r\n\r\n", status: 400},
	{name: "differing CL", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\n", status: 400},
	{name: "negative CL", in: "HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\n", status: 400, msg: "Content-Length < 0"},
	{name: "fold before first header", in: "HTTP/1.1 200 OK\r\n X: a\r\n\r\n", status: 400, msg: "whitespace before the first header field"},
	{name: "fold with NUL", in: "HTTP/1.1 200 OK\r\nX: a\r\n b\x00\r\n\r\n", status: 400},
	{name: "NUL in value", in: "HTTP/1.1 200 OK\r\nX: \x00\r\n\r\n", status: 400},
	{name: "bare CR in value", in: "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", status: 400},
	{name: "space before colon", in: "HTTP/1.1 200 OK\r\nX : a\r\n\r\n", status: 400},
	{name: "no colon", in: "HTTP/1.1 200 OK\r\nX\r\n\r\n", status: 400},
	{name: "two-digit status", in: "HTTP/1.1 20 OK\r\n\r\n", status: 400},
	{name: "four-digit status", in: "HTTP/1.1 2000 OK\r\n\r\n", status: 400},
	{name: "status 099", in: "HTTP/1.1 099 OK\r\n\r\n", status: 400},
	{name: "status letters", in: "HTTP/1.1 abc OK\r\n\r\n", status: 400},
	{name: "double space", in: "HTTP/1.1  200 OK\r\n\r\n", status: 400},
	{name: "no space after status", in: "HTTP/1.1 200OK\r\n\r\n", status: 400},
	{name: "HTTP/2.0", in: "HTTP/2.0 200 OK\r\n\r\n", status: 505},
	{name: "not HTTP", in: "ICY 200 OK\r\n\r\n", status: 400},
	{name: "short line", in: "HTTP/1.1\r\n\r\n", status: 400},
	{name: "lower-case version", in: "http/1.1 200 OK\r\n\r\n", status: 400},
	{name: "CTL in reason", in: "HTTP/1.1 200 O\x01K\r\n\r\n", status: 400},
	{name: "bare CR in reason", in: "HTTP/1.1 200 O\rK\r\n\r\n", status: 400, msg: "bare CR"},
	{name: "too many headers", limits: Limits{MaxHeaders: 1}, in: "HTTP/1.1 200 OK\r\nA: b\r\nC: d\r\n\r\n", status: 431},
	{name: "head too large", limits: Limits{MaxHeadBytes: 30}, in: "HTTP/1.1 200 OK\r\nServer: abcdefghijklmn", status: 431},
	{name: "long line is not a URI", limits: Limits{MaxURIBytes: 4}, in: "HTTP/1.1 200 OK\r\n\r\n", check: func(t *testing.T, r respResult) {
		want(t, r.Code, 200)
	}},
}

func TestParseResponse(t *testing.T) {
	for _, tc := range respCases {
		t.Run(tc.name, func(t *testing.T) {
			r := parseRespOnce(tc.in, tc.limits)
			if r.Status != tc.status {
				t.Fatalf("status %d (%q), want %d", r.Status, r.Msg, tc.status)
			}
			if tc.msg != "" && r.Msg != tc.msg {
				t.Errorf("msg %q, want %q", r.Msg, tc.msg)
			}
			if tc.status == 0 && tc.check != nil {
				if r.N == 0 {
					t.Fatal("head not complete")
				}
				want(t, r.N, r.HeadLen)
				tc.check(t, r)
			}
			for _, step := range []int{1, 2, 5} {
				if s := parseRespSplit(tc.in, tc.limits, step); s != r {
					t.Errorf("in steps of %d:\n%+v\nall at once:\n%+v", step, s, r)
				}
			}
		})
	}
}

func TestResponseAfterContinue(t *testing.T) {
	buf := []byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
	var p Parser
	var h ResponseHead
	n, err := p.ParseResponse(buf, &h)
	if err != nil || h.Status != 100 {
		t.Fatal(n, err, h.Status)
	}
	buf = buf[n:]
	n, err = p.ParseResponse(buf, &h)
	if err != nil || h.Status != 201 {
		t.Fatal(n, err, h.Status)
	}
	want(t, string(buf[n:]), "ok")
	want(t, string(h.Get("content-length")), "2")
	want(t, h.Get("X") == nil, true)
}

func TestResponseViewsInBuffer(t *testing.T) {
	for _, tc := range respCases {
		buf := []byte(tc.in)
		p := Parser{Limits: tc.limits}
		var h ResponseHead
		n, err := p.ParseResponse(buf, &h)
		if n == 0 || err != nil {
			continue
		}
		head := buf[:n]
		if !within(head, h.Reason) {
			t.Errorf("%s: reason not inside the head", tc.name)
		}
		for _, f := range h.Headers {
			if !within(head, f.Name) || !within(head, f.Value) {
				t.Errorf("%s: header %q not inside the head", tc.name, f.Name)
			}
		}
		if !strings.Contains(tc.in, "\n ") && !strings.Contains(tc.in, "\n\t") && string(buf) != tc.in {
			t.Errorf("%s: buffer modified without obs-fold", tc.name)
		}
	}
}
