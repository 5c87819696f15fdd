package http

import (
	"bytes"
	"errors"
	"io"
	"net/http/httputil"
	"strings"
	"testing"
)

type chunkCase struct {
	name     string
	in       string
	payload  string // expected payload
	rest     int    // expected bytes left after the body when done
	done     bool   // expected done (false with err == "": incomplete)
	err      string // expected error Msg
	netHTTP  bool   // httputil.NewChunkedReader agrees (checked by TestChunkedVsNetHTTP)
	netDiffs string // why it does not, when !netHTTP
}

var chunkCases = []chunkCase{
	{name: "simple", in: "5\r\nhello\r\n0\r\n\r\n", payload: "hello", done: true, netHTTP: true},
	{name: "two chunks", in: "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", payload: "hello world", done: true, netHTTP: true},
	{name: "empty body", in: "0\r\n\r\n", done: true, netHTTP: true},
	{name: "hex sizes", in: "a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n", payload: strings.Repeat("0123456789", 2), done: true, netHTTP: true},
	{name: "leading zeros", in: "0005\r\nhello\r\n000\r\n\r\n", payload: "hello", done: true, netHTTP: true},
	{name: "sixteen digits", in: "0000000000000005\r\nhello\r\n0\r\n\r\n", payload: "hello", done: true, netHTTP: true},
	{name: "extensions", in: "5;a=b;c=\"d e\";f\r\nhello\r\n0;last\r\n\r\n", payload: "hello", done: true, netHTTP: true},
	{name: "whitespace after size", in: "5 \t\r\nhello\r\n0\r\n\r\n", payload: "hello", done: true, netHTTP: true},
	{name: "whitespace before extension", in: "5 ;a=b\r\nhello\r\n0\r\n\r\n", payload: "hello", done: true, netDiffs: "BWS before ';' (RFC 9112 7.1.1) is refused by net/http"},
	{name: "trailers", in: "5\r\nhello\r\n0\r\nX-Sum: abc\r\nY:\r\n\r\n", payload: "hello", done: true, netHTTP: true},
	{name: "bytes after the body", in: "1\r\na\r\n0\r\n\r\nGET / HTTP/1.1\r\n", payload: "a", done: true, rest: len("GET / HTTP/1.1\r\n"), netHTTP: true},
	{name: "binary payload", in: "4\r\n\r\n\x00\n\r\n0\r\n\r\n", payload: "\r\n\x00\n", done: true, netHTTP: true},
	{name: "incomplete size", in: "5", netHTTP: true},
	{name: "incomplete data", in: "5\r\nhel", payload: "hel", netHTTP: true},
	{name: "incomplete trailers", in: "0\r\nX: y\r\n", netHTTP: true},
	{name: "incomplete end", in: "0\r\n\r", netHTTP: true},

	{name: "no size", in: "\r\nhello\r\n0\r\n\r\n", err: "invalid chunk size", netHTTP: true},
	{name: "negative size", in: "-5\r\nhello\r\n0\r\n\r\n", err: "invalid chunk size", netHTTP: true},
	{name: "plus sign", in: "+5\r\nhello\r\n0\r\n\r\n", err: "invalid chunk size", netHTTP: true},
	{name: "0x prefix", in: "0x5\r\nhello\r\n0\r\n\r\n", err: "invalid chunk size", netHTTP: true},
	{name: "leading space", in: " 5\r\nhello\r\n0\r\n\r\n", err: "invalid chunk size", netHTTP: true},
	{name: "not hex", in: "5g\r\nhello\r\n0\r\n\r\n", err: "invalid chunk size", netHTTP: true},
	{name: "space inside size", in: "5 5\r\nhello\r\n0\r\n\r\n", err: "invalid chunk size", netHTTP: true},
	{name: "seventeen digits", in: "00000000000000005\r\nhello\r\n0\r\n\r\n", err: "chunk size too large", netHTTP: true},
	{name: "over 2^62", in: "4000000000000001\r\n", err: "chunk size too large", netDiffs: "net/http takes up to 2^64-1 and waits for the data"},
	{name: "2^64", in: "ffffffffffffffff0\r\n", err: "chunk size too large", netHTTP: true},
	{name: "bare LF after size", in: "5\nhello\r\n0\r\n\r\n", err: "chunk framing: CRLF expected", netHTTP: true},
	{name: "bare LF in extension", in: "5;a\nhello\r\n0\r\n\r\n", err: "chunk framing: CRLF expected", netHTTP: true},
	{name: "bare CR after size", in: "5\rhello\r\n0\r\n\r\n", err: "chunk framing: CRLF expected", netHTTP: true},
	{name: "CTL in extension", in: "5;a\x00\r\nhello\r\n0\r\n\r\n", err: "invalid chunk extension", netDiffs: "net/http does not look inside extensions"},
	{name: "extension too long", in: "5;" + strings.Repeat("a", 4097) + "\r\nhello\r\n0\r\n\r\n", err: "chunk extension too long", netHTTP: true},
	{name: "data too long", in: "5\r\nhelloX\r\n0\r\n\r\n", payload: "hello", err: "chunk framing: CRLF expected", netHTTP: true},
	{name: "data too short", in: "5\r\nhell\r\n0\r\n\r\n", payload: "hell\r", err: "chunk framing: CRLF expected", netHTTP: true},
	{name: "LF after data", in: "5\r\nhello\n0\r\n\r\n", payload: "hello", err: "chunk framing: CRLF expected", netHTTP: true},
	{name: "trailer without colon", in: "0\r\nX\r\n\r\n", err: "invalid trailer field", netDiffs: "net/http reads trailers separately"},
	{name: "trailer bare LF", in: "0\r\nX: y\n\r\n", err: "invalid trailer field", netDiffs: "net/http reads trailers separately"},
	{name: "trailer bare CR", in: "0\r\nX: y\rZ\r\n\r\n", err: "chunk framing: CRLF expected", netDiffs: "net/http reads trailers separately"},
	{name: "trailer obs-fold", in: "0\r\nX: y\r\n z\r\n\r\n", err: "invalid trailer field", netDiffs: "net/http reads trailers separately"},
	{name: "final LF only", in: "0\r\n\n", err: "invalid trailer field", netDiffs: "net/http reads trailers separately"},
	{name: "trailers too large", in: "0\r\nX: " + strings.Repeat("a", 16<<10) + "\r\n\r\n", err: "trailer section too large", netDiffs: "net/http reads trailers separately"},
}

