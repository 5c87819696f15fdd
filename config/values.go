package config

import (
	"math"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/plb/plb/pool"
)

// Value syntax shared by the three syntaxes. Perlbal's types: bool
// (1 true on yes / 0 false off no, any case), int (^\d+$), size (digits with
// an optional b, k or m suffix), and durations as integer seconds; plb also
// accepts Go durations ("15s", "500ms") wherever a duration is expected.

// isSpace reports whether b is in Perl's \s (ASCII).
func isSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\f' || b == '\v'
}

// isWord reports whether b is in Perl's \w (ASCII).
func isWord(b byte) bool {
	return b == '_' || '0' <= b && b <= '9' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z'
}

func isWordString(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isWord(s[i]) {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func lowerASCII(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// toLowerASCII lower-cases ASCII letters only, as Perl's lc on bytes.
func toLowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				b[j] = lowerASCII(b[j])
			}
			return string(b)
		}
	}
	return s
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func trimSpace(s string) string {
	i, j := 0, len(s)
	for i < j && isSpace(s[i]) {
		i++
	}
	for j > i && isSpace(s[j-1]) {
		j--
	}
	return s[i:j]
}

// parseBool parses Perlbal's boolean words.
func parseBool(v string) (bool, bool) {
	switch {
	case v == "1" || equalFold(v, "true") || equalFold(v, "on") || equalFold(v, "yes"):
		return true, true
	case v == "0" || equalFold(v, "false") || equalFold(v, "off") || equalFold(v, "no"):
		return false, true
	}
	return false, false
}

