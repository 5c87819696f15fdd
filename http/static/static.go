// Package static is Perlbal's web_server role independent of sockets: given
// a parsed request it says what to send, a head and then either a generated
// body, a region of an open file for sendfile(2), or several files for a
// concatenated GET. PUT uploads go through Upload, fed the body as it
// arrives; DELETE is answered by Serve.
//
// No request can reach a file outside the docroot: ".." segments are refused
// before any file-system call, and every open resolves beneath the docroot:
// through openat2(2) with RESOLVE_BENEATH on Linux, else through an os.Root;
// either follows symbolic links without ever leaving the docroot.
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
	// enable_delete, default off: 403). Serve answers DELETE itself; a PUT
	// needs its body, so Serve answers it 501 and the caller is expected to
	// use StartPut instead.
	EnablePut, EnableDelete bool
	// EnableMD5 checks a PUT body against its Content-MD5 header, when it
	// has one (enable_md5, default on in Perlbal's configuration; the zero
	// Options leave it off).
	EnableMD5 bool
	// MinPutDirectory is how many leading directories of a PUT path must
	// already exist (min_put_directory, default 0); deeper ones are created.
	MinPutDirectory int
	// MaxPutSize is the largest PUT body (max_put_size, default 0: no limit).
	MaxPutSize int64
	// MaxChunkedSize is the largest chunked PUT body
	// (max_chunked_request_size; 0: no limit besides MaxPutSize).
	MaxChunkedSize int64
	// EnableConcatenateGet serves "/dir/??a.css,b.css" as the files joined
	// (enable_concatenate_get, default off: 403).
	EnableConcatenateGet bool
	// MIME maps extensions (without the dot) to types; nil means MIMETypes'
	// table. It must not be modified once passed to New: build a new map
	// and a new Server instead.
	MIME map[string]string
	// InlineMax is the largest file region read into Response.Body rather
	// than handed out as Response.File (default 16 KiB; negative: never).
	// Small files then cost no os.File and go out in one write with the
	// head.
	InlineMax int
}

// DefaultInlineMax is InlineMax's default.
const DefaultInlineMax = 16 << 10

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
	// ContentLength is a PUT's Content-Length; absent (negative) counts as
	// 0, as in Perlbal.
	ContentLength int64
	// Chunked reports a PUT body in chunked coding.
	Chunked bool
	// ContentMD5 is the raw Content-MD5 value of a PUT, nil if absent.
	ContentMD5 []byte
	// Cache, when not nil, is the calling loop's cache of small files:
	// Serve answers from it when it can and fills it (see FileCache).
	Cache *FileCache
}

// Response says what follows the head Serve returns.
type Response struct {
	// Status is the response code, for logs.
	Status int
	// Body, when non-nil, is sent after the head. It may share the backing
	// array of the head and lie right after it, or point into the
	// Request's FileCache; it is valid until the next Serve with the same
	// dst or cache.
	Body []byte
	// File, when non-nil, is sent after the head: Length bytes from Offset.
	// The caller must close it. It is only set when Length > 0.
	File *os.File
	// Offset and Length delimit the region of File to send.
	Offset, Length int64
	// Parts, for a concatenated GET, are files sent one after the other
	// after the head, each whole. The caller must close them.
	Parts []Region
	// Buffer is dst as Serve extended it, with its full capacity (the head
	// and Body have none to spare, so that appending to them cannot
	// clobber what follows): pass Buffer[:0] as the next dst, once head
	// and Body are sent, to build the next response without allocating.
	Buffer []byte
}

// Region is a part of a file to send.
type Region struct {
	File           *os.File
	Offset, Length int64
}

// Close closes every file of r, for a caller that will not send them.
func (r *Response) Close() {
	if r.File != nil {
		r.File.Close()
		r.File = nil
	}
	for _, p := range r.Parts {
		p.File.Close()
	}
	r.Parts = nil
}

// Server answers requests from a docroot.
//
// Its options are fixed at New; to change them, build a new Server and Close
// the old one. Serve is safe for concurrent use by several event loops.
// Serve makes blocking file-system calls (open, fstat, readdir, unlink) on
// the calling goroutine.
type Server struct {
	opts Options
	// root is the open docroot. It is reopened at most once a second so that
	// a docroot whose path is a symlink switched by a deployment follows the
	// switch, as Perlbal's per-request path concatenation does.
	root   atomic.Pointer[rootEntry]
	closed atomic.Bool
	fast   fastFlag // openat2 usable (fastState)
	date   status.SharedDateCache
}

// New returns a Server for o. The docroot is opened on first use; a docroot
// that does not exist gives 404s, as Perlbal's would.
func New(o Options) *Server {
	o.IndexFiles = append([]string(nil), o.IndexFiles...)
	if o.InlineMax == 0 {
		o.InlineMax = DefaultInlineMax
	}
	return &Server{opts: o}
}

// Options returns the options the Server was built with.
func (s *Server) Options() Options {
	o := s.opts
	o.IndexFiles = append([]string(nil), o.IndexFiles...)
	return o
}

