package http

// Error is a protocol error found while parsing a message, with the HTTP
// status a server should answer it with (400, 414, 431 or 505). The status
// speaks for a request read from a client; for a response read from a
// backend the caller maps any Error to 502 at the edge.
//
// The parser returns shared, pre-allocated *Error values so that the error
// path does not allocate either: callers must treat them as read-only.
// Use errors.As to get at Status and Msg.
type Error struct {
	// Status is the HTTP status code that describes the error.
	Status int
	// Msg says what was wrong, without the "http: " prefix; it is short
	// enough to be sent as the body of the error reply.
	Msg string
}

// Error returns the message prefixed with the package name.
func (e *Error) Error() string { return "http: " + e.Msg }

// The sentinels below are never modified: they are constants in all but
// syntax, so they are not package state.
var (
	// Framing and the head as a whole.
	errHeadTooLarge   = &Error{431, "head too large"}
	errTooManyHeaders = &Error{431, "too many header fields"}
	errURITooLong     = &Error{414, "URI too long"}

	// Request line.
	errBadRequestLine = &Error{400, "malformed request line"}
	errBadMethod      = &Error{400, "invalid method"}
	errEmptyURI       = &Error{400, "empty URI or extra space in request line"}
	errBadURI         = &Error{400, "invalid character in URI"}
	errNoVersion      = &Error{400, "missing HTTP version (HTTP/0.9 is not supported)"}
	errBadVersion     = &Error{400, "malformed HTTP version"}
	errVersion        = &Error{505, "HTTP version not supported"}
	errBadAbsURI      = &Error{400, "invalid absolute URI"}
	errBadScheme      = &Error{400, "absolute URI scheme is not http or https"}

	// Status line.
	errBadStatusLine = &Error{400, "malformed status line"}
	errBadStatus     = &Error{400, "invalid status code"}
	errBadReason     = &Error{400, "invalid character in reason phrase"}

	// Header lines.
	errObsFold          = &Error{400, "obs-fold (header line starting with whitespace)"}
	errFoldFirst        = &Error{400, "whitespace before the first header field"}
	errBareCR           = &Error{400, "bare CR"}
	errBadValue         = &Error{400, "invalid character in header value"}
	errSpaceBeforeColon = &Error{400, "whitespace between header name and colon"}
	errEmptyName        = &Error{400, "empty header name"}
	errBadName          = &Error{400, "invalid character in header name"}
	errNoColon          = &Error{400, "header line without colon"}

	// Semantics of particular fields.
	errNegativeCL   = &Error{400, "Content-Length < 0"}
	errBadCL        = &Error{400, "invalid Content-Length"}
	errCLTooLarge   = &Error{400, "Content-Length too large"}
	errMultiCL      = &Error{400, "differing Content-Length values"}
	errCLAndTE      = &Error{400, "Content-Length with Transfer-Encoding"}
	errTEUnknown    = &Error{501, "Transfer-Encoding other than chunked not implemented"}
	errTEAmbiguous  = &Error{400, "Transfer-Encoding other than one field holding chunked"}
	errChunkedTwice = &Error{400, "Transfer-Encoding chunked applied more than once"}
	errBadTEToken   = &Error{400, "invalid Transfer-Encoding"}
	errTE10         = &Error{400, "Transfer-Encoding in an HTTP/1.0 request"}
	errNoHost       = &Error{400, "HTTP/1.1 request without Host"}
	errMultiHost    = &Error{400, "more than one Host header"}
	errBadHost      = &Error{400, "invalid Host"}

	// Chunked body.
	errChunkSize     = &Error{400, "invalid chunk size"}
	errChunkTooLarge = &Error{400, "chunk size too large"}
	errChunkExt      = &Error{400, "invalid chunk extension"}
	errChunkExtLong  = &Error{400, "chunk extension too long"}
	errChunkCRLF     = &Error{400, "chunk framing: CRLF expected"}
	errTrailer       = &Error{400, "invalid trailer field"}
	errTrailerLarge  = &Error{400, "trailer section too large"}
)
