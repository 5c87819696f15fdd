package proxy

import (
	"bytes"

	"github.com/plb/plb/http"
)

// cookieHas reports whether the request's Cookie fields hold a cookie
// named name (URL-decoded, as Perlbal decodes it) whose URL-decoded value
// contains contents (any value when contents is empty). Pairs are split
// on ';', the name ends at the first '='. It allocates nothing unless a
// matching value is longer than a small buffer.
func cookieHas(r *http.RequestHead, name, contents string) bool {
	for i := range r.Headers {
		h := &r.Headers[i]
		if !equalFold(h.Name, "cookie") {
			continue
		}
		v := h.Value
		for len(v) > 0 {
			var pair []byte
			if k := bytes.IndexByte(v, ';'); k >= 0 {
				pair, v = v[:k], v[k+1:]
			} else {
				pair, v = v, nil
			}
			eq := bytes.IndexByte(pair, '=')
			if eq < 0 || !durlEqual(http.TrimOWS(pair[:eq]), name) {
				continue
			}
			if contents == "" {
				return true
			}
			var buf [256]byte
			return bytes.Contains(durlAppend(buf[:0], http.TrimOWS(pair[eq+1:])), []byte(contents))
		}
	}
	return false
}

// durlNext decodes the byte of enc at i as Perlbal's durl does ('+' is a
// space, %XX a byte, anything else itself) and returns it with the index
// of the next one.
func durlNext(enc []byte, i int) (byte, int) {
	if enc[i] == '+' {
		return ' ', i + 1
	}
	if b, ok := http.PercentByte(enc, i); ok {
		return b, i + 3
	}
	return enc[i], i + 1
}

// durlEqual reports whether enc decodes to s.
func durlEqual(enc []byte, s string) bool {
	i, j := 0, 0
	for i < len(enc) {
		if j == len(s) {
			return false
		}
		var c byte
		c, i = durlNext(enc, i)
		if c != s[j] {
			return false
		}
		j++
	}
	return j == len(s)
}

// durlAppend appends the decoding of enc to dst.
func durlAppend(dst, enc []byte) []byte {
	for i := 0; i < len(enc); {
		var c byte
		c, i = durlNext(enc, i)
		dst = append(dst, c)
	}
	return dst
}
