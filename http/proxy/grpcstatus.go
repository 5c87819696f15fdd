package proxy

import "strconv"

// gRPC status codes plb answers with (grpc/grpc doc/statuscodes.md).
const (
	grpcUnknown           = 2
	grpcDeadlineExceeded  = 4
	grpcPermissionDenied  = 7
	grpcResourceExhausted = 8
	grpcUnimplemented     = 12
	grpcInternal          = 13
	grpcUnavailable       = 14
	grpcUnauthenticated   = 16
)

// grpcCode is the gRPC status of plb's own HTTP error code, as Envoy maps
// its local replies (a timeout is DEADLINE_EXCEEDED, a body too large
// RESOURCE_EXHAUSTED, no node UNAVAILABLE).
func grpcCode(code int) int {
	switch code {
	case 400:
		return grpcInternal
	case 401:
		return grpcUnauthenticated
	case 403:
		return grpcPermissionDenied
	case 404:
		return grpcUnimplemented
	case 413:
		return grpcResourceExhausted
	case 504, 408:
		return grpcDeadlineExceeded
	case 429, 502, 503:
		return grpcUnavailable
	}
	return grpcUnknown
}

// appendGRPCError appends plb's error code for a gRPC call as gRPC
// answers one: status 200 and, in the head (a trailers-only response),
// grpc-status and grpc-message. A client could only call the HTML page
// of an HTTP error a protocol error.
func appendGRPCError(dst []byte, code int, msg string) []byte {
	dst = append(dst, "HTTP/1.1 200 OK\r\nContent-Type: application/grpc\r\nGrpc-Status: "...)
	dst = strconv.AppendInt(dst, int64(grpcCode(code)), 10)
	dst = append(dst, "\r\nGrpc-Message: plb: "...)
	dst = appendPercent(dst, msg)
	return append(dst, "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"...)
}

// appendPercent appends s percent-encoded as grpc-message wants:
// visible ASCII and space as they are, but '%'.
func appendPercent(dst []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= ' ' && c <= '~' && c != '%' {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', hex[c>>4], hex[c&15])
	}
	return dst
}
