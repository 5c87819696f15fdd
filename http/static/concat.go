package static

import (
	"bytes"
	"errors"
	"time"

	"github.com/plb/plb/http/status"
)

// Concatenated GET (enable_concatenate_get): "/base/??a.css,sub/b.css?v=3"
// answers the listed files, relative to /base/, one after the other, as
// Perlbal's _serve_request_multiple does.

// maxConcatFiles is Perlbal's limit on the files of one concatenated GET.
const maxConcatFiles = 100

// splitConcat finds a concatenated GET in a raw request-target: the first
// '?' immediately followed by another. base is the part before "??", list
// the comma-separated names after it, without any "?..." that follows them
// (a cache buster such as "?v=3").
//
// The split is done before percent-decoding, as for plain GETs (where the
// query is cut first): "%3F%3F" is two question marks in a file name, not a
// concatenation.
func splitConcat(uri []byte) (base, list []byte, ok bool) {
	i := bytes.IndexByte(uri, '?')
	if i < 0 || i+1 >= len(uri) || uri[i+1] != '?' {
		return nil, nil, false
	}
	list = uri[i+2:]
	if j := bytes.IndexByte(list, '?'); j >= 0 {
		list = list[:j]
	}
	return uri[:i], list, true
}

// concatNames splits a concatenation list on commas and calls fn with each
// name, undecoded, in order. Trailing empty names are dropped, as Perl's
// split does; empty names inside the list are kept (and name no file). It
// stops when fn returns false, and returns how many names there are.
func concatNames(list []byte, fn func(name []byte) bool) int {
	list = bytes.TrimRight(list, ",")
	if len(list) == 0 {
		return 0
	}
	n := 0
	for {
		i := bytes.IndexByte(list, ',')
		name := list
		if i >= 0 {
			name = list[:i]
		}
		n++
		if fn != nil && !fn(name) {
			return n
		}
		if i < 0 {
			return n
		}
		list = list[i+1:]
	}
}

// badConcatName reports a decoded list entry Perlbal answers "Bogus
// filenames": any ".." segment (Perlbal only catches "../"), or a NUL.
func badConcatName(name []byte) bool {
	if bytes.IndexByte(name, 0) >= 0 {
		return true
	}
	start := 0
	for i := 0; i <= len(name); i++ {
		if i == len(name) || name[i] == '/' {
			if i-start == 2 && name[start] == '.' && name[start+1] == '.' {
				return true
			}
			start = i + 1
		}
	}
	return false
}

// serveConcat answers a concatenated GET, with Perlbal's checks in Perlbal's
// order, then a head (Date, Server, Last-Modified: the newest of the files,
// Content-Type: that of the first name with a known extension,
// Content-Length: the sum) and the files as Parts. No ranges; an
// If-Modified-Since that matches gives a 304. It is long because it keeps
// Perlbal's checks in Perlbal's order in one place (each answers with its
// own status), which the conformance test compares.
func (s *Server) serveConcat(b *builder, r *Request, rawBase, list []byte, now time.Time, reopen bool) ([]byte, Response, error) {
	var pbuf [pathBufSize]byte
	base := decodePath(pbuf[:0], rawBase)
	if bytes.IndexByte(base, 0) >= 0 {
		return b.done(400, "")
	}
	if bogusPath(base) {
		return b.done(403, "Bogus URL")
	}
	if base[len(base)-1] != '/' {
		return b.done(500, "Base directory (before ??) must end in slash.")
	}
	if s.opts.Docroot == "" {
		return b.done(500, "Docroot unconfigured")
	}
	if !s.opts.EnableConcatenateGet {
		return b.done(403, "Multiple file serving isn't enabled")
	}
	nfiles := concatNames(list, nil)
	if nfiles > maxConcatFiles {
		return b.done(403, "Too many files requested")
	}
	bogus := false
	concatNames(list, func(raw []byte) bool {
		var nbuf [pathBufSize]byte
		bogus = badConcatName(decodePath(nbuf[:0], raw))
		return !bogus
	})
	if bogus {
		return b.done(403, "Bogus filenames")
	}
	if s.closed.Load() {
		return b.done(503, "")
	}
	e := s.entry(now, reopen)
	if e == nil {
		return b.done(503, "")
	}

	var rbuf [pathBufSize]byte
	d, err := s.open(e, appendRelative(rbuf[:0], base))
	if err == nil {
		d.close()
	}
	if errorsIsClosed(err) {
		return nil, Response{}, errRetry
	}
	if err != nil || d.st.kind != kindDir {
		return b.done(404, "Base directory not a directory")
	}
	if nfiles == 0 {
		return b.done(404, "One or more file does not exist")
	}

	var files []file
	closeAll := func() {
		for i := range files {
			files[i].close()
		}
	}
	var (
		sum    int64
		newest time.Time
		mime   string
		failed error
	)
	concatNames(list, func(raw []byte) bool {
		var nbuf [2 * pathBufSize]byte
		p := decodePath(append(nbuf[:0], base...), raw)
		if p[len(p)-1] == '/' {
			failed = errMissing
			return false
		}
		f, err := s.open(e, appendRelative(rbuf[:0], p))
		if err != nil {
			failed = err
			return false
		}
		if f.st.kind != kindRegular {
			f.close()
			failed = errMissing
			return false
		}
		files = append(files, f)
		sum += f.st.size
		if f.st.mtime.After(newest) {
			newest = f.st.mtime
		}
		if mime == "" {
			mime = lookupMIME(s.opts.MIME, extension(p))
		}
		return true
	})
	if failed != nil {
		closeAll()
		if errorsIsClosed(failed) {
			return nil, Response{}, errRetry
		}
		return b.done(404, "One or more file does not exist")
	}
	if mime == "" {
		mime = DefaultMIMEType
	}

	var lmbuf [status.DateLen]byte
	lastMod := status.AppendDate(lmbuf[:0], newest)
	code := 200
	if notModified(r.IfModifiedSince, lastMod, newest, sum, b.now) {
		code = 304
	}
	b.start(code, lastMod)
	b.header("Content-Type", mime)
	if code == 200 {
		b.contentLength(sum)
	}
	head := b.end()
	resp := Response{Status: code}
	if code != 200 || b.head {
		closeAll()
		return head, resp, nil
	}
	for i := range files {
		f := &files[i]
		if f.st.size == 0 {
			f.close()
			continue
		}
		resp.Parts = append(resp.Parts, Region{File: f.osFile(nil), Length: f.st.size})
	}
	return head, resp, nil
}

// errMissing stands for a concatenation entry that is not a regular file.
var errMissing = errors.New("static: not a regular file")
