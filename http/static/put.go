package static

import (
	"crypto/md5"
	"encoding/base64"
	"errors"
	"hash"
	"io/fs"
	"math/rand/v2"
	"os"
	"strconv"
	"syscall"
	"time"
)

// Upload is a PUT in progress (Perlbal's put_* states): the file is open
// and the body is written to it as it arrives, so memory never holds more
// than the caller's read buffer. It is owned by one connection and not safe
// for concurrent use.
//
// Without Content-MD5 checking the file is written in place, truncated at
// the start, as Perlbal does: it exists from the first byte, and a client
// that disconnects leaves what it sent. With checking, the body goes to a
// temporary "<name>.<pid>.<random>.tmp" beside it, renamed over the name
// when the digest matches and removed otherwise, or on any failure.
type Upload struct {
	s      *Server
	dir    *os.Root // the file's directory
	f      *os.File
	name   string // in dir
	tmp    string // in dir, "" when writing in place
	md5    hash.Hash
	expect []byte // the Content-MD5 value, normalized (a copy)
	n      int64  // bytes written
	limit  int64  // largest body, 0: none
	done   bool
}

// UploadError is why Write refused a body: the status and message to
// answer with (Server.Simple builds the page).
type UploadError struct {
	Code int
	Msg  string
}

func (e *UploadError) Error() string { return "static: PUT: " + strconv.Itoa(e.Code) + " " + e.Msg }

// StartPut begins a PUT: it checks the request in Perlbal's order (403
// unless enable_put, the size against max_put_size, the file name, the
// min_put_directory levels), creates missing deeper directories (0755) and
// opens the file (0644). On success it returns the Upload and no head: the
// caller then sends "100 Continue" if the client expects it, feeds the body
// to Write and ends with Finish, or Abort if the body never completes.
// Otherwise it returns a nil Upload and the error response, appended to dst
// as Serve does.
func (s *Server) StartPut(dst []byte, r *Request, now time.Time, conn func(dst []byte) []byte) (*Upload, []byte, Response) {
	for attempt := 0; ; attempt++ {
		u, head, resp, err := s.startPut(dst, r, now, conn, attempt > 0)
		if err == nil {
			return u, head, resp
		}
		if attempt == maxAttempts-1 {
			b := s.builder(dst, r, now, conn)
			h, resp := b.simple(500, "")
			resp.Buffer = b.dst
			return nil, h, resp
		}
	}
}

