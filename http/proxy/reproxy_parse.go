package proxy

import (
	"bytes"
	"net/netip"
	"strconv"

	"github.com/plb/plb/http"
)

// reproxyURL is one target of an X-REPROXY-URL list.
type reproxyURL struct {
	// Host and Port are the URL's authority; Port defaults to 80.
	Host string
	Port uint16
	// Path is what follows the authority, "/" when nothing does.
	Path string
	// Key is "Host:Port", the name of the connection pool the URL uses.
	Key string
}

// maxReproxyURLs bounds the URLs taken from one X-REPROXY-URL header.
const maxReproxyURLs = 32

// parseReproxyURLs appends to dst the usable URLs of an X-REPROXY-URL
// value: whitespace-separated "http://host[:port][/path]" (Perlbal's
// m!^http://(.+?)(?::(\d+))?(/.*)?$!). Anything else (another scheme, an
// empty host, a port out of range, a control byte) is skipped, as Perlbal
// skips what its pattern does not match.
func parseReproxyURLs(dst []reproxyURL, v []byte) []reproxyURL {
	for len(v) > 0 && len(dst) < maxReproxyURLs {
		var tok []byte
		tok, v = nextWord(v)
		if u, ok := parseReproxyURL(tok); ok {
			dst = append(dst, u)
		}
	}
	return dst
}

// nextWord splits the first whitespace-separated word (empty when there
// is none) off v.
func nextWord(v []byte) (word, rest []byte) {
	i := 0
	for i < len(v) && isSpace(v[i]) {
		i++
	}
	j := i
	for j < len(v) && !isSpace(v[j]) {
		j++
	}
	return v[i:j], v[j:]
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'
}

func parseReproxyURL(tok []byte) (reproxyURL, bool) {
	const scheme = "http://"
	if len(tok) <= len(scheme) || !bytes.EqualFold(tok[:len(scheme)], []byte(scheme)) {
		return reproxyURL{}, false
	}
	for _, c := range tok {
		if c < 0x21 || c == 0x7f {
			return reproxyURL{}, false
		}
	}
	rest := tok[len(scheme):]
	path := []byte("/")
	if k := bytes.IndexByte(rest, '/'); k >= 0 {
		rest, path = rest[:k], rest[k:]
	}
	host, port := rest, uint16(80)
	if k := bytes.LastIndexByte(rest, ':'); k >= 0 && k+1 < len(rest) && allDigits(rest[k+1:]) {
		p, err := strconv.ParseUint(string(rest[k+1:]), 10, 16)
		if err != nil || p == 0 {
			return reproxyURL{}, false
		}
		host, port = rest[:k], uint16(p)
	}
	if len(host) == 0 || bytes.IndexByte(host, '@') >= 0 {
		return reproxyURL{}, false
	}
	u := reproxyURL{Host: string(host), Port: port, Path: string(path)}
	u.Key = u.Host + ":" + strconv.Itoa(int(port))
	return u, true
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// addr returns the URL's address when its host is an IP literal (IPv6 in
// brackets); ok is false for a name, which must be resolved.
func (u *reproxyURL) addr() (netip.AddrPort, bool) {
	h := u.Host
	if len(h) > 2 && h[0] == '[' && h[len(h)-1] == ']' {
		h = h[1 : len(h)-1]
	}
	a, err := netip.ParseAddr(h)
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a, u.Port), true
}

// cacheFor is a parsed X-REPROXY-CACHE-FOR value.
type cacheFor struct {
	// Secs is how long the answer may be reused (> 0 when ok).
	Secs int64
	// Names are the response headers to keep with it.
	Names [][]byte
}

// maxCacheHeaders bounds the header names one X-REPROXY-CACHE-FOR keeps.
const maxCacheHeaders = 32

// parseCacheFor parses "<secs>; <Header-Name> <Header-Name>...". ok is
// false when secs is not a positive number (Perlbal then never serves the
// entry: it expires at once). The names are views into v.
func parseCacheFor(v []byte) (cf cacheFor, ok bool) {
	secs, names, _ := bytes.Cut(v, []byte(";"))
	secs = bytes.TrimSpace(secs)
	// Perl numifies a leading run of digits ("10s" is 10).
	n := 0
	for n < len(secs) && secs[n] >= '0' && secs[n] <= '9' {
		n++
	}
	if n == 0 || n > 9 {
		return cacheFor{}, false
	}
	s, _ := strconv.ParseInt(string(secs[:n]), 10, 64)
	if s <= 0 {
		return cacheFor{}, false
	}
	cf.Secs = s
	for len(names) > 0 && len(cf.Names) < maxCacheHeaders {
		var name []byte
		name, names = nextWord(names)
		if http.IsToken(name) {
			cf.Names = append(cf.Names, name)
		}
	}
	return cf, true
}

// parseExpectedSize parses X-REPROXY-EXPECTED-SIZE; ok is false when it is
// absent or not a number (then no size is expected, as in Perlbal where a
// false value is ignored).
func parseExpectedSize(v []byte) (int64, bool) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || len(v) > 18 || !allDigits(v) {
		return 0, false
	}
	n, _ := strconv.ParseInt(string(v), 10, 64)
	return n, n > 0
}

// contentRangeTotal returns the complete length from a Content-Range value
// ("bytes 0-6/31000", "bytes */31000"), or false.
func contentRangeTotal(v []byte) (int64, bool) {
	k := bytes.LastIndexByte(v, '/')
	if k < 0 {
		return 0, false
	}
	return parseExpectedSize(v[k+1:])
}

// stripIMSLength removes Internet Explorer's "; length=N" from an
// If-Modified-Since value, as Perlbal does before comparing it.
func stripIMSLength(v []byte) []byte {
	const suf = "; length="
	i := bytes.Index(v, []byte(suf))
	if i < 0 {
		return v
	}
	j := i + len(suf)
	k := j
	for k < len(v) && v[k] >= '0' && v[k] <= '9' {
		k++
	}
	if k == j {
		return v
	}
	out := make([]byte, 0, len(v)-(k-i))
	return append(append(out, v[:i]...), v[k:]...)
}
