package builtin

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/plb/plb/internal/errs"
)

// cidrList is a set of addresses read from a CIDR list file (Throttle's
// whitelist_file and blacklist_file): sorted, merged ranges, so that a
// lookup is a binary search however long the file. Addresses are kept in
// IPv6 form, IPv4 ones mapped (::ffff:a.b.c.d), so that an IPv6 prefix
// that covers the mapped space (::/0) holds IPv4 addresses too.
type cidrList struct {
	ranges []addrRange // sorted by lo, disjoint and not adjacent
}

type addrRange struct{ lo, hi netip.Addr } // inclusive, IPv6 form

// as16 is ip in the list's form.
func as16(ip netip.Addr) netip.Addr { return netip.AddrFrom16(ip.As16()) }

// Contains reports whether ip (IPv4, IPv4-mapped or IPv6) is in the list.
func (l *cidrList) Contains(ip netip.Addr) bool {
	if l == nil || !ip.IsValid() {
		return false
	}
	ip = as16(ip.WithZone(""))
	// The first range starting after ip; the one before it may hold ip.
	i, _ := slices.BinarySearchFunc(l.ranges, ip, func(r addrRange, ip netip.Addr) int {
		if r.lo.Compare(ip) <= 0 {
			return -1
		}
		return 1
	})
	return i > 0 && l.ranges[i-1].hi.Compare(ip) >= 0
}

// maxCIDRFile bounds a list file.
const maxCIDRFile = 64 << 20

// loadCIDRList reads a list file, as Perlbal's load_cidr_list. Perlbal
// died on a file it could not open or that held nothing it recognized,
// and so does this (the configuration is refused).
func loadCIDRList(name string) (*cidrList, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("Unable to open file %s: %v", name, errs.UnwrapPath(err))
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("Unable to open file %s: not a regular file", name)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxCIDRFile+1))
	if err != nil {
		return nil, fmt.Errorf("Unable to read file %s: %v", name, errs.UnwrapPath(err))
	}
	if len(data) > maxCIDRFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, maxCIDRFile)
	}
	l, err := parseCIDRList(data)
	if err != nil {
		return nil, err
	}
	if len(l.ranges) == 0 {
		return nil, fmt.Errorf("%s contains no recognizable CIDRs", name)
	}
	return l, nil
}

// parseCIDRList parses a list file: on each line, what follows "#" is a
// comment, and the first word of address characters (digits, hex letters,
// ".", ":" and "/") that has a digit and a "." or ":" is the entry: an
// address alone (one address) or a CIDR prefix (a.b.c.d/n, or IPv6).
// Other lines are ignored, as in Perlbal, whose pattern ([0-9/.]+) took
// IPv4 only; an entry that does not parse is an error with its line
// number (Net::CIDR::Lite died on it).
func parseCIDRList(data []byte) (*cidrList, error) {
	var rs []addrRange
	for n := 1; len(data) > 0; n++ {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if i := bytes.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		word := cidrWord(line)
		if word == nil {
			continue
		}
		r, err := parseCIDR(string(word))
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", n, err)
		}
		rs = append(rs, r)
	}
	return &cidrList{ranges: mergeRanges(rs)}, nil
}

// cidrWord finds a line's entry (see parseCIDRList), or nil.
func cidrWord(line []byte) []byte {
	for i := 0; i < len(line); {
		if !isCIDRChar(line[i]) {
			i++
			continue
		}
		j := i
		for j < len(line) && isCIDRChar(line[j]) {
			j++
		}
		w := line[i:j]
		if bytes.ContainsAny(w, "0123456789") && bytes.ContainsAny(w, ".:") {
			return w
		}
		i = j
	}
	return nil
}

func isCIDRChar(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' || c == '.' || c == ':' || c == '/'
}

// parseCIDR parses an address or a prefix into the range it covers, in
// IPv6 form.
func parseCIDR(s string) (addrRange, error) {
	if strings.IndexByte(s, '/') < 0 {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return addrRange{}, fmt.Errorf("bad address '%s'", s)
		}
		a = as16(a)
		return addrRange{a, a}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return addrRange{}, fmt.Errorf("bad CIDR '%s'", s)
	}
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	p = netip.PrefixFrom(as16(p.Addr()), bits).Masked()
	return addrRange{p.Addr(), lastAddr(p)}, nil
}

// lastAddr is the highest address of p, an IPv6 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As16()
	for i := p.Bits(); i < 128; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom16(b)
}

// mergeRanges sorts ranges and joins those that overlap or touch.
func mergeRanges(rs []addrRange) []addrRange {
	slices.SortFunc(rs, func(a, b addrRange) int { return a.lo.Compare(b.lo) })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 {
			last := &out[n-1]
			if next := last.hi.Next(); !next.IsValid() || r.lo.Compare(next) <= 0 {
				if r.hi.Compare(last.hi) > 0 {
					last.hi = r.hi
				}
				continue
			}
		}
		out = append(out, r)
	}
	return out
}