func (s *Server) startPut(dst []byte, r *Request, now time.Time, conn func([]byte) []byte, reopen bool) (*Upload, []byte, Response, error) {
	b := s.builder(dst, r, now, conn)
	fail := func(code int, msg string) (*Upload, []byte, Response, error) {
		h, resp := b.simple(code, msg)
		resp.Buffer = b.dst
		return nil, h, resp, nil
	}
	if !s.opts.EnablePut {
		return fail(403, "")
	}
	limit := s.opts.MaxPutSize
	if r.Chunked {
		if m := s.opts.MaxChunkedSize; m > 0 && (limit == 0 || m < limit) {
			limit = m
		}
	} else {
		n := max(r.ContentLength, 0)
		if s.opts.MaxPutSize > 0 && n > s.opts.MaxPutSize {
			return fail(400, "Content-length of "+strconv.FormatInt(n, 10)+" is invalid.")
		}
	}
	dir, name, ndirs, ok := parsePutPath(r.URI)
	if !ok {
		return fail(400, "Invalid filename")
	}
	if s.opts.Docroot == "" {
		return fail(500, "Docroot unconfigured")
	}
	e := s.entry(now, reopen)
	if e == nil {
		return fail(503, "")
	}
	if e.root == nil {
		return fail(404, "Base directory does not exist")
	}
	if m := s.opts.MinPutDirectory; m > 0 {
		if ndirs < m {
			return fail(400, "Does not meet minimum directory requirement")
		}
		fi, err := e.root.Stat(string(firstDirs(dir, m)))
		if errorsIsClosed(err) {
			return nil, nil, Response{}, errRetry
		}
		if err != nil || !fi.IsDir() {
			return fail(404, "Base directory does not exist")
		}
	}

	dirName := string(dir)
	if dirName == "" {
		dirName = "."
	}
	d, err := e.root.OpenRoot(dirName)
	if errors.Is(err, fs.ErrNotExist) {
		// mkdir -p, as Perlbal does on ENOENT.
		if err := e.root.MkdirAll(dirName, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			if errorsIsClosed(err) {
				return nil, nil, Response{}, errRetry
			}
			return fail(putErrStatus(err, 500), "Unable to create directory")
		}
		d, err = e.root.OpenRoot(dirName)
	}
	if errorsIsClosed(err) {
		return nil, nil, Response{}, errRetry
	}
	if err != nil {
		return fail(putErrStatus(err, 500), "Internal error")
	}

	u := &Upload{s: s, dir: d, name: string(name), limit: limit}
	open := u.name
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if s.opts.EnableMD5 && len(r.ContentMD5) > 0 {
		u.md5 = md5.New()
		u.expect = append([]byte(nil), expectedMD5(r.ContentMD5)...)
		u.tmp = u.name + "." + strconv.Itoa(os.Getpid()) + "." + strconv.FormatUint(uint64(rand.Uint32()), 10) + ".tmp"
		open = u.tmp
		flags = os.O_CREATE | os.O_WRONLY | os.O_EXCL
	}
	// O_NONBLOCK: a FIFO under that name must not block the loop (the
	// open fails with ENXIO instead); regular files ignore it.
	f, err := d.OpenFile(open, flags|syscall.O_NONBLOCK, 0o644)
	if err != nil {
		d.Close()
		if errors.Is(err, fs.ErrExist) && u.tmp != "" {
			// A temporary name already taken: near impossible.
			return fail(500, "")
		}
		return fail(putErrStatus(err, 500), "Internal error")
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		d.Close()
		return fail(403, "Not a regular file")
	}
	u.f = f
	return u, nil, Response{}, nil
}

// putErrStatus maps a file-system error of a PUT: 403 for a permission or
// a path leading out of the docroot (openat2's EXDEV, os.Root's "path
// escapes from parent", a symlink loop), else def.
func putErrStatus(err error, def int) int {
	var pe *fs.PathError
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.ELOOP) ||
		errors.As(err, &pe) && pe.Err.Error() == "path escapes from parent" {
		return 403
	}
	return def
}

// Written returns the body bytes written so far.
func (u *Upload) Written() int64 { return u.n }

// Write appends body bytes to the file. An *UploadError means the upload
// cannot go on (the body is over the limit, or the disk refused it): the
// caller answers with it and calls Abort.
func (u *Upload) Write(p []byte) error {
	if u.done {
		return &UploadError{Code: 500, Msg: "Error saving file"}
	}
	if u.limit > 0 && u.n+int64(len(p)) > u.limit {
		return &UploadError{Code: 400, Msg: "Content-length of " + strconv.FormatInt(u.n+int64(len(p)), 10) + " is invalid."}
	}
	if u.md5 != nil {
		u.md5.Write(p)
	}
	for len(p) > 0 {
		n, err := u.f.Write(p)
		u.n += int64(n)
		p = p[n:]
		if err != nil {
			return &UploadError{Code: 500, Msg: "Error saving file"}
		}
	}
	return nil
}

// Finish ends a complete upload and answers it: 200 (written in place),
// 201 (digest matched, renamed into place), 400 "Content-MD5 mismatch" (the
// temporary file removed) or 500. r is the PUT request, for the status line
// and headers.
func (u *Upload) Finish(dst []byte, r *Request, now time.Time, conn func(dst []byte) []byte) ([]byte, Response) {
	b := u.s.builder(dst, r, now, conn)
	head, resp := u.finish(&b)
	resp.Buffer = b.dst
	return head, resp
}

