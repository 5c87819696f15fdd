package static

import (
	"bytes"
	"slices"
	"time"

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
		code, off, n = parseRange(r.Range, size)
	}

	b.start(code, lastMod)
	b.dst = append(b.dst, "Accept-Ranges: bytes\r\n"...)
	switch code {
	case 200:
		b.header("Content-Type", mimeFor(s.opts.MIME, name))
		b.contentLength(size)
	case 206:
		b.header("Content-Type", mimeFor(s.opts.MIME, name))
		b.dst = AppendContentRange(b.dst, code, off, n, size)
		b.contentLength(n)
	case 416:
		b.dst = AppendContentRange(b.dst, code, off, n, size)
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
			if n, _ := parseUint(ims[j:k]); n != size {
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

// parseRange interprets a Range header for a file of size bytes: 200 with
// the whole file when there is no usable single range, 206 with the region,
// or 416.
//
// Only one "bytes=S-E", "bytes=S-" or "bytes=-N" is honoured; several ranges
// are ignored, as in Perlbal. Unlike Perlbal, "-N" is the last N bytes (RFC
// 9110), not bytes 0..N. Perlbal's 416 cases stay: S > E, "-0", S >= size.
func parseRange(v []byte, size int64) (code int, off, n int64) {
	v = bytes.TrimSpace(v)
	const unit = "bytes="
	if len(v) < len(unit) || !bytes.EqualFold(v[:len(unit)], []byte(unit)) {
		return 200, 0, size
	}
	v = bytes.TrimSpace(v[len(unit):])
	dash := bytes.IndexByte(v, '-')
	if dash < 0 {
		return 200, 0, size
	}
	first, last := bytes.TrimSpace(v[:dash]), bytes.TrimSpace(v[dash+1:])
	start, okStart := parseUint(first)
	end, okEnd := parseUint(last)
	if (len(first) > 0 && !okStart) || (len(last) > 0 && !okEnd) || (len(first) == 0 && len(last) == 0) {
		// Malformed, or a multi-range list ("0-1,5-6" fails here too).
		return 200, 0, size
	}
	if len(first) == 0 {
		// Suffix range: the last end bytes.
		if end == 0 || size == 0 {
			return 416, 0, 0
		}
		if end > size {
			end = size
		}
		return 206, size - end, end
	}
	if len(last) > 0 && start > end {
		return 416, 0, 0
	}
	if start >= size {
		return 416, 0, 0
	}
	if len(last) == 0 || end >= size {
		end = size - 1
	}
	return 206, start, end - start + 1
}

// parseUint parses decimal digits, saturating at the largest int64 rather
// than failing, so a huge end clamps and a huge start is unsatisfiable.
func parseUint(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (1<<63-1-9)/10 {
			n = 1<<63 - 1
			continue
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
