package static

import (
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/plb/plb/http/status"
)

// serveDir answers for the directory rel inside the docroot: the first
// index file, else the listing or Perlbal's "Directory listing disabled"
// page.
func (s *Server) serveDir(b *builder, r *Request, e *rootEntry, st fileStat, rel string) ([]byte, Response, error) {
	for _, idx := range s.opts.IndexFiles {
		if !validIndexName(idx) {
			continue
		}
		name := idx
		if rel != "." {
			name = rel + "/" + idx
		}
		f, err := s.open(e, []byte(name))
		if err != nil {
			if errorsIsClosed(err) {
				return nil, Response{}, errRetry
			}
			continue
		}
		if f.st.kind != kindRegular {
			f.close()
			continue
		}
		// Served in place, with no redirect, conditional and range rules
		// included, as Perlbal does.
		h, resp := s.serveFile(b, r, &f, []byte(idx))
		return h, resp, nil
	}

	if !s.opts.DirIndexing {
		// Perlbal's answer, kept because its test 15-webserver expects it:
		// a 200, not a 403.
		return b.done(200, "Directory listing disabled")
	}

	dir, err := e.root.Open(rel)
	if err != nil {
		return b.fail(err)
	}
	entries, err := dir.ReadDir(-1)
	dir.Close()
	if err != nil {
		return b.fail(err)
	}
	body := s.listing(e.root, entries, rel)

	var lmbuf [status.DateLen]byte
	b.start(200, status.AppendDate(lmbuf[:0], st.mtime))
	b.dst = append(b.dst, "Content-Type: text/html\r\n"...)
	b.contentLength(int64(len(body)))
	head := b.end()
	resp := Response{Status: 200}
	if !b.head {
		resp.Body = body
	}
	return head, resp, nil
}

// listing builds Perlbal's directory page: entries sorted by name,
// directories in bold with a trailing slash, each linked by its absolute
// path. Unlike Perlbal, "." and ".." are left out, links are percent-encoded
// and names HTML-escaped. A symlink counts as a directory if it leads to one
// inside the docroot.
func (s *Server) listing(root *os.Root, entries []fs.DirEntry, rel string) []byte {
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })

	// The base link: the cleaned path with one trailing slash.
	base := "/"
	if rel != "." {
		base = "/" + rel + "/"
	}

	body := make([]byte, 0, 64+len(entries)*(2*len(base)+64))
	body = append(body, "<html><body>"...)
	for _, e := range entries {
		name := e.Name()
		isDir := e.IsDir()
		if e.Type()&fs.ModeSymlink != 0 {
			target := name
			if rel != "." {
				target = rel + "/" + name
			}
			st, err := root.Stat(target)
			isDir = err == nil && st.IsDir()
		}
		if isDir {
			body = append(body, "<b><a href='"...)
		} else {
			body = append(body, "<a href='"...)
		}
		body = appendHref(body, base)
		body = appendHref(body, name)
		if isDir {
			body = append(body, '/')
		}
		body = append(body, "'>"...)
		body = appendHTML(body, name)
		if isDir {
			body = append(body, "</a></b><br />\n"...)
		} else {
			body = append(body, "</a><br />\n"...)
		}
	}
	return append(body, "</body></html>"...)
}

// appendHref appends s percent-encoded for a path inside a single-quoted
// attribute: everything but unreserved characters and '/' is escaped, so
// neither quotes, '&', '?', '#' nor '%' survive raw.
func appendHref(dst []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '/' {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', hex[c>>4], hex[c&15])
	}
	return dst
}

// appendHTML appends s with the five HTML-special characters escaped.
func appendHTML(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&':
			dst = append(dst, "&amp;"...)
		case '<':
			dst = append(dst, "&lt;"...)
		case '>':
			dst = append(dst, "&gt;"...)
		case '"':
			dst = append(dst, "&#34;"...)
		case '\'':
			dst = append(dst, "&#39;"...)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
