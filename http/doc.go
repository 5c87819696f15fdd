// Package http holds plb's HTTP/1.x protocol code. This part is the
// message parser, the equivalent of Perlbal::XS::HTTPHeaders: an
// incremental, zero-allocation parser of request and response heads
// (Parser, RequestHead, ResponseHead) and a scanner for chunked bodies
// (ChunkedScanner).
//
// It reads what Perlbal reads (LF-only line endings, a head of up to
// 100 KiB, absolute-form URIs) and is strict where two parsers disagreeing
// on where a message ends would let a client smuggle a request: see
// ParseRequest and the errors it returns.
//
// Import the standard library's package as nethttp beside this one.
package http
