package proxy

import (
	"bytes"

	"github.com/plb/plb/http"
	"github.com/plb/plb/pool"
)

// requestKey is the Key of the request for its pool's balance method: the
// hash of what the pool's HashKey names (pool.HashBytes), NoKey when the
// method wants none or the request lacks it (the pool then goes round
// robin). It allocates nothing.
func (cl *client) requestKey(p *pool.Pool) pool.Key {
	k := p.HashKey()
	r := &cl.rs.req
	switch k.Source {
	case pool.KeySourceIP:
		a := cl.conn.RemoteAddr().Addr().As16()
		return pool.HashBytes(a[:])
	case pool.KeyURI:
		return pool.HashBytes(r.Path)
	case pool.KeyHeader:
		if v := r.Get(k.Name); v != nil {
			return pool.HashBytes(v)
		}
	case pool.KeyCookie:
		if v := cookieValue(r, k.Name); v != nil {
			return pool.HashBytes(v)
		}
	}
	return pool.NoKey
}

// cookieValue returns the value, as sent, of the first cookie named name
// in the request's Cookie fields, or nil. It allocates nothing.
func cookieValue(r *http.RequestHead, name string) []byte {
	for i := range r.Headers {
		h := &r.Headers[i]
		if !equalFold(h.Name, "cookie") {
			continue
		}
		for v := h.Value; len(v) > 0; {
			var pair []byte
			if k := bytes.IndexByte(v, ';'); k >= 0 {
				pair, v = v[:k], v[k+1:]
			} else {
				pair, v = v, nil
			}
			if eq := bytes.IndexByte(pair, '='); eq >= 0 && string(http.TrimOWS(pair[:eq])) == name {
				return http.TrimOWS(pair[eq+1:])
			}
		}
	}
	return nil
}
