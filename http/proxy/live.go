package proxy

import "github.com/plb/plb/engine"

// DropStale closes loop l's idle backend connections that the current
// settings would not reuse: to a node removed from the pool, or of a pool
// the service no longer uses. Connections in use are left to finish their
// response (putIdle then closes them). The server runs it on every loop
// after a live change. Runs on the loop.
func (s *Service) DropStale(l *engine.Loop) {
	list := s.idle[l.ID()]
	keep := list[:0]
	for _, be := range list {
		if !s.stale(be) && !be.conn.Closing() {
			keep = append(keep, be)
			continue
		}
		s.Bored.Add(-1)
		be.conn.Close()
	}
	clear(list[len(keep):])
	s.idle[l.ID()] = keep
}

// stale reports whether be may no longer be reused under the current
// settings: its node left the pool (in-flight requests finish, but the
// connection is not kept), the service switched to another pool, or
// backend_ssl changed.
func (s *Service) stale(be *backend) bool {
	st := s.Settings()
	p := st.Pool
	return p == nil || p != be.pool || !inPool(p, be.node) || st.BackendTLS != be.tls
}
