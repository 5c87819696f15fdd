package proxy

import (
	"bytes"

	"github.com/plb/plb/engine"
	"github.com/plb/plb/http"
	"github.com/plb/plb/pool"
)

// headKey is the Key of request r from client c for p's balance method:
// the hash of what p's HashKey names (pool.HashBytes), NoKey when the
// method wants none, the request lacks it or there is no pool (the pool
// then goes round robin). Call it while r's views are valid, in the read
// that parsed it (reqState.key keeps the result). It allocates nothing.
func headKey(p *pool.Pool, r *http.RequestHead, c *engine.Conn) pool.Key {
	if p == nil {
		return pool.NoKey
	}
	k := p.HashKey()
	switch k.Source {
	case pool.KeySourceIP:
		a := c.RemoteAddr().Addr().As16()
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
