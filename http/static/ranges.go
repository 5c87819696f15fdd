package static

import "strconv"

// ParseRange interprets a Range header value for a representation of size
// bytes, as the web server does: code 200 with the whole of it (no usable
// single range), 206 with the region [off, off+n), or 416. Only one
// "bytes=S-E", "bytes=S-" or "bytes=-N" is honoured; "-N" is the last N
// bytes (RFC 9110), not Perlbal's 0..N.
func ParseRange(v []byte, size int64) (code int, off, n int64) {
	return parseRange(v, size)
}

// AppendContentRange appends the Content-Range line of a response: for
// code 206 "Content-Range: bytes S-E/size", for 416 "Content-Range: bytes
// */size"; nothing for any other code.
func AppendContentRange(dst []byte, code int, off, n, size int64) []byte {
	switch code {
	case 206:
		dst = append(dst, "Content-Range: bytes "...)
		dst = strconv.AppendInt(dst, off, 10)
		dst = append(dst, '-')
		dst = strconv.AppendInt(dst, off+n-1, 10)
		dst = append(dst, '/')
	case 416:
		dst = append(dst, "Content-Range: bytes */"...)
	default:
		return dst
	}
	dst = strconv.AppendInt(dst, size, 10)
	return append(dst, "\r\n"...)
}