func TestChunkedScanner(t *testing.T) {
	for _, tc := range chunkCases {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			for _, step := range []int{len(in), 1, 2, 3, 7} {
				payload, consumed, done, err := scanChunked(in, step)
				msg := ""
				if err != nil {
					var e *Error
					if !errors.As(err, &e) {
						t.Fatalf("%T", err)
					}
					msg = e.Msg
				}
				if msg != tc.err || done != tc.done || string(payload) != tc.payload {
					t.Fatalf("step %d: payload %q done %v err %q; want %q %v %q", step, payload, done, msg, tc.payload, tc.done, tc.err)
				}
				if done {
					want(t, len(in)-consumed, tc.rest)
				}
			}
		})
	}
}

// TestChunkedVsNetHTTP runs the table through httputil.NewChunkedReader:
// where both accept the chunks, the payloads must match; net/http stops at
// the last-chunk line and leaves trailers to its caller.
func TestChunkedVsNetHTTP(t *testing.T) {
	for _, tc := range chunkCases {
		if !tc.netHTTP {
			if tc.netDiffs == "" {
				t.Errorf("%s: say why net/http differs", tc.name)
			}
			continue
		}
		got, err := io.ReadAll(httputil.NewChunkedReader(strings.NewReader(tc.in)))
		switch {
		case tc.err != "" && err == nil:
			t.Errorf("%s: net/http accepts what plb refuses", tc.name)
		case tc.err == "" && tc.done && (err != nil || string(got) != tc.payload):
			t.Errorf("%s: net/http: %q %v, plb: %q", tc.name, got, err, tc.payload)
		case tc.err == "" && !tc.done && err == nil && !strings.HasPrefix(tc.name, "incomplete trailers") && !strings.HasPrefix(tc.name, "incomplete end"):
			t.Errorf("%s: net/http completes an incomplete body", tc.name)
		}
	}
}

func TestChunkedScannerSticky(t *testing.T) {
	var s ChunkedScanner
	if _, _, _, err := s.Scan([]byte("x")); err == nil {
		t.Fatal("no error")
	}
	if _, _, _, err := s.Scan([]byte("0\r\n\r\n")); err == nil {
		t.Fatal("error forgotten")
	}
	s.Reset()
	n, _, done, err := s.Scan([]byte("0\r\n\r\nmore"))
	if n != 5 || !done || err != nil || !s.Done() {
		t.Fatal(n, done, err)
	}
	n, _, done, err = s.Scan([]byte("more"))
	if n != 0 || !done || err != nil {
		t.Fatal(n, done, err)
	}
	n, _, done, _ = s.Scan(nil)
	if n != 0 || !done {
		t.Fatal(n, done)
	}
}

// TestChunkedOnePiecePerCall checks the contract that a call returns at
// most one payload piece, and stops right after it.
func TestChunkedOnePiecePerCall(t *testing.T) {
	in := []byte("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
	var s ChunkedScanner
	var pieces []string
	for len(in) > 0 {
		n, p, done, err := s.Scan(in)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) > 0 {
			pieces = append(pieces, string(p))
			if &p[len(p)-1] != &in[n-1] {
				t.Fatal("scan went on after the payload")
			}
		}
		in = in[n:]
		if done {
			break
		}
	}
	want(t, strings.Join(pieces, "|"), "abc|de")
	want(t, len(in), 0)
}

func TestChunkedLargeChunk(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<12)
	var in []byte
	in = append(in, "10000\r\n"...)
	in = append(in, data...)
	in = append(in, "\r\n0\r\n\r\n"...)
	payload, consumed, done, err := scanChunked(in, 1000)
	if err != nil || !done || consumed != len(in) || !bytes.Equal(payload, data) {
		t.Fatal(len(payload), consumed, done, err)
	}
}
