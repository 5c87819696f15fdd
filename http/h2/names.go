package h2

import "bytes"

// LowerName is a field name in lower case, as HTTP/2 writes it; the
// names most requests and responses carry cost no allocation.
func LowerName(name []byte) string {
	var buf [32]byte
	if len(name) > len(buf) {
		return string(bytes.ToLower(name))
	}
	b := buf[:len(name)]
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	switch string(b) { // no allocation to compare
	case "content-type":
		return "content-type"
	case "content-length":
		return "content-length"
	case "date":
		return "date"
	case "server":
		return "server"
	case "last-modified":
		return "last-modified"
	case "etag":
		return "etag"
	case "cache-control":
		return "cache-control"
	case "set-cookie":
		return "set-cookie"
	case "location":
		return "location"
	case "vary":
		return "vary"
	case "accept-ranges":
		return "accept-ranges"
	case "expires":
		return "expires"
	case "content-encoding":
		return "content-encoding"
	case "connection":
		return "connection"
	case "keep-alive":
		return "keep-alive"
	case "transfer-encoding":
		return "transfer-encoding"
	case "user-agent":
		return "user-agent"
	case "accept":
		return "accept"
	case "accept-encoding":
		return "accept-encoding"
	case "accept-language":
		return "accept-language"
	case "cookie":
		return "cookie"
	case "authorization":
		return "authorization"
	case "referer":
		return "referer"
	case "origin":
		return "origin"
	case "x-forwarded-for":
		return "x-forwarded-for"
	case "x-forwarded-proto":
		return "x-forwarded-proto"
	case "x-forwarded-port":
		return "x-forwarded-port"
	case "grpc-timeout":
		return "grpc-timeout"
	case "grpc-status":
		return "grpc-status"
	case "grpc-message":
		return "grpc-message"
	}
	return string(b)
}
