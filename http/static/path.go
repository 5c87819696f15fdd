package static

import "github.com/plb/plb/http"

// Request-target handling: Perlbal's durl, its "Bogus URL" rule (without its
// trailing "/.." hole), and the clean relative name handed to os.Root.

// decodePath appends to dst the path of a raw request-target: the query
// string is cut first, then %XX escapes are decoded once. '+' stays '+'
// (Perlbal's durl), and a '%' not followed by two hex digits stays as is.
//
// Cutting before decoding differs from Perlbal, which decodes first, so that
// %3F is a '?' in a file name rather than the start of a query.
func decodePath(dst, uri []byte) []byte {
	for i := 0; i < len(uri); i++ {
		c := uri[i]
		if c == '?' {
			return dst
		}
		if b, ok := http.PercentByte(uri, i); ok {
			c, i = b, i+2
		}
		dst = append(dst, c)
	}
	return dst
}

// bogusPath reports whether a decoded path gets Perlbal's 403 "Bogus URL":
// it does not start with '/', or one of its segments is "..". Perlbal only
// looks for "/../", so "/.." and "/foo/.." reached the docroot's parent;
// here any ".." segment is refused. "foo..123.txt" is fine.
func bogusPath(p []byte) bool {
	if len(p) == 0 || p[0] != '/' {
		return true
	}
	start := 1
	for i := 1; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			if i-start == 2 && p[start] == '.' && p[start+1] == '.' {
				return true
			}
			start = i + 1
		}
	}
	return false
}

// appendRelative appends the name of a decoded, non-bogus path relative to
// the docroot: segments joined by '/', with empty and "." segments dropped,
// "." for the docroot itself. os.Root wants exactly that.
func appendRelative(dst, p []byte) []byte {
	n := len(dst)
	start := 1
	for i := 1; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			seg := p[start:i]
			if len(seg) > 0 && !(len(seg) == 1 && seg[0] == '.') {
				if len(dst) > n {
					dst = append(dst, '/')
				}
				dst = append(dst, seg...)
			}
			start = i + 1
		}
	}
	if len(dst) == n {
		dst = append(dst, '.')
	}
	return dst
}

// validIndexName reports whether an index_files entry names a file inside
// the directory itself; anything else is skipped rather than trusted.
func validIndexName(name string) bool {
	if name == "" || name == "." || name == ".." {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '/' || name[i] == 0 {
			return false
		}
	}
	return true
}
