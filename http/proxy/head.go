package proxy

import (
	"net/netip"
	"strconv"

	"github.com/plb/plb/http"
	"github.com/plb/plb/http/handoff"
	"github.com/plb/plb/http/status"
)

// hopByHop reports the headers a proxy consumes rather than forwards
// (RFC 9110 7.6.1); the fields a Connection field names are in connNamed.
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

// connNamed reports whether the Connection fields among hs name the field
// name, which RFC 9110 7.6.1 makes hop-by-hop ("Connection: keep-alive,
// X-Foo" with "X-Foo: secret"), in both directions; others is the head's
// ConnOthers, false for nearly every message.
//
// Content-Length, Transfer-Encoding and Host are never taken for named:
// the message's framing and target are not the sender's to drop (a
// request that names its own Content-Length would go on with its body
// unframed, read by the backend as a request of its own; nginx and
// HAProxy ignore such tokens too).
func connNamed(hs []http.Header, others bool, name []byte) bool {
	return others && !framing(name) && http.ConnectionNames(hs, name)
}

// framing reports the fields that frame a message or name its target.
func framing(name []byte) bool {
	return equalFold(name, "content-length") || equalFold(name, "transfer-encoding") || equalFold(name, "host")
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
	return appendBackendRequestEx(dst, r, st, peer, keepAlive, nil, nil)
}

// appendBackendRequestEx is appendBackendRequest with two more sets of
// header edits applied first, in Perlbal's order: sel, the HEADER rules of
// the selector that handed the client on, then plug, the edits of the
// backend_client_assigned hooks; the service's own HEADER rules come last.
// Either may be nil.
func appendBackendRequestEx(dst []byte, r *http.RequestHead, st *Settings, peer netip.Addr, keepAlive bool, sel, plug *handoff.Rules) []byte {
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
	for i := range r.Headers {
		h := &r.Headers[i]
		n := h.Name
		if hopByHop(n) || connNamed(r.Headers, r.ConnOthers, n) {
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
		if st.removed(n) || sel.Removed(n) || plug.Removed(n) {
			continue
		}
	keep:
		dst = appendField(dst, n, h.Value)
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
	if sel != nil {
		for _, h := range sel.Inserts {
			if !plug.Removed(h.Name) && !st.removed(h.Name) {
				dst = appendField(dst, h.Name, h.Value)
			}
		}
	}
	if plug != nil {
		for _, h := range plug.Inserts {
			if !st.removed(h.Name) {
				dst = appendField(dst, h.Name, h.Value)
			}
		}
	}
	for _, h := range st.inserts {
		dst = appendField(dst, h.name, h.value)
	}
	return append(dst, "\r\n"...)
}

func appendField(dst, name, value []byte) []byte {
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	dst = append(dst, value...)
	return append(dst, "\r\n"...)
}

// removed reports whether the service's HEADER rules remove (or replace)
// the field name.
func (st *Settings) removed(name []byte) bool {
	for _, rm := range st.removes {
		if equalFoldBytes(name, rm) {
			return true
		}
	}
	return false
}

// appendStatusLine appends the status line the client gets under its HTTP
// version: code with reason, or the standard text when reason is empty.
func appendStatusLine(dst []byte, minor, code int, reason []byte) []byte {
	if minor >= 1 {
		dst = append(dst, "HTTP/1.1 "...)
	} else {
		dst = append(dst, "HTTP/1.0 "...)
	}
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, ' ')
	if len(reason) > 0 {
		dst = append(dst, reason...)
	} else {
		dst = append(dst, status.Text(code)...)
	}
	return append(dst, "\r\n"...)
}

// appendClientResponse builds the head sent to the client: the backend's
// status and headers (less hop-by-hop ones) under the client's HTTP
// version, with the framing and Connection fields plb decided.
func appendClientResponse(dst []byte, r *http.ResponseHead, minor int, be *backend, st *Settings) []byte {
	return appendClientResponseEx(dst, r, minor, be, st, nil, 0)
}

// appendClientResponseEx is appendClientResponse with the edits of the
// modify_response_headers hooks (nil: none) and the status they set (0:
// the backend's).
func appendClientResponseEx(dst []byte, r *http.ResponseHead, minor int, be *backend, st *Settings, ed *handoff.Rules, code int) []byte {
	if code != 0 && code != r.Status {
		dst = appendStatusLine(dst, minor, code, nil)
	} else {
		dst = appendStatusLine(dst, minor, r.Status, r.Reason)
	}
	upgraded := r.Status == 101
	for i := range r.Headers {
		h := &r.Headers[i]
		n := h.Name
		if upgraded && equalFold(n, "upgrade") {
			// The protocol switched to: kept.
		} else if hopByHop(n) || connNamed(r.Headers, r.ConnOthers, n) {
			continue
		}
		if (be.dechunk || be.rechunk) && equalFold(n, "transfer-encoding") {
			continue
		}
		if ed.Removed(n) {
			continue
		}
		dst = appendField(dst, n, h.Value)
	}
	if ed != nil {
		for _, h := range ed.Inserts {
			dst = appendField(dst, h.Name, h.Value)
		}
	}
	if cl := be.client; st.sticky != nil && cl != nil && !cl.rs.stuck(be.node) {
		// The request's cookie named no node, or another: this one
		// answered, and the client sticks to it from now.
		dst = st.sticky.appendSetCookie(dst, be.node, cl.conn.TLS())
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