// parseUint parses ^\d+$ into a non-negative int64.
func parseUint(v string) (int64, bool) {
	if !isDigits(v) {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// parseInt parses ^\d+$ into an int.
func parseInt(v string) (int, bool) {
	n, ok := parseUint(v)
	if !ok || n > math.MaxInt32 {
		return 0, false
	}
	return int(n), true
}

// parseSignedInt parses ^-?\d+$ (SERVER options).
func parseSignedInt(v string) (int64, bool) {
	if strings.HasPrefix(v, "-") {
		n, ok := parseUint(v[1:])
		return -n, ok
	}
	return parseUint(v)
}

// parseSize parses digits with an optional b, k or m suffix (any case).
func parseSize(v string) (int64, bool) {
	mult := int64(1)
	if n := len(v); n > 1 {
		switch lowerASCII(v[n-1]) {
		case 'b':
			v = v[:n-1]
		case 'k':
			v, mult = v[:n-1], 1024
		case 'm':
			v, mult = v[:n-1], 1024*1024
		}
	}
	n, ok := parseUint(v)
	if !ok || n > math.MaxInt64/mult {
		return 0, false
	}
	return n * mult, true
}

// parseDuration reads a duration as people write it: a bare number counts
// unit (Perlbal's integer seconds, "300"; also "1.5"); otherwise one or
// more numbers each with a unit, Go's ("5m", "1h30m", "500ms", "1.5s") or
// a word ("5 min", "10 minutes", "2 hours", "1d"), in any case, with or
// without spaces. Negative durations and overflows fail.
func parseDuration(v string, unit time.Duration) (time.Duration, bool) {
	v = trimSpace(v)
	if isDigits(v) {
		n, ok := parseUint(v)
		if !ok || n > int64(math.MaxInt64/unit) {
			return 0, false
		}
		return time.Duration(n) * unit, true
	}
	if v == "" {
		return 0, false
	}
	var total float64
	for rest := v; rest != ""; {
		i := 0
		for i < len(rest) && (isDigit(rest[i]) || rest[i] == '.') {
			i++
		}
		num, err := strconv.ParseFloat(rest[:i], 64)
		if i == 0 || err != nil {
			return 0, false
		}
		rest = strings.TrimLeft(rest[i:], " \t")
		j := 0
		for j < len(rest) && !isDigit(rest[j]) && rest[j] != '.' && rest[j] != ' ' && rest[j] != '\t' {
			j++
		}
		u, ok := durationUnit(toLowerASCII(rest[:j]))
		switch {
		case j == 0 && rest == "" && total == 0 && i == len(v):
			u = unit // a bare decimal: "1.5"
		case !ok:
			return 0, false
		}
		total += num * float64(u)
		rest = strings.TrimLeft(rest[j:], " \t")
	}
	if total >= math.MaxInt64 {
		return 0, false
	}
	return time.Duration(math.Round(total)), true
}

// durationUnit is the length of a duration unit: Go's (ns, us, µs, ms, s,
// m, h), their words and abbreviations (sec, secs, second, seconds; min,
// minutes; hr, hours; msec, milliseconds), and days (d, day, days).
func durationUnit(u string) (time.Duration, bool) {
	switch u {
	case "ns", "nsec", "nanosecond", "nanoseconds":
		return time.Nanosecond, true
	case "us", "µs", "μs", "usec", "microsecond", "microseconds":
		return time.Microsecond, true
	case "ms", "msec", "msecs", "millisecond", "milliseconds":
		return time.Millisecond, true
	case "s", "sec", "secs", "second", "seconds":
		return time.Second, true
	case "m", "min", "mins", "minute", "minutes":
		return time.Minute, true
	case "h", "hr", "hrs", "hour", "hours":
		return time.Hour, true
	case "d", "day", "days":
		return 24 * time.Hour, true
	}
	return 0, false
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

// formatDuration is the dump form of a duration: integer units when whole,
// else a Go duration string.
func formatDuration(d time.Duration, unit time.Duration) any {
	if d%unit == 0 {
		return int64(d / unit)
	}
	return d.String()
}

// parseListen accepts Perlbal's "ip:port" and "port" plus plb's ":port" and
// "[ipv6]:port"; a bare port is returned as ":port".
func parseListen(v string) (string, bool) {
	if isDigits(v) {
		if _, ok := parsePort(v); !ok {
			return "", false
		}
		return ":" + v, true
	}
	if strings.HasPrefix(v, ":") {
		if _, ok := parsePort(v[1:]); !ok {
			return "", false
		}
		return v, true
	}
	ap, ok := parseAddrPort(v)
	if !ok {
		return "", false
	}
	return ap.String(), true
}

func parsePort(v string) (uint16, bool) {
	n, ok := parseUint(v)
	if !ok || n > 65535 {
		return 0, false
	}
	return uint16(n), true
}

// parseAddrPort parses "a.b.c.d:port" or "[v6]:port" with a decimal port.
func parseAddrPort(v string) (netip.AddrPort, bool) {
	i := strings.LastIndexByte(v, ':')
	if i <= 0 {
		return netip.AddrPort{}, false
	}
	port, ok := parsePort(v[i+1:])
	if !ok {
		return netip.AddrPort{}, false
	}
	host := v[:i]
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		a, err := netip.ParseAddr(host[1 : len(host)-1])
		if err != nil || !a.Is6() {
			return netip.AddrPort{}, false
		}
		return netip.AddrPortFrom(a, port), true
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is4() {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a, port), true
}

// parseNode parses a pool node "ip[:port]" (IPv6 as "[ip]:port", "[ip]" or
// a bare IPv6 literal); the port defaults to 80, and 0 means 80 as in Perlbal.
func parseNode(v string) (string, bool) {
	host, port := v, "80"
	switch {
	case strings.HasPrefix(v, "["):
		end := strings.IndexByte(v, ']')
		if end < 0 {
			return "", false
		}
		host = v[1:end]
		rest := v[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return "", false
			}
			port = rest[1:]
		}
	case strings.Count(v, ":") == 1:
		i := strings.IndexByte(v, ':')
		host, port = v[:i], v[i+1:]
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return "", false
	}
	p, ok := parsePort(port)
	if !ok {
		return "", false
	}
	if p == 0 {
		p = 80
	}
	return netip.AddrPortFrom(a, p).String(), true
}

// parseNodeSpec parses a node as a pool holds it: "ip[:port]" (parseNode),
// optionally followed by " weight=N" (0 to pool.MaxWeight; 0 drains the
// node) and " backup" (used only when no other node can take a request).
// It returns the canonical form: the address as parseNode gives it, with
// " weight=N" when N is not 1, then " backup".
func parseNodeSpec(v string) (string, bool) {
	addr, rest, _ := strings.Cut(trimSpace(v), " ")
	node, ok := parseNode(addr)
	if !ok {
		return "", false
	}
	w, backup, seenW := 1, false, false
	for _, f := range strings.Fields(rest) {
		switch {
		case f == "backup" && !backup:
			backup = true
		case !seenW:
			if w, ok = parseWeight(f); !ok {
				return "", false
			}
			seenW = true
		default:
			return "", false
		}
	}
	if w != 1 {
		node += " weight=" + strconv.Itoa(w)
	}
	if backup {
		node += " backup"
	}
	return node, true
}

// parseWeight parses "weight=N", N from 0 to pool.MaxWeight.
func parseWeight(v string) (int, bool) {
	n, found := strings.CutPrefix(v, "weight=")
	if !found || n == "" || len(n) > 3 || !isDigits(n) {
		return 0, false
	}
	w, err := strconv.Atoi(n)
	return w, err == nil && w <= pool.MaxWeight
}

// nodeAddr is the address of a node spec (parseNodeSpec): what names the
// node in a pool, whatever its weight.
func nodeAddr(spec string) string {
	addr, _, _ := strings.Cut(spec, " ")
	return addr
}

// parsePrefix parses a Net::Netmask-like spec: an IP, "ip/bits" or
// "ip/dotted-mask"; the base is masked.
func parsePrefix(v string) (netip.Prefix, bool) {
	if a, err := netip.ParseAddr(v); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	i := strings.IndexByte(v, '/')
	if i < 0 {
		return netip.Prefix{}, false
	}
	if m, err := netip.ParseAddr(v[i+1:]); err == nil && m.Is4() {
		bits, ok := maskBits(m.As4())
		if !ok {
			return netip.Prefix{}, false
		}
		v = v[:i] + "/" + strconv.Itoa(bits)
	}
	p, err := netip.ParsePrefix(v)
	if err != nil {
		return netip.Prefix{}, false
	}
	return p.Masked(), true
}

func maskBits(m [4]byte) (int, bool) {
	n := uint32(m[0])<<24 | uint32(m[1])<<16 | uint32(m[2])<<8 | uint32(m[3])
	bits := 0
	for n&0x80000000 != 0 {
		bits++
		n <<= 1
	}
	return bits, n == 0
}

// splitComma splits on \s*,\s* and drops empty fields.
func splitComma(v string) []string {
	var out []string
	for f := range strings.SplitSeq(v, ",") {
		if f = trimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// splitList splits on [\s,]+ and drops empty fields.
func splitList(v string) []string {
	f := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r < 0x80 && isSpace(byte(r)) })
	if len(f) == 0 {
		return nil
	}
	return f
}

// formatSeconds prints a duration as (possibly fractional) seconds.
func formatSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// parseSecondsList parses comma-separated (fractional) seconds.
func parseSecondsList(v string) ([]time.Duration, bool) {
	var out []time.Duration
	for _, f := range splitComma(v) {
		x, err := strconv.ParseFloat(f, 64)
		if err != nil || x < 0 || math.IsInf(x, 0) || math.IsNaN(x) || x > 1e9 || f[0] == '+' {
			return nil, false
		}
		out = append(out, time.Duration(math.Round(x*1e9)))
	}
	return out, true
}

func formatInt(n int64) string { return strconv.FormatInt(n, 10) }

func timeUnit(n int64) time.Duration { return time.Duration(n) }

// validRegex reports whether v compiles as a Go (RE2) regular expression;
// Perlbal's patterns are Perl regexes, of which RE2 accepts the common part.
func validRegex(v string) bool {
	_, err := regexp.Compile(v)
	return err == nil
}

// NodesFrom is a parsed nodes_from: where a pool's nodes come from at
// run time.
type NodesFrom struct {
	// Kind is "dns" (A and AAAA answers of Name, at Port), "srv" (SRV
	// answers of Name) or "etcd" (the keys under the prefix Name, of the
	// etcd at Endpoints).
	Kind string
	// Name is a domain name, fully qualified (a final dot), or etcd's
	// prefix.
	Name      string
	Port      uint16   // dns's
	Endpoints []string // etcd's: "http://host:port" or "https://host:port"
}

// ParseNodesFrom parses nodes_from: "dns:NAME:PORT", "srv:NAME" or
// "etcd:URL[,URL...]" (http or https, the prefix the URLs' path, the same
// in each).
func ParseNodesFrom(spec string) (NodesFrom, error) {
	kind, rest, ok := strings.Cut(spec, ":")
	var nf NodesFrom
	switch {
	case !ok:
	case kind == "etcd":
		return parseEtcdFrom(spec, rest)
	case kind == "dns":
		i := strings.LastIndexByte(rest, ':')
		if i <= 0 {
			return nf, errorf("nodes_from '%s': want dns:NAME:PORT", spec)
		}
		port, ok := parsePort(rest[i+1:])
		if !ok || port == 0 {
			return nf, errorf("nodes_from '%s': bad port '%s'", spec, rest[i+1:])
		}
		nf = NodesFrom{Kind: kind, Name: rest[:i], Port: port}
	case kind == "srv":
		nf = NodesFrom{Kind: kind, Name: rest}
	}
	if nf.Kind == "" {
		return nf, errorf("nodes_from '%s': want dns:NAME:PORT, srv:NAME or etcd:URL", spec)
	}
	if !domainName(nf.Name) {
		return nf, errorf("nodes_from '%s': '%s' is not a domain name", spec, nf.Name)
	}
	if !strings.HasSuffix(nf.Name, ".") {
		nf.Name += "."
	}
	return nf, nil
}

// domainName reports whether s is a domain name: dot-separated labels of
// letters, digits, '-' and '_' (SRV's), each 1 to 63 bytes, at most 253
// in all, optionally ending in a dot.
func domainName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// parseEtcdFrom parses the URLs of an etcd nodes_from.
func parseEtcdFrom(spec, urls string) (NodesFrom, error) {
	nf := NodesFrom{Kind: "etcd"}
	scheme := ""
	for i, raw := range strings.Split(urls, ",") {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" {
			return nf, errorf("nodes_from '%s': '%s' is not an http:// or https:// URL of etcd", spec, raw)
		}
		switch {
		case i == 0:
			scheme, nf.Name = u.Scheme, u.Path
			if nf.Name == "" || nf.Name == "/" {
				return nf, errorf("nodes_from '%s': the URL's path is the prefix of the nodes' keys, and is missing", spec)
			}
		case u.Scheme != scheme || u.Path != nf.Name && u.Path != "" && u.Path != "/":
			return nf, errorf("nodes_from '%s': the URLs differ in scheme or prefix", spec)
		}
		nf.Endpoints = append(nf.Endpoints, u.Scheme+"://"+u.Host)
	}
	return nf, nil
}
