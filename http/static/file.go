package static

import (
	"bytes"
	"slices"
	"time"

	"github.com/plb/plb/http"
	"github.com/plb/plb/http/status"
)

// serveFile answers with the regular file f (opened as name): 200, 206, 304
// or 416, and what to send after the head: the region read into Body when
// it is small, else the file itself. It takes ownership of f.
func (s *Server) serveFile(b *builder, r *Request, f *file, name []byte) ([]byte, Response) {
	code, off, n := s.fileHead(b, r, f.st, name)
	head := b.end()
	resp := Response{Status: code}
	if (code != 200 && code != 206) || b.head || n <= 0 {
		f.close()
		return head, resp
	}
	if n > int64(s.opts.InlineMax) {
		resp.File, resp.Offset, resp.Length = f.osFile(name), off, n
		return head, resp
	}
	// Read the region right after the head, in the same buffer: one write
	// sends both.
	h := len(b.dst)
	b.dst = slices.Grow(b.dst, int(n))[:h+int(n)]
	got, err := f.pread(b.dst[h:], off)
	f.close()
	if err != nil || int64(got) != n {
		// The file shrank (or broke) since fstat: the head already
		// promised n bytes, so answer afresh.
		b.reset()
		return b.simple(500, "")
	}
	resp.Body = b.dst[h : h+int(n) : h+int(n)]
	return b.dst[:h:h], resp
}

// fileHead decides the response for a regular file and appends its head up
// to the Connection lines, in Perlbal's order: Date, Server, Last-Modified,
// Accept-Ranges, then Content-Type and Content-Length, or Content-Range and
// Content-Length (206), or Content-Range and a zero Content-Length (416);
// a 304 has neither. It returns the code and the region to send.
func (s *Server) fileHead(b *builder, r *Request, st fileStat, name []byte) (code int, off, n int64) {
	size := st.size
	mtime := st.mtime
	var lmbuf [status.DateLen]byte
	lastMod := status.AppendDate(lmbuf[:0], mtime)

	if notModified(r.IfModifiedSince, lastMod, mtime, size, b.now) {
		code = 304
	} else {
		code, off, n = http.ParseRange(r.Range, size)
	}

	b.start(code, lastMod)
	b.dst = append(b.dst, "Accept-Ranges: bytes\r\n"...)
	switch code {
	case 200:
		b.header("Content-Type", mimeFor(s.opts.MIME, name))
		b.contentLength(size)
	case 206:
		b.header("Content-Type", mimeFor(s.opts.MIME, name))
		b.dst = http.AppendContentRange(b.dst, code, off, n, size)
		b.contentLength(n)
	case 416:
		b.dst = http.AppendContentRange(b.dst, code, off, n, size)
		b.dst = append(b.dst, "Content-Length: 0\r\n"...)
	}
	return code, off, n
}

// notModified decides a conditional GET. Perlbal's rule first: the value,
// once IE's "; length=N" is cut out, equals the Last-Modified string, and N
// (if given) equals the size. plb also accepts any HTTP date not before the
// file's mtime and not after now (RFC 9110 §13.1.3), so a client that keeps
// a date of its own still gets its 304.
func notModified(ims, lastMod []byte, mtime time.Time, size int64, now time.Time) bool {
	if len(ims) == 0 {
		return false
	}
	if i := bytes.Index(ims, []byte("; length=")); i >= 0 {
		j := i + len("; length=")
		k := j
		for k < len(ims) && ims[k] >= '0' && ims[k] <= '9' {
			k++
		}
		if k > j {
			if n, _ := http.DecimalSaturating(ims[j:k]); n != size {
				return false
			}
			// Cut the match out in a copy: ims belongs to the caller.
			var buf [64]byte
			if len(ims)-(k-i) > len(buf) {
				return false
			}
			c := append(append(buf[:0], ims[:i]...), ims[k:]...)
			return dateNotModified(c, lastMod, mtime, now)
		}
	}
	return dateNotModified(ims, lastMod, mtime, now)
}

func dateNotModified(ims, lastMod []byte, mtime, now time.Time) bool {
	ims = bytes.TrimSpace(ims)
	if bytes.Equal(ims, lastMod) {
		return true
	}
	t, ok := status.ParseDate(ims)
	if !ok || t.After(now) {
		return false
	}
	return !mtime.Truncate(time.Second).After(t)
}
