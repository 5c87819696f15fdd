package plugin

// Host pattern matching shared by Vhosts and Redirect (Perlbal's order).

// EachHostPattern calls try with each pattern host matches, most specific
// first, until try returns true, and returns that pattern ("" when none
// did). host is a Host field already lower-cased; a ":port" suffix is
// removed first. The order is Perlbal's: the host itself, "*." + host,
// then one label peeled at a time ("*.b.c" for "a.b.c", then "*.c", then
// "*"), and "*" last. A host without a name tries "*" only.
func EachHostPattern(host string, try func(pattern string) bool) string {
	host = stripPort(host)
	if host == "" {
		if try("*") {
			return "*"
		}
		return ""
	}
	if try(host) {
		return host
	}
	wild := "*." + host
	if try(wild) {
		return wild
	}
	for {
		next, ok := peel(wild)
		if !ok {
			break
		}
		wild = next
		if try(wild) {
			return wild
		}
	}
	if wild != "*" && try("*") {
		return "*"
	}
	return ""
}

// stripPort removes a trailing ":digits" (Perlbal's s/:\d+$//).
func stripPort(h string) string {
	i := len(h)
	for i > 0 && h[i-1] >= '0' && h[i-1] <= '9' {
		i--
	}
	if i < len(h) && i > 0 && h[i-1] == ':' {
		return h[:i-1]
	}
	return h
}

// peel is Perlbal's s/^\*\.[\w\-\_]+/*/: "*.a.b" becomes "*.b", "*.b"
// becomes "*". A first label with other characters is only partly taken,
// as the regex does ("*.a%b" becomes "*%b", which peels no further).
func peel(w string) (string, bool) {
	if len(w) < 3 || w[0] != '*' || w[1] != '.' || !hostWord(w[2]) {
		return "", false
	}
	i := 3
	for i < len(w) && hostWord(w[i]) {
		i++
	}
	return "*" + w[i:], true
}

func hostWord(c byte) bool {
	return c == '_' || c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// LowerASCII lower-cases ASCII letters.
func LowerASCII(b []byte) string {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			out := make([]byte, len(b))
			for i, c := range b {
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				out[i] = c
			}
			return string(out)
		}
	}
	return string(b)
}
