// Package static is Perlbal's web_server role for GET and HEAD, independent
// of sockets: given a parsed request it says what to send, a head and then
// either a generated body or a region of an open file for sendfile(2).
//
// No request can reach a file outside the docroot: ".." segments are refused
// before any file-system call, and every open goes through an os.Root, which
// resolves symbolic links without ever leaving the docroot.
package static

import (
	"errors"
	"io/fs"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/plb/plb/http/status"
)

// Options configures a Server, with Perlbal's service parameter names.
type Options struct {
	// Docroot is the directory served (docroot). Empty makes every GET a
	// 500 "Docroot unconfigured", as in Perlbal.
	Docroot string
	// DirIndexing lists directories that have no index file (dirindexing,
	// default off: a 200 "Directory listing disabled" page instead).
	DirIndexing bool
	// IndexFiles are tried in order in a directory, and the first that is a
	// regular file is served in its place (index_files, default none).
	// Entries containing '/', ".", ".." and "" are ignored.
	IndexFiles []string
	// ServerTokens adds "Server: Perlbal" (server_tokens).
	ServerTokens bool
	// EnablePut and EnableDelete allow PUT and DELETE (enable_put,
	// enable_delete, default off: 403). Serve itself does not carry out
	// either; with the option on it answers 501, and the caller is expected
	// to route those methods elsewhere.
	EnablePut, EnableDelete bool
	// MIME maps extensions (without the dot) to types; nil means MIMETypes'
	// table. It must not be modified once passed to New: build a new map
	// and a new Server instead.
	MIME map[string]string
}

// Request is what Serve needs of a parsed request head. Its byte slices are
// only read, and not retained once Serve returns.
type Request struct {
	// Method as sent ("GET", "HEAD", ...); methods are case-sensitive.
	Method string
	// URI is the raw request-target, in origin form ("/a%20b.txt?x=1").
	URI []byte
	// IfModifiedSince and Range are the raw header values, nil if absent.
	IfModifiedSince, Range []byte
	// Proto is the version written on the status line (default "HTTP/1.0",
	// which Perlbal always sends).
	Proto string
}

// Response says what follows the head Serve returns.
type Response struct {
	// Status is the response code, for logs.
	Status int
	// Body, when non-nil, is sent after the head. It may share the backing
	// array of the head and lies right after it; it is valid as long as the
	// dst buffer given to Serve is.
	Body []byte
	// File, when non-nil, is sent after the head: Length bytes from Offset.
	// The caller must close it. It is only set when Length > 0.
	File *os.File
	// Offset and Length delimit the region of File to send.
	Offset, Length int64
}

// Server answers GET and HEAD requests from a docroot.
//
// Its options are fixed at New; to change them, build a new Server and Close
// the old one. Serve is safe for concurrent use by several event loops.
// Serve makes blocking file-system calls (open, fstat, readdir) on the
// calling goroutine.
type Server struct {
	opts Options
	// root is the open docroot. It is reopened at most once a second so that
	// a docroot whose path is a symlink switched by a deployment follows the
	// switch, as Perlbal's per-request path concatenation does.
	root   atomic.Pointer[rootEntry]
	closed atomic.Bool
}

type rootEntry struct {
	root *os.Root // nil when the docroot could not be opened
	// prev is the handle this entry replaced. It is closed one refresh
	// later, not at once, so that requests still using it (a Serve takes
	// microseconds, a refresh comes at most once a second) are not cut off.
	prev *os.Root
	at   time.Time // when the entry was opened
}

// New returns a Server for o. The docroot is opened on first use; a docroot
// that does not exist gives 404s, as Perlbal's would.
func New(o Options) *Server {
	o.IndexFiles = append([]string(nil), o.IndexFiles...)
	return &Server{opts: o}
}

// Options returns the options the Server was built with.
func (s *Server) Options() Options {
	o := s.opts
	o.IndexFiles = append([]string(nil), o.IndexFiles...)
	return o
}

// Close releases the docroot. Files already handed out stay open; requests
// served after Close get a 503. Safe from any goroutine.
func (s *Server) Close() error {
	s.closed.Store(true)
	return closeEntry(s.root.Swap(nil))
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
	return err
}

// docroot returns the open docroot, reopening it when now is a second or
// more past the time it was opened. It returns nil when the Server is closed
// or the docroot cannot be opened.
//
// force reopens whatever the time: Serve asks for it after finding the
// handle closed under a request.
func (s *Server) docroot(now time.Time, force bool) *os.Root {
	e := s.root.Load()
	if e != nil && !force {
		// A now a little before the entry's is another loop's older
		// reading: no reopen for it, or loops would take turns. A wall
		// clock set back (no monotonic reading) reopens after a minute.
		if d := now.Sub(e.at); d < time.Second && d > -time.Minute {
			return e.root
		}
	}
	if s.closed.Load() {
		return nil
	}
	ne := &rootEntry{at: now}
	if r, err := os.OpenRoot(s.opts.Docroot); err == nil {
		ne.root = r
	}
	if e != nil {
		ne.prev = e.root
	}
	if !s.root.CompareAndSwap(e, ne) {
		// Another loop refreshed first; use its handle.
		if ne.root != nil {
			ne.root.Close()
		}
		if e = s.root.Load(); e != nil {
			return e.root
		}
		return nil
	}
	if e != nil && e.prev != nil {
		// Operations still running on it finish; any that start now fail
		// with os.ErrClosed, and Serve retries them.
		e.prev.Close()
	}
	if s.closed.Load() {
		// Close ran between our check and the swap.
		closeEntry(s.root.Swap(nil))
		return nil
	}
	return ne.root
}

