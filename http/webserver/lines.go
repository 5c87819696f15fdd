package webserver

import (
	"time"

	"github.com/plb/plb/engine"
	"github.com/plb/plb/http/static"
	"github.com/plb/plb/http/status"
)

// connLines returns the function that appends the Connection lines for the
// keep-alive decision in wc.ka (read when the head is built) and st's
// persist_client_idle_timeout.
func (wc *conn) connLines(st *Settings) func([]byte) []byte {
	wc.kaTimeout = int(st.Svc.PersistClientIdleTimeout / time.Second)
	if wc.connFn == nil {
		wc.connFn = func(dst []byte) []byte {
			return status.AppendConnection(dst, wc.ka, wc.kaTimeout)
		}
	}
	return wc.connFn
}

// methodString returns the common methods as constants, so that a request
// costs no string allocation.
func methodString(m []byte) string {
	switch string(m) {
	case "GET":
		return "GET"
	case "HEAD":
		return "HEAD"
	case "PUT":
		return "PUT"
	case "DELETE":
		return "DELETE"
	case "POST":
		return "POST"
	}
	return string(m)
}

// scratch is a loop's response buffer and its cache of small files.
type scratch struct {
	b     []byte
	files static.FileCache
}

// scratchFor returns loop l's response buffer. Safe from any goroutine
// (each loop accepts on its own).
func (s *Service) scratchFor(l *engine.Loop) *scratch {
	s.scratchMu.Lock()
	defer s.scratchMu.Unlock()
	if s.scratch == nil {
		s.scratch = make(map[*engine.Loop]*scratch)
	}
	sc := s.scratch[l]
	if sc == nil {
		sc = &scratch{}
		s.scratch[l] = sc
	}
	return sc
}
