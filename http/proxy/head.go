package proxy

import (
	"net/netip"
	"strconv"

	"github.com/plb/plb/http"
	"github.com/plb/plb/http/status"
)

// hopByHop reports the headers a proxy consumes rather than forwards
// (RFC 9110 7.6.1), plus Transfer-Encoding and Content-Length handled by
// the framing code.
func hopByHop(name []byte) bool {
	switch len(name) {
	case 2:
		return equalFold(name, "te")
	case 7:
		return equalFold(name, "trailer") || equalFold(name, "upgrade")
	case 10:
		return equalFold(name, "connection") || equalFold(name, "keep-alive")
	case 16:
		return equalFold(name, "proxy-connection")
	}
	return false
}

func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		d := s[i]
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

func equalFoldBytes(a, b []byte) bool { return equalFold(a, string(b)) }

// appendBackendRequest builds the head sent to a backend: the client's
// request line and headers, less hop-by-hop fields, with X-Forwarded-For,
// the service's HEADER rules and our own Connection field.
func appendBackendRequest(dst []byte, r *http.RequestHead, st *Settings, peer netip.Addr, keepAlive bool) []byte {
	upgrade := r.ConnUpgrade && len(r.Upgrade) > 0
	dst = append(dst, r.Method...)
	dst = append(dst, ' ')
	dst = append(dst, r.Path...)
	if r.Minor == 0 && len(r.Host) == 0 {
		dst = append(dst, " HTTP/1.0\r\n"...) // no Host to send with 1.1
	} else {
		dst = append(dst, " HTTP/1.1\r\n"...)
	}
	trusted := st.trusted(peer)
	var oldXFF []byte
	if r.AbsHost != nil {
		dst = append(dst, "Host: "...)
		dst = append(dst, r.AbsHost...)
		dst = append(dst, "\r\n"...)
	}
headers:
	for i := range r.Headers {
		h := &r.Headers[i]
		n := h.Name
		if hopByHop(n) {
			continue
		}
		if equalFold(n, "x-forwarded-for") {
			if trusted {
				if st.Svc.BlindProxy {
					goto keep
				}
				if oldXFF == nil {
					oldXFF = h.Value
				} else {
					// Several fields: keep their order in one list.
					oldXFF = append(append(append([]byte(nil), oldXFF...), ", "...), h.Value...)
				}
			}
			continue
		}
		if !trusted && (equalFold(n, "x-host") || equalFold(n, "x-forwarded-host")) {
			continue
		}
		if r.AbsHost != nil && equalFold(n, "host") {
			continue
		}
		for _, rm := range st.removes {
			if equalFoldBytes(n, rm) {
				continue headers
			}
		}
	keep:
		dst = append(dst, n...)
		dst = append(dst, ": "...)
		dst = append(dst, h.Value...)
		dst = append(dst, "\r\n"...)
	}
	if !(trusted && st.Svc.BlindProxy) {
		dst = append(dst, "X-Forwarded-For: "...)
		if len(oldXFF) > 0 {
			dst = append(dst, oldXFF...)
			dst = append(dst, ", "...)
		}
		dst = peer.Unmap().AppendTo(dst)
		dst = append(dst, "\r\n"...)
	}
	switch {
	case upgrade:
		dst = append(dst, "Connection: Upgrade\r\nUpgrade: "...)
		dst = append(dst, r.Upgrade...)
		dst = append(dst, "\r\n"...)
	case keepAlive:
		dst = append(dst, "Connection: keep-alive\r\n"...)
	default:
		dst = append(dst, "Connection: close\r\n"...)
	}
	for _, h := range st.inserts {
		dst = append(dst, h.name...)
		dst = append(dst, ": "...)
		dst = append(dst, h.value...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// appendClientResponse builds the head sent to the client: the backend's
// status and headers (less hop-by-hop ones) under the client's HTTP
// version, with the framing and Connection fields plb decided.
func appendClientResponse(dst []byte, r *http.ResponseHead, minor int, be *backend, st *Settings) []byte {
	if minor >= 1 {
		dst = append(dst, "HTTP/1.1 "...)
	} else {
		dst = append(dst, "HTTP/1.0 "...)
	}
	dst = strconv.AppendInt(dst, int64(r.Status), 10)
	dst = append(dst, ' ')
	if len(r.Reason) > 0 {
		dst = append(dst, r.Reason...)
	} else {
		dst = append(dst, status.Text(r.Status)...)
	}
	dst = append(dst, "\r\n"...)
	upgraded := r.Status == 101
	for i := range r.Headers {
		h := &r.Headers[i]
		n := h.Name
		if hopByHop(n) && !(upgraded && equalFold(n, "upgrade")) {
			continue
		}
		if (be.dechunk || be.rechunk) && equalFold(n, "transfer-encoding") {
			continue
		}
		dst = append(dst, n...)
		dst = append(dst, ": "...)
		dst = append(dst, h.Value...)
		dst = append(dst, "\r\n"...)
	}
	switch {
	case upgraded:
		dst = append(dst, "Connection: Upgrade\r\n"...)
	case be.clientKA:
		if be.rechunk {
			dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
		}
		dst = append(dst, st.keepAliveHdr...)
	default:
		dst = append(dst, "Connection: close\r\n"...)
	}
	return append(dst, "\r\n"...)
}
