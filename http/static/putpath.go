package static

import "bytes"

// PUT and DELETE name their file with Perlbal's conservative patterns, on
// the raw request-target (no percent-decoding, so no query string either):
//
//	PUT     ^((?:/[\w\-\.]+)*)/([\w\-\.]+)$
//	DELETE  ^(?:/[\w\-\.]+)+$
//
// and any ".." anywhere is refused before that, even inside a name.

// isPutNameByte is Perl's [\w\-\.] on bytes: ASCII letters, digits, '_',
// '-' and '.'.
func isPutNameByte(c byte) bool {
	return isWordByte(c) || c == '-' || c == '.'
}

// parsePutPath splits a PUT target into its directory (relative to the
// docroot, without leading or trailing slash, "" for the docroot itself)
// and file name, and counts the directories. ok is false when the target
// does not match the PUT pattern or contains "..".
func parsePutPath(uri []byte) (dir, name []byte, ndirs int, ok bool) {
	if !validSegments(uri) {
		return nil, nil, 0, false
	}
	i := bytes.LastIndexByte(uri, '/')
	name = uri[i+1:]
	if i > 0 {
		dir = uri[1:i]
		ndirs = bytes.Count(dir, []byte{'/'}) + 1
	}
	return dir, name, ndirs, true
}

// validDeletePath reports whether a DELETE target matches its pattern
// (which is the PUT pattern too: one or more "/name" segments).
func validDeletePath(uri []byte) bool { return validSegments(uri) }

// validSegments reports whether uri is one or more "/name" segments of
// name bytes, with no "..".
func validSegments(uri []byte) bool {
	if len(uri) < 2 || uri[0] != '/' || bytes.Contains(uri, []byte("..")) {
		return false
	}
	seg := 0
	for _, c := range uri[1:] {
		switch {
		case c == '/':
			if seg == 0 {
				return false
			}
			seg = 0
		case isPutNameByte(c):
			seg++
		default:
			return false
		}
	}
	return seg > 0
}

// firstDirs returns the first n directories of dir ("a/b/c", 2: "a/b").
func firstDirs(dir []byte, n int) []byte {
	for i, c := range dir {
		if c == '/' {
			n--
			if n == 0 {
				return dir[:i]
			}
		}
	}
	return dir
}
