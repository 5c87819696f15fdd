package static

import (
	"errors"
	"os"
	"sync/atomic"
	"time"
)

// rootEntry is one opening of the docroot: an os.Root for every operation,
// and on Linux a plain directory descriptor for the openat2 fast path.
type rootEntry struct {
	root *os.Root // nil when the docroot could not be opened
	// prev is the handle this entry replaced. It is closed one refresh
	// later, not at once, so that requests still using it (a Serve takes
	// microseconds, a refresh comes at most once a second) are not cut off.
	prev *os.Root
	// dir is the docroot for openBeneath, nil where that is not available.
	// It is reference-counted: a descriptor number must never be used
	// after its close, when it may already name another file.
	dir *dirFD
	at  time.Time // when the entry was opened
}

// dirFD is a reference-counted directory descriptor. The entry that opened
// it holds one reference, dropped when the entry is replaced; each request
// using it holds one more for its duration.
type dirFD struct {
	fd   int
	refs atomic.Int32
}

// acquire takes a reference; false means the descriptor is already closed.
func (d *dirFD) acquire() bool {
	for {
		n := d.refs.Load()
		if n <= 0 {
			return false
		}
		if d.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops a reference, closing the descriptor with the last one.
func (d *dirFD) release() {
	if d.refs.Add(-1) == 0 {
		closeFD(d.fd)
	}
}

func closeEntry(e *rootEntry) error {
	if e == nil {
		return nil
	}
	var err error
	if e.root != nil {
		err = e.root.Close()
	}
	if e.prev != nil {
		e.prev.Close()
	}
	if e.dir != nil {
		e.dir.release()
	}
	return err
}

// Close releases the docroot. Files already handed out stay open; requests
// served after Close get a 503. Safe from any goroutine.
func (s *Server) Close() error {
	s.closed.Store(true)
	return closeEntry(s.root.Swap(nil))
}

// entry returns the current docroot entry, reopening it when now is a
// second or more past the time it was opened. It returns nil when the
// Server is closed.
//
// force reopens whatever the time: Serve asks for it after finding the
// handle closed under a request.
func (s *Server) entry(now time.Time, force bool) *rootEntry {
	e := s.root.Load()
	if e != nil && !force {
		// A now a little before the entry's is another loop's older
		// reading: no reopen for it, or loops would take turns. A wall
		// clock set back (no monotonic reading) reopens after a minute.
		if d := now.Sub(e.at); d < time.Second && d > -time.Minute {
			return e
		}
	}
	if s.closed.Load() {
		return nil
	}
	ne := &rootEntry{at: now}
	if r, err := os.OpenRoot(s.opts.Docroot); err == nil {
		ne.root = r
		if fd, ok := openDirFD(s.opts.Docroot); ok {
			ne.dir = &dirFD{fd: fd}
			ne.dir.refs.Store(1)
		}
	}
	if e != nil {
		ne.prev = e.root
	}
	if !s.root.CompareAndSwap(e, ne) {
		// Another loop refreshed first; use its handle.
		if ne.root != nil {
			ne.root.Close()
		}
		if ne.dir != nil {
			ne.dir.release()
		}
		return s.root.Load()
	}
	if e != nil {
		if e.prev != nil {
			// Operations still running on it finish; any that start now
			// fail with os.ErrClosed, and Serve retries them.
			e.prev.Close()
		}
		if e.dir != nil {
			e.dir.release()
		}
	}
	if s.closed.Load() {
		// Close ran between our check and the swap.
		closeEntry(s.root.Swap(nil))
		return nil
	}
	return ne
}

// docroot returns the open docroot, or nil (see entry).
func (s *Server) docroot(now time.Time, force bool) *os.Root {
	if e := s.entry(now, force); e != nil {
		return e.root
	}
	return nil
}

// maxAttempts bounds the retries of a request whose docroot handle was
// closed under it.
const maxAttempts = 3

// errRetry means the docroot handle was closed under a request by a refresh:
// Serve starts the request again with the new handle.
var errRetry = errors.New("static: docroot handle replaced")

func errorsIsClosed(err error) bool { return errors.Is(err, os.ErrClosed) }
