package http

import (
	"bytes"
	"strconv"
)

// ParseRange interprets a Range header value for a representation of size
// bytes (a file, a reproxied or cached body): 200 with the whole of it when
// there is no usable single range, 206 with the region [off, off+n), or
// 416.
//
// Only one "bytes=S-E", "bytes=S-" or "bytes=-N" is honoured; several ranges
// are ignored, as in Perlbal. Unlike Perlbal, "-N" is the last N bytes (RFC
// 9110), not bytes 0..N. Perlbal's 416 cases stay: S > E, "-0", S >= size.
func ParseRange(v []byte, size int64) (code int, off, n int64) {
	v = bytes.TrimSpace(v)
	const unit = "bytes="
	if len(v) < len(unit) || !bytes.EqualFold(v[:len(unit)], []byte(unit)) {
		return 200, 0, size
	}
	v = bytes.TrimSpace(v[len(unit):])
	dash := bytes.IndexByte(v, '-')
	if dash < 0 {
		return 200, 0, size
	}
	first, last := bytes.TrimSpace(v[:dash]), bytes.TrimSpace(v[dash+1:])
	start, okStart := DecimalSaturating(first)
	end, okEnd := DecimalSaturating(last)
	if (len(first) > 0 && !okStart) || (len(last) > 0 && !okEnd) || (len(first) == 0 && len(last) == 0) {
		// Malformed, or a multi-range list ("0-1,5-6" fails here too).
		return 200, 0, size
	}
	if len(first) == 0 {
		// Suffix range: the last end bytes.
		if end == 0 || size == 0 {
			return 416, 0, 0
		}
		if end > size {
			end = size
		}
		return 206, size - end, end
	}
	if len(last) > 0 && start > end {
		return 416, 0, 0
	}
	if start >= size {
		return 416, 0, 0
	}
	if len(last) == 0 || end >= size {
		end = size - 1
	}
	return 206, start, end - start + 1
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

// DecimalSaturating parses decimal digits, saturating at the largest int64
// rather than failing: a huge range end clamps and a huge start is
// unsatisfiable (ParseRange), a huge length compares unequal (the web
// server's If-Modified-Since "; length=").
func DecimalSaturating(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (1<<63-1-9)/10 {
			n = 1<<63 - 1
			continue
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