// Serve answers r. It appends the response head to dst and returns the
// extended slice (the bytes to send first) and what follows it.
//
// conn appends the Connection lines (each ending in CRLF), which depend on
// the client and so are the caller's decision; Serve calls it exactly once,
// and ends the head with those lines and a blank line. A nil conn writes
// "Connection: close". now is the request's time, for the Date header.
//
// A GET of a regular file allocates nothing on Linux when dst has room,
// unless the file is larger than InlineMax (then File is allocated).
func (s *Server) Serve(dst []byte, r *Request, now time.Time, conn func(dst []byte) []byte) (head []byte, resp Response) {
	for attempt := 0; ; attempt++ {
		b := s.builder(dst, r, now, conn)
		head, resp, err := s.serve(&b, r, now, attempt > 0)
		if err == nil {
			resp.Buffer = b.dst
			return head, resp
		}
		if attempt == maxAttempts-1 {
			b := s.builder(dst, r, now, conn)
			head, resp = b.simple(500, "")
			resp.Buffer = b.dst
			return head, resp
		}
	}
}

// Simple answers r with a generated page: Perlbal's "<h1>code - text</h1>"
// and msg, for errors the caller finds itself (a PUT body that breaks off
// or grows too large).
func (s *Server) Simple(dst []byte, r *Request, now time.Time, conn func(dst []byte) []byte, code int, msg string) (head []byte, resp Response) {
	b := s.builder(dst, r, now, conn)
	head, resp = b.simple(code, msg)
	resp.Buffer = b.dst
	return head, resp
}

func (s *Server) builder(dst []byte, r *Request, now time.Time, conn func([]byte) []byte) builder {
	proto := r.Proto
	if proto == "" {
		proto = status.DefaultProto
	}
	return builder{dst: dst, base: len(dst), proto: proto, conn: conn, head: r.Method == "HEAD",
		tokens: s.opts.ServerTokens, now: now, date: &s.date}
}

// pathBufSize is the size of the on-stack buffers for the decoded path;
// longer paths allocate.
const pathBufSize = 512

func (s *Server) serve(b *builder, r *Request, now time.Time, reopen bool) ([]byte, Response, error) {
	switch r.Method {
	case "GET", "HEAD":
	case "PUT":
		if !s.opts.EnablePut {
			return b.done(403, "")
		}
		return b.done(501, "")
	case "DELETE":
		return s.serveDelete(b, r, now, reopen)
	default:
		return b.done(400, "")
	}

	if base, list, ok := splitConcat(r.URI); ok {
		return s.serveConcat(b, r, base, list, now, reopen)
	}
	var pbuf [pathBufSize]byte
	p := decodePath(pbuf[:0], r.URI)
	for _, c := range p {
		if c == 0 {
			return b.done(400, "")
		}
	}
	if bogusPath(p) {
		return b.done(403, "Bogus URL")
	}
	if s.opts.Docroot == "" {
		return b.done(500, "Docroot unconfigured")
	}
	if s.closed.Load() {
		return b.done(503, "")
	}
	e := s.entry(now, reopen)
	if e == nil {
		return b.done(503, "")
	}
	if e.root == nil {
		return b.done(404, "")
	}

	var rbuf [pathBufSize]byte
	rel := appendRelative(rbuf[:0], p)
	if r.Cache != nil && p[len(p)-1] != '/' {
		if cf := r.Cache.lookup(s, e, rel); cf != nil {
			h, resp := s.serveCached(b, r, cf, rel)
			return h, resp, nil
		}
	}
	f, err := s.open(e, rel)
	if err != nil {
		return b.fail(err)
	}
	switch f.st.kind {
	case kindRegular:
		if p[len(p)-1] == '/' {
			// "/file.txt/" is ENOTDIR to stat(2), so 404 in Perlbal.
			f.close()
			return b.done(404, "")
		}
		h, resp := s.serveFile(b, r, &f, rel)
		if r.Cache != nil && resp.Status == 200 && resp.Body != nil {
			r.Cache.add(s, rel, f.st, resp.Body, now)
		}
		return h, resp, nil
	case kindDir:
		f.close()
		return s.serveDir(b, r, e, f.st, string(rel))
	default:
		// A FIFO, socket or device: nothing Perlbal could serve either
		// (it would hang); say it is not there.
		f.close()
		return b.done(404, "")
	}
}

// fail answers an error from opening or reading in the docroot.
func (b *builder) fail(err error) ([]byte, Response, error) {
	if errors.Is(err, os.ErrClosed) {
		return nil, Response{}, errRetry
	}
	return b.done(errStatus(err), "")
}

// done answers with a generated page, for serve's three results.
func (b *builder) done(code int, msg string) ([]byte, Response, error) {
	h, resp := b.simple(code, msg)
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
	// Permission denied, too many symlinks, and a symlink leading out of
	// the docroot (os.Root's "path escapes from parent", openat2's EXDEV).
	return 403
}
