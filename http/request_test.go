package http

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

type reqCase struct {
	name   string
	in     string
	limits Limits
	status int    // expected *Error status; 0: accepted (or incomplete)
	msg    string // expected Msg when non-empty
	check  func(t *testing.T, r reqResult)
}

const host = "Host: example.com\r\n"

var reqCases = []reqCase{
	// Accepted heads.
	{name: "simple", in: "GET /index.html HTTP/1.1\r\n" + host + "\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.Method, "GET")
		want(t, r.URI, "/index.html")
		want(t, r.Path, "/index.html")
		want(t, r.Host, "example.com")
		want(t, r.AbsHost, "")
		want(t, r.Major*10+r.Minor, 11)
		want(t, r.CL, int64(-1))
		want(t, r.KeepAlive, true)
		want(t, r.Body, BodyNone)
		want(t, r.Headers, "Host: example.com\n")
	}},
	{name: "LF only", in: "GET / HTTP/1.1\nHost: a\nX: y\n\n", check: func(t *testing.T, r reqResult) {
		want(t, r.Headers, "Host: a\nX: y\n")
		want(t, r.HeadLen, len("GET / HTTP/1.1\nHost: a\nX: y\n\n"))
	}},
	{name: "mixed line endings", in: "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\n", check: func(t *testing.T, r reqResult) {
		want(t, r.Headers, "Host: a\nX: y\n")
	}},
	{name: "LF then CRLF terminator", in: "GET / HTTP/1.0\n\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.HeadLen, 17)
	}},
	{name: "no headers HTTP/1.0", in: "GET / HTTP/1.0\r\n\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.Headers, "")
		want(t, r.KeepAlive, false)
	}},
	{name: "leading CRLF skipped", in: "\r\nPOST / HTTP/1.1\r\n" + host + "\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.Method, "POST")
		want(t, r.HeadLen, 2+len("POST / HTTP/1.1\r\n"+host+"\r\n"))
	}},
	{name: "leading empty lines skipped", in: "\n\r\n\nGET / HTTP/1.0\r\n\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.HeadLen, 4+len("GET / HTTP/1.0\r\n\r\n"))
	}},
	{name: "only empty lines", in: "\r\n\r\n\r\n"},
	{name: "incomplete", in: "GET / HTTP/1.1\r\nHost: a\r\n"},
	{name: "incomplete after CR", in: "GET / HTTP/1.1\r\nHost: a\r\n\r"},
	{name: "body not consumed", in: "POST /x HTTP/1.1\r\n" + host + "Content-Length: 5\r\n\r\nhello", check: func(t *testing.T, r reqResult) {
		want(t, r.N, len("POST /x HTTP/1.1\r\n"+host+"Content-Length: 5\r\n\r\n"))
		want(t, r.CL, int64(5))
		want(t, r.Body, BodyLength)
	}},
	{name: "CL 0", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: 0\r\n\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.CL, int64(0))
		want(t, r.Body, BodyNone)
	}},
	{name: "CL list of equal values", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: 5, 5\r\n\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.CL, int64(5))
	}},
	{name: "CL identical duplicates", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: 5\r\ncontent-length:  5 \r\n\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.CL, int64(5))
	}},
	{name: "CL max int64", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: 9223372036854775807\r\n\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.CL, int64(1<<63-1))
	}},
	{name: "chunked", in: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.Chunked, true)
		want(t, r.CL, int64(-1))
		want(t, r.Body, BodyChunked)
	}},
	{name: "chunked case-insensitive", in: "POST / HTTP/1.1\r\n" + host + "transfer-encoding: ChunKed\r\n\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.Chunked, true)
	}},
	{name: "TE chunked with OWS and case", in: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding:  ChunKed \r\n\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.Chunked, true)
	}},
	{name: "HTTP/1.0 keep-alive", in: "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.KA, true)
		want(t, r.KeepAlive, true)
	}},
	{name: "HTTP/1.1 close", in: "GET / HTTP/1.1\r\n" + host + "Connection: close\r\n\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.Close, true)
		want(t, r.KeepAlive, false)
	}},
	{name: "connection tokens over fields", in: "GET / HTTP/1.0\r\nConnection: foo, keep-alive\r\nConnection: ,CLOSE\r\n\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.KA, true)
		want(t, r.Close, true)
		want(t, r.KeepAlive, false)
	}},
	{name: "websocket upgrade", in: "GET /ws HTTP/1.1\r\n" + host + "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.ConnUp, true)
		want(t, r.Upgrade, "websocket")
	}},
	{name: "expect 100-continue", in: "PUT / HTTP/1.1\r\n" + host + "Expect: 100-Continue\r\nContent-Length: 10\r\n\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.Expect100, true)
	}},
	{name: "value whitespace trimmed", in: "GET / HTTP/1.1\r\n" + host + "X-A: \t a  b \t\r\nX-B:\r\nX-C:c\r\n\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.Headers, "Host: example.com\nX-A: a  b\nX-B: \nX-C: c\n")
	}},
	{name: "obs-text in value", in: "GET / HTTP/1.1\r\n" + host + "X: caf\xc3\xa9\x80\xff\r\n\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.Headers, "Host: example.com\nX: caf\xc3\xa9\x80\xff\n")
	}},
	{name: "token method", in: "M-SEARCH * HTTP/1.1\r\n" + host + "\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.Method, "M-SEARCH")
		want(t, r.URI, "*")
	}},
	{name: "HTTP/1.2 is 1.x", in: "GET / HTTP/1.2\r\n" + host + "\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.Minor, 2)
		want(t, r.KeepAlive, true)
	}},
	{name: "empty Host allowed", in: "GET / HTTP/1.1\r\nHost:\r\n\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.Host, "")
	}},
	{name: "IPv6 Host", in: "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.Host, "[::1]:8080")
	}},
	{name: "absolute URI", in: "GET http://Example.COM:8080/p?q=1 HTTP/1.1\r\nHost: other\r\n\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.URI, "http://Example.COM:8080/p?q=1")
		want(t, r.AbsHost, "Example.COM:8080")
		want(t, r.Host, "example.com")
		want(t, r.Path, "/p?q=1")
	}},
	{name: "absolute URI without path", in: "GET HTTP://example.com HTTP/1.0\r\n\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.Host, "example.com")
		want(t, r.Path, "/")
	}},
	{name: "absolute https URI", in: "GET https://a.example:443/x HTTP/1.1\r\nHost: b\r\n\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.Host, "a.example")
		want(t, r.Path, "/x")
	}},
	{name: "absolute URI IPv6", in: "GET http://[::1]:81/ HTTP/1.0\r\n\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.Host, "[::1]")
		want(t, r.AbsHost, "[::1]:81")
	}},
	{name: "absolute URI empty port", in: "GET http://h:/ HTTP/1.0\r\n\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.Host, "h")
	}},
	{name: "scheme-like path", in: "GET /ftp://h/ HTTP/1.1\r\nHost: x\r\n\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.Host, "x")
		want(t, r.Path, "/ftp://h/")
	}},
	{name: "absolute URI without slashes", in: "GET http:x HTTP/1.1\r\nHost: x\r\n\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.Host, "x")
		want(t, r.Path, "http:x")
	}},
	{name: "absolute URI http:// alone", in: "GET http:// HTTP/1.1\r\nHost: x\r\n\r\n", status: 400},
	{name: "CONNECT authority form", in: "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", check: func(t *testing.T, r reqResult) {
		want(t, r.URI, "example.com:443")
	}},
	{name: "obs-text in URI", in: "GET /caf\xc3\xa9 HTTP/1.0\r\n\r\n"},
	{name: "header count at limit", limits: Limits{MaxHeaders: 2}, in: "GET / HTTP/1.1\r\n" + host + "A: b\r\n\r\n"},
	{name: "head at limit", limits: Limits{MaxHeadBytes: 37}, in: "GET / HTTP/1.1\r\n" + host + "\r\n"},
	{name: "URI at limit", limits: Limits{MaxURIBytes: 4}, in: "GET /abc HTTP/1.0\r\n\r\n"},

	// Smuggling.
	{name: "CL and TE", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400, msg: "Content-Length with Transfer-Encoding"},
	{name: "TE and CL", in: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", status: 400, msg: "Content-Length with Transfer-Encoding"},
	{name: "differing CL", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", status: 400, msg: "differing Content-Length values"},
	{name: "differing CL list", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: 5, 6\r\n\r\n", status: 400, msg: "differing Content-Length values"},
	{name: "negative CL", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: -1\r\n\r\n", status: 400, msg: "Content-Length < 0"},
	{name: "CL not a number", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: abc\r\n\r\n", status: 400, msg: "invalid Content-Length"},
	{name: "CL with sign", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: +5\r\n\r\n", status: 400},
	{name: "CL empty", in: "POST / HTTP/1.1\r\n" + host + "Content-Length:\r\n\r\n", status: 400},
	{name: "CL empty element", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: 5,\r\n\r\n", status: 400},
	{name: "CL two numbers", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: 5 5\r\n\r\n", status: 400},
	{name: "CL hex", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: 0x5\r\n\r\n", status: 400},
	{name: "CL overflow", in: "POST / HTTP/1.1\r\n" + host + "Content-Length: 9223372036854775808\r\n\r\n", status: 400, msg: "Content-Length too large"},
	// Only one Transfer-Encoding field holding only chunked is read:
	// anything else is read differently by some backend (issue 12).
	{name: "TE gzip alone", in: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip\r\n\r\n", status: 501, msg: "Transfer-Encoding other than chunked not implemented"},
	{name: "TE chunked then gzip", in: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, gzip\r\n\r\n", status: 501},
	{name: "TE identity", in: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: identity\r\n\r\n", status: 501},
	{name: "TE gzip then chunked", in: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip, chunked\r\n\r\n", status: 501},
	{name: "TE identity then chunked", in: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: identity, chunked\r\n\r\n", status: 501},
	{name: "TE foo then chunked", in: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: foo, chunked\r\n\r\n", status: 501},
	{name: "TE over two fields", in: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", status: 501},
	{name: "TE chunked trailing comma", in: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked,\r\n\r\n", status: 400, msg: "Transfer-Encoding other than one field holding chunked"},
	{name: "TE leading comma", in: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: , chunked\r\n\r\n", status: 400},
	{name: "TE second empty line", in: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nTransfer-Encoding:\r\n\r\n", status: 400},
	{name: "TE empty line first", in: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding:\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400},
	{name: "TE empty", in: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding:\r\n\r\n", status: 400},
	{name: "TE chunked twice", in: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400, msg: "Transfer-Encoding chunked applied more than once"},
	{name: "TE chunked with parameter", in: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked;q=1\r\n\r\n", status: 400},
	{name: "TE not a token", in: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: \"chunked\"\r\n\r\n", status: 400},
	{name: "TE in HTTP/1.0", in: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400},
	{name: "TE in HTTP/1.0 allowed", in: "PUT /f HTTP/1.0\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\nExpect: 100-continue\r\n\r\n",
		limits: Limits{ChunkedHTTP10: true}, check: func(t *testing.T, r reqResult) {
			want(t, r.Chunked, true)
			want(t, r.Body, BodyChunked)
			want(t, r.KeepAlive, false) // closes after the message
			want(t, r.Expect100, true)
		}},
	{name: "TE in HTTP/1.0 allowed, with CL", in: "PUT /f HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
		limits: Limits{ChunkedHTTP10: true}, status: 400},
	{name: "TE in HTTP/1.0 allowed, not chunked", in: "PUT /f HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n",
		limits: Limits{ChunkedHTTP10: true}, status: 501},
	{name: "obs-fold", in: "GET / HTTP/1.1\r\n" + host + "X: a\r\n b\r\n\r\n", status: 400, msg: "obs-fold (header line starting with whitespace)"},
	{name: "obs-fold tab", in: "GET / HTTP/1.1\r\n" + host + "X: a\r\n\tb\r\n\r\n", status: 400},
	{name: "whitespace before first header", in: "GET / HTTP/1.1\r\n " + host + "\r\n", status: 400},
	{name: "NUL in value", in: "GET / HTTP/1.1\r\n" + host + "X: a\x00b\r\n\r\n", status: 400, msg: "invalid character in header value"},
	{name: "bare CR in value", in: "GET / HTTP/1.1\r\n" + host + "X: a\rb\r\n\r\n", status: 400, msg: "bare CR"},
	{name: "bare CR ending value", in: "GET / HTTP/1.1\r\n" + host + "X: a\r\rY: b\r\n\r\n", status: 400, msg: "bare CR"},
	{name: "CTL in value", in: "GET / HTTP/1.1\r\n" + host + "X: a\x01b\r\n\r\n", status: 400},
	{name: "DEL in value", in: "GET / HTTP/1.1\r\n" + host + "X: a\x7fb\r\n\r\n", status: 400},
	{name: "space before colon", in: "GET / HTTP/1.1\r\n" + host + "Content-Length : 5\r\n\r\n", status: 400, msg: "whitespace between header name and colon"},
	{name: "tab before colon", in: "GET / HTTP/1.1\r\n" + host + "X\t: 5\r\n\r\n", status: 400, msg: "whitespace between header name and colon"},
	{name: "empty name", in: "GET / HTTP/1.1\r\n" + host + ": v\r\n\r\n", status: 400, msg: "empty header name"},
	{name: "bad char in name", in: "GET / HTTP/1.1\r\n" + host + "X(y): v\r\n\r\n", status: 400, msg: "invalid character in header name"},
	{name: "non-ASCII name", in: "GET / HTTP/1.1\r\n" + host + "X\xc3\xa9: v\r\n\r\n", status: 400},
	{name: "no colon", in: "GET / HTTP/1.1\r\n" + host + "Xyz\r\n\r\n", status: 400, msg: "header line without colon"},
	{name: "bare CR in name", in: "GET / HTTP/1.1\r\n" + host + "X\ry: v\r\n\r\n", status: 400, msg: "bare CR"},
	{name: "bare CR line", in: "GET / HTTP/1.1\r\n" + host + "\rX: v\r\n\r\n", status: 400, msg: "bare CR"},

	// Request line.
	{name: "bad method char", in: "G(ET / HTTP/1.1\r\n" + host + "\r\n", status: 400, msg: "invalid method"},
	{name: "method only", in: "GET\r\n\r\n", status: 400},
	{name: "leading space", in: " GET / HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "leading bare CR", in: "\rGET / HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "double space after method", in: "GET  / HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "double space before version", in: "GET /  HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "space in URI", in: "GET /a b HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "tab separator", in: "GET\t/ HTTP/1.1\r\n" + host + "\r\n", status: 400},
	{name: "trailing space", in: "GET / HTTP/1.1 \r\n" + host + "\r\n", status: 400},
	{name: "CTL in URI", in: "GET /a\x01 HTTP/1.1\r\n" + host + "\r\n", status: 400, msg: "invalid character in URI"},
	{name: "HTTP/0.9", in: "GET /\r\n\r\n", status: 400, msg: "missing HTTP version (HTTP/0.9 is not supported)"},
	{name: "HTTP/2.0", in: "GET / HTTP/2.0\r\n" + host + "\r\n", status: 505},
	{name: "h2 preface", in: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", status: 505},
	{name: "HTTP/0.9 versioned", in: "GET / HTTP/0.9\r\n\r\n", status: 505},
	{name: "two-digit minor", in: "GET / HTTP/1.10\r\n" + host + "\r\n", status: 400, msg: "malformed HTTP version"},
	{name: "lower-case version", in: "GET / http/1.1\r\n" + host + "\r\n", status: 400},
	{name: "short version", in: "GET / HTTP/1\r\n" + host + "\r\n", status: 400},
	{name: "empty version", in: "GET / \r\n" + host + "\r\n", status: 400},
	{name: "no Host in 1.1", in: "GET / HTTP/1.1\r\n\r\n", status: 400, msg: "HTTP/1.1 request without Host"},
	{name: "no Host in absolute-form 1.1", in: "GET http://a/ HTTP/1.1\r\n\r\n", status: 400},
	{name: "two Hosts", in: "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", status: 400, msg: "more than one Host header"},
	{name: "bad Host", in: "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", status: 400, msg: "invalid Host"},
	{name: "Host with userinfo", in: "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", status: 400},
	{name: "other scheme", in: "GET ftp://h/ HTTP/1.1\r\nHost: x\r\n\r\n", status: 400, msg: "absolute URI scheme is not http or https"},
	{name: "absolute URI userinfo", in: "GET http://u@a/ HTTP/1.0\r\n\r\n", status: 400, msg: "invalid absolute URI"},
	{name: "absolute URI query without path", in: "GET http://a?q HTTP/1.0\r\n\r\n", status: 400},
	{name: "absolute URI empty host", in: "GET http:///p HTTP/1.0\r\n\r\n", status: 400},
	{name: "absolute URI bad port", in: "GET http://a:8x/ HTTP/1.0\r\n\r\n", status: 400},
	{name: "absolute URI open bracket", in: "GET http://[::1/ HTTP/1.0\r\n\r\n", status: 400},
	{name: "absolute URI junk after bracket", in: "GET http://[::1]x/ HTTP/1.0\r\n\r\n", status: 400},
	{name: "absolute URI long upper-case host", in: "GET http://" + strings.Repeat("A", 300) + "/ HTTP/1.0\r\n\r\n", status: 400},

	// Limits.
	{name: "too many headers", limits: Limits{MaxHeaders: 2}, in: "GET / HTTP/1.1\r\n" + host + "A: b\r\nC: d\r\n\r\n", status: 431, msg: "too many header fields"},
	{name: "head too large", limits: Limits{MaxHeadBytes: 36}, in: "GET / HTTP/1.1\r\n" + host + "\r\n", status: 431, msg: "head too large"},
	{name: "head too large, incomplete", limits: Limits{MaxHeadBytes: 20}, in: "GET / HTTP/1.1\r\nX: 0123456789", status: 431},
	{name: "empty lines count", limits: Limits{MaxHeadBytes: 20}, in: strings.Repeat("\r\n", 10) + "GET", status: 431},
	{name: "default head limit", in: "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", 100<<10), status: 431},
	{name: "URI too long", limits: Limits{MaxURIBytes: 4}, in: "GET /abcd HTTP/1.0\r\n\r\n", status: 414, msg: "URI too long"},
	{name: "URI too long, incomplete", limits: Limits{MaxURIBytes: 4}, in: "GET /abcd", status: 414},
	{name: "URI too long, line incomplete at CR", limits: Limits{MaxURIBytes: 8}, in: "GET /abcdefgh\r", status: 414},
	{name: "URI at max, line at CR", limits: Limits{MaxURIBytes: 12}, in: "GET /abc HTT\r"},
	{name: "URI too long, head incomplete", limits: Limits{MaxURIBytes: 4}, in: "GET /abcd HTTP/1.0\r\nX: y\r\n", status: 414},
	{name: "method without space too long", limits: Limits{MaxURIBytes: 4}, in: "GETGET", status: 414},
	{name: "URI limit beats bad method", limits: Limits{MaxURIBytes: 4}, in: "G(ET /abcde HTTP/1.0\r\n\r\n", status: 414},
	{name: "default URI limit", in: "GET /" + strings.Repeat("a", 16<<10) + " HTTP/1.0\r\n\r\n", status: 414},
}

func want[T comparable](t *testing.T, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("got %#v, want %#v", got, want)
	}
}

func TestParseRequest(t *testing.T) {
	for _, tc := range reqCases {
		t.Run(tc.name, func(t *testing.T) {
			r := parseReqOnce(tc.in, tc.limits)
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
			if tc.status == 0 && tc.check == nil && r.N == 0 && strings.Contains(tc.name, "limit") {
				t.Fatal("head not complete")
			}
			// Every way of splitting the input gives the same answer.
			for _, step := range []int{1, 2, 3, 7} {
				if s := parseReqSplit(tc.in, tc.limits, step); s != r {
					t.Errorf("in steps of %d:\n%+v\nall at once:\n%+v", step, s, r)
				}
			}
		})
	}
}

func TestParseRequestDoesNotModifyBuffer(t *testing.T) {
	for _, tc := range reqCases {
		buf := []byte(tc.in)
		var p Parser
		var h RequestHead
		p.Limits = tc.limits
		p.ParseRequest(buf, &h)
		if string(buf) != tc.in {
			t.Errorf("%s: buffer modified", tc.name)
		}
	}
}

func TestParseRequestViewsInBuffer(t *testing.T) {
	for _, tc := range reqCases {
		buf := []byte(tc.in)
		p := Parser{Limits: tc.limits}
		var h RequestHead
		n, err := p.ParseRequest(buf, &h)
		if n == 0 || err != nil {
			continue
		}
		head := buf[:n]
		for _, v := range [][]byte{h.Method, h.URI, h.AbsHost, h.Upgrade} {
			if !within(head, v) {
				t.Errorf("%s: %q not inside the head", tc.name, v)
			}
		}
		if !within(head, h.Host) && !within(h.hostBuf[:], h.Host) {
			t.Errorf("%s: Host %q not inside the head", tc.name, h.Host)
		}
		if !within(head, h.Path) && !within(h.slash[:], h.Path) {
			t.Errorf("%s: Path %q not inside the head", tc.name, h.Path)
		}
		for _, f := range h.Headers {
			if !within(head, f.Name) || !within(head, f.Value) {
				t.Errorf("%s: header %q not inside the head", tc.name, f.Name)
			}
		}
	}
}

// TestParserNeverRescans checks that a head fed one byte at a time is
// searched for its end once: the resume offset is never more than the two
// bytes after a '\n' behind the end of what was fed.
func TestParserNeverRescans(t *testing.T) {
	in := []byte("GET /" + strings.Repeat("x", 300) + " HTTP/1.1\r\n" + host +
		strings.Repeat("X-Long: "+strings.Repeat("v", 100)+"\r\n", 20) + "\r\n")
	p := Parser{Limits: Limits{MaxURIBytes: 100}}
	var h RequestHead
	for k := 1; k <= len(in); k++ {
		n, err := p.ParseRequest(in[:k], &h)
		if err != nil {
			if k < 5+100 {
				t.Fatalf("at %d: %v", k, err)
			}
			want(t, err.(*Error).Status, 414)
			return
		}
		if n > 0 {
			t.Fatal("URI limit not enforced")
		}
		if p.next < k-2 {
			t.Fatalf("at %d: resume offset %d", k, p.next)
		}
	}
}

func TestParserReuse(t *testing.T) {
	var p Parser
	var h RequestHead
	reqs := []string{
		"GET /a HTTP/1.1\r\nHost: a\r\nX: 1\r\nY: 2\r\n\r\n",
		"POST /b HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
		"GET http://X/ HTTP/1.0\r\n\r\n",
		"GET /c HTTP/1.1\r\nHost: c\r\n\r\n",
	}
	for _, in := range reqs {
		n, err := p.ParseRequest([]byte(in), &h)
		if n == 0 || err != nil {
			t.Fatalf("%q: %d %v", in, n, err)
		}
		if got, want := snapReq(n, err, &h), parseReqOnce(in, Limits{}); got != want {
			t.Errorf("%q reused head:\n%+v\nfresh:\n%+v", in, got, want)
		}
	}
	// A parse left half-way is discarded by Reset; a shorter buffer
	// than last time starts over too.
	if n, err := p.ParseRequest([]byte("GET /x HTTP/1.1\r\nHo"), &h); n != 0 || err != nil {
		t.Fatal(n, err)
	}
	p.Reset()
	if n, err := p.ParseRequest([]byte(reqs[0]), &h); n != len(reqs[0]) || err != nil {
		t.Fatal(n, err)
	}
	p.ParseRequest([]byte("GET /x HTTP/1.1\r\nHost: abcdef"), &h)
	if n, err := p.ParseRequest([]byte(reqs[3]), &h); n != len(reqs[3]) || err != nil {
		t.Fatal(n, err)
	}
	// After an error too.
	if _, err := p.ParseRequest([]byte("BAD\r\n\r\n"), &h); err == nil {
		t.Fatal("no error")
	}
	if n, err := p.ParseRequest([]byte(reqs[3]), &h); n != len(reqs[3]) || err != nil {
		t.Fatal(n, err)
	}
}

func TestPipelined(t *testing.T) {
	in := []byte("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n\r\nGET /3 HTTP/1.1\nHost: a\n\n")
	var p Parser
	var h RequestHead
	var uris []string
	for len(in) > 0 {
		n, err := p.ParseRequest(in, &h)
		if n == 0 || err != nil {
			t.Fatal(n, err)
		}
		uris = append(uris, string(h.URI))
		in = in[n:]
	}
	want(t, strings.Join(uris, " "), "/1 /2 /3")
}

func TestGet(t *testing.T) {
	in := "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\nx-forwarded-for: 5.6.7.8\r\nCookie:\r\n\r\n"
	var p Parser
	var h RequestHead
	if _, err := p.ParseRequest([]byte(in), &h); err != nil {
		t.Fatal(err)
	}
	want(t, string(h.Get("x-FORWARDED-for")), "1.2.3.4")
	want(t, string(h.Get("host")), "a")
	want(t, h.Get("cookie") != nil, true)
	want(t, len(h.Get("cookie")), 0)
	want(t, h.Get("missing") == nil, true)
	want(t, h.Get("Hos") == nil, true)
}

func TestErrorType(t *testing.T) {
	var p Parser
	var h RequestHead
	_, err := p.ParseRequest([]byte("POST / HTTP/1.0\r\nContent-Length: -5\r\n\r\n"), &h)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%T", err)
	}
	want(t, e.Status, 400)
	want(t, e.Msg, "Content-Length < 0")
	want(t, err.Error(), "http: Content-Length < 0")
}

func TestBodyModeString(t *testing.T) {
	got := []string{BodyNone.String(), BodyLength.String(), BodyChunked.String(), BodyUntilClose.String(), BodyMode(9).String()}
	want(t, strings.Join(got, ","), "none,length,chunked,until-close,invalid")
}

// TestHostLowerCaseDoesNotAlias guards the copy of a lower-cased host: a
// second parse into the same head must not change the first's bytes in
// the caller's buffer.
func TestHostLowerCaseDoesNotAlias(t *testing.T) {
	buf := []byte("GET http://ABC/ HTTP/1.0\r\n\r\n")
	orig := bytes.Clone(buf)
	var p Parser
	var h RequestHead
	if _, err := p.ParseRequest(buf, &h); err != nil {
		t.Fatal(err)
	}
	want(t, string(h.Host), "abc")
	want(t, string(buf), string(orig))
}
