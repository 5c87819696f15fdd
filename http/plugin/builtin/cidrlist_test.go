package builtin

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

func TestCIDRList(t *testing.T) {
	l, err := parseCIDRList([]byte(`# Perlbal's format: comments, one entry a line
10.0.0.0/8
192.168.1.1            # a single address
deny 172.16.0.0/12     # words before are skipped
  192.168.1.2/31
192.168.1.3
203.0.113.7/24         # not masked: the /24
2001:db8::/32
::ffff:198.51.100.0/120
nothing on this line
`))
	if err != nil {
		t.Fatal(err)
	}
	for ip, want := range map[string]bool{
		"10.0.0.0": true, "10.255.255.255": true, "11.0.0.0": false, "9.255.255.255": false,
		"192.168.1.0": false, "192.168.1.1": true, "192.168.1.2": true, "192.168.1.3": true, "192.168.1.4": false,
		"172.16.0.1": true, "172.31.255.255": true, "172.32.0.0": false,
		"203.0.113.0": true, "203.0.113.255": true, "203.0.114.0": false,
		"2001:db8::1": true, "2001:db8:ffff:ffff::": true, "2001:db9::": false,
		"198.51.100.200": true, "::ffff:10.1.2.3": true, "::a00:1": false,
	} {
		if got := l.Contains(netip.MustParseAddr(ip)); got != want {
			t.Errorf("%s: %v, want %v", ip, got, want)
		}
	}
	// 192.168.1.1 to .3 merged into one range.
	if n := len(l.ranges); n != 6 {
		t.Errorf("%d ranges: %v", n, l.ranges)
	}
	var none *cidrList
	if none.Contains(netip.MustParseAddr("10.0.0.1")) || l.Contains(netip.Addr{}) {
		t.Error("nil list or invalid address contained")
	}
	for _, bad := range []string{"10.0.0.0/33", "300.1.1.1", "1.2.3.4.5", "::/129", "1.2.3.4/"} {
		if _, err := parseCIDRList([]byte(bad + "\n")); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	full, err := parseCIDRList([]byte("0.0.0.0/0\n255.255.255.255\n"))
	if err != nil || len(full.ranges) != 1 || !full.Contains(netip.MustParseAddr("255.255.255.255")) ||
		full.Contains(netip.MustParseAddr("2001:db8::1")) {
		t.Errorf("IPv4: %v %v", full, err)
	}
	// An IPv6 prefix covering the mapped space holds IPv4 addresses.
	all, err := parseCIDRList([]byte("::/0\n10.0.0.1\n"))
	if err != nil || len(all.ranges) != 1 || !all.Contains(netip.MustParseAddr("10.9.9.9")) {
		t.Errorf("all: %v %v", all, err)
	}
}

// FuzzCIDRList: any input parses or fails cleanly; a parsed list is
// sorted and disjoint, and holds every address its lines name.
func FuzzCIDRList(f *testing.F) {
	for _, s := range []string{
		"10.0.0.0/8\n192.168.0.1\n", "# c\n2001:db8::/48 # x\n", "deny 1.2.3.4\n\n", "0.0.0.0/0\n::/0",
		"1.2.3.4/32\n1.2.3.5\n1.2.3.3\n", "::ffff:1.2.3.0/120\n", "a.b.c.d\n", "1/2/3.4\n", "::/80\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := parseCIDRList(data)
		if err != nil {
			return
		}
		for i, r := range l.ranges {
			if !r.lo.Is6() || !r.hi.Is6() || r.hi.Less(r.lo) {
				t.Fatalf("bad range %v", r)
			}
			if i > 0 {
				prev := l.ranges[i-1]
				if next := prev.hi.Next(); !next.IsValid() || !next.Less(r.lo) {
					t.Fatalf("ranges %v and %v overlap or touch", prev, r)
				}
			}
		}
		for _, line := range bytes.Split(data, []byte("\n")) {
			if i := bytes.IndexByte(line, '#'); i >= 0 {
				line = line[:i]
			}
			w := cidrWord(line)
			if w == nil {
				continue
			}
			r, err := parseCIDR(string(w))
			if err != nil {
				t.Fatalf("%q parsed as a list but not alone: %v", w, err)
			}
			if !l.Contains(r.lo) || !l.Contains(r.hi) {
				t.Fatalf("%q (%v) not in the list", w, r)
			}
			if !strings.Contains(string(w), "/") && r.lo != r.hi {
				t.Fatalf("address %q is a range", w)
			}
		}
	})
}

// TestCIDRListContainsAllocs: a lookup, done per request, allocates
// nothing.
func TestCIDRListContainsAllocs(t *testing.T) {
	l, err := parseCIDRList([]byte("10.0.0.0/8\n192.168.0.0/16\n2001:db8::/32\n"))
	if err != nil {
		t.Fatal(err)
	}
	ips := []netip.Addr{netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("8.8.8.8")}
	if n := testing.AllocsPerRun(100, func() {
		for _, ip := range ips {
			l.Contains(ip)
		}
	}); n != 0 {
		t.Errorf("%v allocs", n)
	}
}