// maxAttempts bounds the retries of a request whose docroot handle was
// closed under it.
const maxAttempts = 3

// errRetry means the docroot handle was closed under a request by a refresh:
// Serve starts the request again with the new handle.
var errRetry = errors.New("static: docroot handle replaced")

// Serve answers r. It appends the response head to dst and returns the
// extended slice (the bytes to send first) and what follows it.
//
// conn appends the Connection lines (each ending in CRLF), which depend on
// the client and so are the caller's decision; Serve calls it exactly once,
// and ends the head with those lines and a blank line. A nil conn writes
// "Connection: close". now is the request's time, for the Date header.
//
// Building the head allocates nothing when dst has room; opening and
// stat'ing the file do allocate.
func (s *Server) Serve(dst []byte, r *Request, now time.Time, conn func(dst []byte) []byte) (head []byte, resp Response) {
	for attempt := 0; ; attempt++ {
		head, resp, err := s.serve(dst, r, now, conn, attempt > 0)
		if err == nil {
			return head, resp
		}
		if attempt == maxAttempts-1 {
			b := s.builder(dst, r, now, conn)
			return b.simple(500, "")
		}
	}
}

func (s *Server) builder(dst []byte, r *Request, now time.Time, conn func([]byte) []byte) builder {
	proto := r.Proto
	if proto == "" {
		proto = status.DefaultProto
	}
	return builder{dst: dst, proto: proto, conn: conn, head: r.Method == "HEAD", tokens: s.opts.ServerTokens, now: now}
}

// pathBufSize is the size of the on-stack buffer for the decoded path;
// longer paths allocate.
const pathBufSize = 512

func (s *Server) serve(dst []byte, r *Request, now time.Time, conn func([]byte) []byte, reopen bool) ([]byte, Response, error) {
	b := s.builder(dst, r, now, conn)
	switch r.Method {
	case "GET", "HEAD":
	case "PUT":
		return b.methodToggle(s.opts.EnablePut)
	case "DELETE":
		return b.methodToggle(s.opts.EnableDelete)
	default:
		h, resp := b.simple(400, "")
		return h, resp, nil
	}

	var pbuf [pathBufSize]byte
	p := decodePath(pbuf[:0], r.URI)
	for _, c := range p {
		if c == 0 {
			h, resp := b.simple(400, "")
			return h, resp, nil
		}
	}
	if bogusPath(p) {
		h, resp := b.simple(403, "Bogus URL")
		return h, resp, nil
	}
	if s.opts.Docroot == "" {
		h, resp := b.simple(500, "Docroot unconfigured")
		return h, resp, nil
	}
	if s.closed.Load() {
		h, resp := b.simple(503, "")
		return h, resp, nil
	}
	root := s.docroot(now, reopen)
	if root == nil {
		h, resp := b.simple(404, "")
		return h, resp, nil
	}

	var rbuf [pathBufSize]byte
	rel := string(appendRelative(rbuf[:0], p))
	f, err := root.OpenFile(rel, openFlags, 0)
	if err != nil {
		return b.fail(err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return b.fail(err)
	}
	switch {
	case fi.Mode().IsRegular():
		if p[len(p)-1] == '/' {
			// "/file.txt/" is ENOTDIR to stat(2), so 404 in Perlbal.
			f.Close()
			h, resp := b.simple(404, "")
			return h, resp, nil
		}
		h, resp := s.serveFile(&b, r, f, fi, rel)
		return h, resp, nil
	case fi.IsDir():
		return s.serveDir(&b, r, root, f, fi, rel)
	default:
		// A FIFO, socket or device: nothing Perlbal could serve either
		// (it would hang); say it is not there.
		f.Close()
		h, resp := b.simple(404, "")
		return h, resp, nil
	}
}

// fail answers an error from opening or reading in the docroot.
func (b *builder) fail(err error) ([]byte, Response, error) {
	if errors.Is(err, os.ErrClosed) {
		return nil, Response{}, errRetry
	}
	h, resp := b.simple(errStatus(err), "")
	return h, resp, nil
}

// errStatus maps a file-system error to a response code.
func errStatus(err error) int {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR),
		errors.Is(err, syscall.ENAMETOOLONG):
		return 404
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE),
		errors.Is(err, syscall.ENOMEM), errors.Is(err, syscall.EIO):
		return 500
	}
	// Permission denied, too many symlinks, and os.Root's "path escapes
	// from parent" for a symlink leading out of the docroot.
	return 403
}

// methodToggle answers PUT or DELETE: 403 when disabled, as Perlbal does.
func (b *builder) methodToggle(enabled bool) ([]byte, Response, error) {
	if !enabled {
		h, resp := b.simple(403, "")
		return h, resp, nil
	}
	h, resp := b.simple(501, "")
	return h, resp, nil
}

func errorsIsClosed(err error) bool { return errors.Is(err, os.ErrClosed) }