func (u *Upload) finish(b *builder) ([]byte, Response) {
	if u.done {
		return b.simple(500, "")
	}
	u.done = true
	defer u.dir.Close()
	if err := u.f.Close(); err != nil {
		if u.tmp != "" {
			u.dir.Remove(u.tmp)
		}
		return b.simple(500, "Error saving file")
	}
	if u.md5 == nil {
		return b.simple(200, "")
	}
	var sum [md5.Size]byte
	var enc [24]byte
	actual := enc[:base64.RawStdEncoding.EncodedLen(md5.Size)]
	base64.RawStdEncoding.Encode(actual, u.md5.Sum(sum[:0]))
	if string(actual) != string(u.expect) {
		u.dir.Remove(u.tmp)
		// The expected value is the client's: escaped, since the page is
		// text/html.
		msg := "Content-MD5 mismatch, expected: " + string(appendHTML(nil, string(u.expect))) + " actual: " + string(actual)
		return b.simple(400, msg)
	}
	if err := u.dir.Rename(u.tmp, u.name); err != nil {
		u.dir.Remove(u.tmp)
		return b.simple(500, "Error renaming file")
	}
	return b.simple(201, "")
}

// Abort ends an upload that will not complete (the client went away, the
// body broke or grew too large): the file is closed, and a temporary file
// removed. What was written in place stays, as in Perlbal. Abort after
// Finish or Abort does nothing.
func (u *Upload) Abort() {
	if u.done {
		return
	}
	u.done = true
	u.f.Close()
	if u.tmp != "" {
		u.dir.Remove(u.tmp)
	}
	u.dir.Close()
}

// expectedMD5 normalizes a Content-MD5 value as Perlbal compares it: blanks
// around it and the trailing '=' padding dropped (blanks among the '=' too),
// so that "abc==" and "abc" both match a digest that base64-encodes,
// unpadded, to "abc".
func expectedMD5(v []byte) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t' || v[len(v)-1] == '=') {
		v = v[:len(v)-1]
	}
	return v
}

// serveDelete answers a DELETE: 403 unless enable_delete, 400 "Invalid
// filename" for a name outside the pattern, then 204 once removed, 404 if
// it was not there, 400 with the system's reason otherwise ("Is a
// directory": directories are never removed).
func (s *Server) serveDelete(b *builder, r *Request, now time.Time, reopen bool) ([]byte, Response, error) {
	if !s.opts.EnableDelete {
		return b.done(403, "")
	}
	if !validDeletePath(r.URI) {
		return b.done(400, "Invalid filename")
	}
	if s.opts.Docroot == "" {
		return b.done(500, "Docroot unconfigured")
	}
	e := s.entry(now, reopen)
	if e == nil {
		return b.done(503, "")
	}
	if e.root == nil {
		return b.done(404, "")
	}
	rel := string(r.URI[1:])
	fi, err := e.root.Lstat(rel)
	if err == nil && fi.IsDir() {
		err = syscall.EISDIR
	} else if err == nil {
		err = e.root.Remove(rel)
	}
	switch {
	case err == nil:
		return b.done(204, "")
	case errorsIsClosed(err):
		return nil, Response{}, errRetry
	case errors.Is(err, fs.ErrNotExist):
		return b.done(404, "")
	case putErrStatus(err, 400) == 403:
		// A symlink leading out of the docroot, or no permission.
		return b.done(403, "")
	}
	return b.done(400, strerror(err))
}

// strerror is the system's text for err, capitalized as strerror(3) and
// Perl's "$!" print it ("Is a directory").
func strerror(err error) string {
	var errno syscall.Errno
	var pe *fs.PathError
	msg := err.Error()
	switch {
	case errors.As(err, &errno):
		msg = errno.Error()
	case errors.As(err, &pe):
		msg = pe.Err.Error()
	}
	if msg != "" && msg[0] >= 'a' && msg[0] <= 'z' {
		msg = string(msg[0]-'a'+'A') + msg[1:]
	}
	return msg
}
