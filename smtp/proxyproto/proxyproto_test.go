package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

var ap = netip.MustParseAddrPort

func TestAppendV1(t *testing.T) {
	for _, c := range []struct {
		name     string
		src, dst netip.AddrPort
		want     string
	}{
		{"TCP4", ap("192.0.2.1:56324"), ap("198.51.100.2:25"),
			"PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\n"},
		{"TCP4 ports 0 and 65535", ap("0.0.0.0:0"), ap("255.255.255.255:65535"),
			"PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n"},
		{"TCP6", ap("[2001:db8::1]:56324"), ap("[2001:db8::2]:25"),
			"PROXY TCP6 2001:db8::1 2001:db8::2 56324 25\r\n"},
		{"TCP6 loopback", ap("[::1]:1"), ap("[::1]:2"),
			"PROXY TCP6 ::1 ::1 1 2\r\n"},
		{"mixed v4 src", ap("192.0.2.1:1025"), ap("[2001:db8::2]:25"),
			"PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 1025 25\r\n"},
		{"mixed v4 dst", ap("[2001:db8::1]:1025"), ap("198.51.100.2:25"),
			"PROXY TCP6 2001:db8::1 ::ffff:198.51.100.2 1025 25\r\n"},
		{"mapped src with v6", ap("[::ffff:192.0.2.1]:1025"), ap("[2001:db8::2]:25"),
			"PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 1025 25\r\n"},
		{"mapped pair is TCP4", ap("[::ffff:192.0.2.1]:1025"), ap("[::ffff:198.51.100.2]:25"),
			"PROXY TCP4 192.0.2.1 198.51.100.2 1025 25\r\n"},
		{"mapped and v4 is TCP4", ap("[::ffff:192.0.2.1]:1025"), ap("198.51.100.2:25"),
			"PROXY TCP4 192.0.2.1 198.51.100.2 1025 25\r\n"},
		{"zones dropped", ap("[fe80::1%eth0]:1025"), ap("[fe80::2%eth0]:25"),
			"PROXY TCP6 fe80::1 fe80::2 1025 25\r\n"},
		{"UNKNOWN both", netip.AddrPort{}, netip.AddrPort{}, "PROXY UNKNOWN\r\n"},
		{"UNKNOWN src", netip.AddrPort{}, ap("198.51.100.2:25"), "PROXY UNKNOWN\r\n"},
		{"UNKNOWN dst", ap("[2001:db8::1]:1025"), netip.AddrPort{}, "PROXY UNKNOWN\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := string(AppendV1(nil, c.src, c.dst)); got != c.want {
				t.Fatalf("AppendV1 = %q, want %q", got, c.want)
			}
			// It appends.
			if got := string(AppendV1([]byte("xy"), c.src, c.dst)); got != "xy"+c.want {
				t.Fatalf("AppendV1 onto xy = %q", got)
			}
		})
	}
}

func TestAppendV1Longest(t *testing.T) {
	longest := ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")
	got := AppendV1(nil, longest, longest)
	want := "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"
	if string(got) != want {
		t.Fatalf("%q", got)
	}
	if len(got) > MaxV1 {
		t.Fatalf("%d bytes, MaxV1 %d", len(got), MaxV1)
	}
	// The longest of some other shapes (embedded IPv4 text, zones).
	for _, a := range []string{
		"[::ffff:255.255.255.255]:65535",
		"[fe80::ffff:ffff:ffff:ffff%a-very-long-interface-name]:65535",
		"[1111:2222:3333:4444:5555:6666:7777:8888]:65535",
		"255.255.255.255:65535",
	} {
		for _, b := range []netip.AddrPort{longest, ap(a), ap("255.255.255.255:65535")} {
			if n := len(AppendV1(nil, ap(a), b)); n > MaxV1 {
				t.Errorf("%s %s: %d bytes", a, b, n)
			}
		}
	}
}

// sig is the version 2 signature, written out from the specification.
var sig = []byte{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestAppendV2(t *testing.T) {
	if string(sig) != "\r\n\r\n\x00\r\nQUIT\n" {
		t.Fatal("signature")
	}
	v6 := func(s string) []byte { a := netip.MustParseAddr(s).As16(); return a[:] }
	local := cat(sig, []byte{0x20, 0x00, 0x00, 0x00})
	for _, c := range []struct {
		name     string
		src, dst netip.AddrPort
		want     []byte
	}{
		{"IPv4", ap("192.0.2.1:56324"), ap("198.51.100.2:25"), cat(sig,
			[]byte{0x21, 0x11, 0x00, 0x0C},
			[]byte{192, 0, 2, 1}, []byte{198, 51, 100, 2},
			[]byte{0xDC, 0x04}, []byte{0x00, 0x19})},
		{"IPv4 mapped pair", ap("[::ffff:192.0.2.1]:56324"), ap("[::ffff:198.51.100.2]:25"), cat(sig,
			[]byte{0x21, 0x11, 0x00, 0x0C},
			[]byte{192, 0, 2, 1}, []byte{198, 51, 100, 2},
			[]byte{0xDC, 0x04}, []byte{0x00, 0x19})},
		{"IPv6", ap("[2001:db8::1]:65535"), ap("[2001:db8::2]:587"), cat(sig,
			[]byte{0x21, 0x21, 0x00, 0x24},
			[]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
			[]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2},
			[]byte{0xFF, 0xFF}, []byte{0x02, 0x4B})},
		{"mixed", ap("192.0.2.1:1"), ap("[2001:db8::2%eth0]:25"), cat(sig,
			[]byte{0x21, 0x21, 0x00, 0x24},
			[]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 192, 0, 2, 1},
			v6("2001:db8::2"),
			[]byte{0x00, 0x01}, []byte{0x00, 0x19})},
		{"LOCAL", netip.AddrPort{}, netip.AddrPort{}, local},
		{"LOCAL one invalid", ap("192.0.2.1:1"), netip.AddrPort{}, local},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := AppendV2(nil, c.src, c.dst); !bytes.Equal(got, c.want) {
				t.Fatalf("AppendV2 =\n% x\nwant\n% x", got, c.want)
			}
			if got := AppendV2([]byte("xy"), c.src, c.dst); !bytes.Equal(got, cat([]byte("xy"), c.want)) {
				t.Fatalf("AppendV2 onto xy = % x", got)
			}
		})
	}
	if got := AppendLocalV2(nil); !bytes.Equal(got, local) {
		t.Fatalf("AppendLocalV2 = % x", got)
	}
	if got := AppendLocalV2([]byte{1}); !bytes.Equal(got, cat([]byte{1}, local)) {
		t.Fatalf("AppendLocalV2 onto 01 = % x", got)
	}
}

func TestAppendNoAllocs(t *testing.T) {
	buf := make([]byte, 0, 256)
	pairs := [][2]netip.AddrPort{
		{ap("192.0.2.1:56324"), ap("198.51.100.2:25")},
		{ap("[2001:db8::1]:56324"), ap("[2001:db8::2]:25")},
		{ap("192.0.2.1:56324"), ap("[2001:db8::2%eth0]:25")},
		{{}, {}},
	}
	for _, p := range pairs {
		if a := testing.AllocsPerRun(100, func() {
			buf = AppendV1(buf[:0], p[0], p[1])
			buf = AppendV2(buf[:0], p[0], p[1])
			buf = AppendLocalV2(buf[:0])
		}); a != 0 {
			t.Errorf("%v: %v allocations per run", p, a)
		}
	}
}

// parseV1 reads back a version 1 line: ok false for UNKNOWN.
func parseV1(b []byte) (src, dst netip.AddrPort, ok bool, err error) {
	if len(b) > MaxV1 {
		return src, dst, false, fmt.Errorf("%d bytes", len(b))
	}
	s, found := strings.CutSuffix(string(b), "\r\n")
	if !found || strings.ContainsAny(s, "\r\n") {
		return src, dst, false, errors.New("line end")
	}
	if s == "PROXY UNKNOWN" {
		return src, dst, false, nil
	}
	f := strings.Split(s, " ")
	if len(f) != 6 || f[0] != "PROXY" || (f[1] != "TCP4" && f[1] != "TCP6") {
		return src, dst, false, fmt.Errorf("fields %q", f)
	}
	var addrs [2]netip.Addr
	var ports [2]uint16
	for i := range 2 {
		a, err := netip.ParseAddr(f[2+i])
		if err != nil || a.Zone() != "" || a.Is4() != (f[1] == "TCP4") || a.String() != f[2+i] {
			return src, dst, false, fmt.Errorf("address %q: %v", f[2+i], err)
		}
		p, err := strconv.ParseUint(f[4+i], 10, 16)
		if err != nil || strconv.FormatUint(p, 10) != f[4+i] { // no sign, no leading zero
			return src, dst, false, fmt.Errorf("port %q: %v", f[4+i], err)
		}
		addrs[i], ports[i] = a, uint16(p)
	}
	return netip.AddrPortFrom(addrs[0], ports[0]), netip.AddrPortFrom(addrs[1], ports[1]), true, nil
}

// parseV2 reads back a version 2 header: ok false for LOCAL.
func parseV2(b []byte) (src, dst netip.AddrPort, ok bool, err error) {
	if len(b) < 16 || !bytes.Equal(b[:12], sig) {
		return src, dst, false, errors.New("signature")
	}
	n := int(binary.BigEndian.Uint16(b[14:16]))
	if len(b) != 16+n {
		return src, dst, false, fmt.Errorf("length %d of %d bytes", n, len(b))
	}
	body := b[16:]
	switch {
	case b[12] == 0x20 && b[13] == 0x00 && n == 0:
		return src, dst, false, nil
	case b[12] == 0x21 && b[13] == 0x11 && n == 12:
		s, d := netip.AddrFrom4([4]byte(body[0:4])), netip.AddrFrom4([4]byte(body[4:8]))
		return netip.AddrPortFrom(s, binary.BigEndian.Uint16(body[8:])),
			netip.AddrPortFrom(d, binary.BigEndian.Uint16(body[10:])), true, nil
	case b[12] == 0x21 && b[13] == 0x21 && n == 36:
		s, d := netip.AddrFrom16([16]byte(body[0:16])), netip.AddrFrom16([16]byte(body[16:32]))
		return netip.AddrPortFrom(s, binary.BigEndian.Uint16(body[32:])),
			netip.AddrPortFrom(d, binary.BigEndian.Uint16(body[34:])), true, nil
	}
	return src, dst, false, fmt.Errorf("command/family %#x %#x, length %d", b[12], b[13], n)
}

// fuzzAddr makes an address of b: IPv6 of 16 bytes or more, IPv4 of 4 to
// 15 (IPv4-mapped IPv6 when mapped), else none.
func fuzzAddr(b []byte, port uint16, mapped bool) netip.AddrPort {
	var a netip.Addr
	switch {
	case len(b) >= 16:
		a = netip.AddrFrom16([16]byte(b[:16]))
	case len(b) >= 4:
		a = netip.AddrFrom4([4]byte(b[:4]))
		if mapped {
			a = netip.AddrFrom16(a.As16())
		}
	}
	return netip.AddrPortFrom(a, port)
}

func FuzzAppend(f *testing.F) {
	f.Add([]byte{192, 0, 2, 1}, []byte{198, 51, 100, 2}, uint16(56324), uint16(25), false)
	f.Add([]byte{192, 0, 2, 1}, []byte{198, 51, 100, 2}, uint16(0), uint16(65535), true)
	f.Add(bytes.Repeat([]byte{0xff}, 16), bytes.Repeat([]byte{0xff}, 16), uint16(65535), uint16(65535), false)
	f.Add(make([]byte, 16), []byte{1, 2, 3, 4}, uint16(1), uint16(2), false)
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4}, []byte{5, 6, 7, 8}, uint16(1), uint16(2), false)
	f.Add([]byte{}, []byte{1, 2, 3, 4}, uint16(1), uint16(2), false)
	f.Fuzz(func(t *testing.T, sb, db []byte, sp, dp uint16, mapped bool) {
		src, dst := fuzzAddr(sb, sp, mapped), fuzzAddr(db, dp, mapped)
		valid := src.Addr().IsValid() && dst.Addr().IsValid()
		both4 := src.Addr().Unmap().Is4() && dst.Addr().Unmap().Is4()
		same := func(got, want netip.AddrPort) bool {
			return got.Port() == want.Port() && got.Addr().Unmap() == want.Addr().Unmap()
		}

		v1 := AppendV1(nil, src, dst)
		s, d, ok, err := parseV1(v1)
		if err != nil || ok != valid {
			t.Fatalf("v1 %q: ok %v, %v", v1, ok, err)
		}
		if ok && (!same(s, src) || !same(d, dst) || bytes.HasPrefix(v1, []byte("PROXY TCP4 ")) != both4) {
			t.Fatalf("v1 %q for %v %v: %v %v", v1, src, dst, s, d)
		}

		v2 := AppendV2(nil, src, dst)
		s, d, ok, err = parseV2(v2)
		if err != nil || ok != valid {
			t.Fatalf("v2 % x: ok %v, %v", v2, ok, err)
		}
		if ok && (!same(s, src) || !same(d, dst) || (v2[13] == 0x11) != both4) {
			t.Fatalf("v2 % x for %v %v: %v %v", v2, src, dst, s, d)
		}
	})
}

func BenchmarkAppendV1(b *testing.B) {
	for _, p := range []struct {
		name     string
		src, dst netip.AddrPort
	}{
		{"TCP4", ap("192.0.2.1:56324"), ap("198.51.100.2:25")},
		{"TCP6", ap("[2001:db8:85a3::8a2e:370:7334]:56324"), ap("[2001:db8::2]:25")},
	} {
		b.Run(p.name, func(b *testing.B) {
			buf := make([]byte, 0, MaxV1)
			b.ReportAllocs()
			for b.Loop() {
				buf = AppendV1(buf[:0], p.src, p.dst)
			}
		})
	}
}

func BenchmarkAppendV2(b *testing.B) {
	for _, p := range []struct {
		name     string
		src, dst netip.AddrPort
	}{
		{"TCP4", ap("192.0.2.1:56324"), ap("198.51.100.2:25")},
		{"TCP6", ap("[2001:db8:85a3::8a2e:370:7334]:56324"), ap("[2001:db8::2]:25")},
		{"LOCAL", netip.AddrPort{}, netip.AddrPort{}},
	} {
		b.Run(p.name, func(b *testing.B) {
			buf := make([]byte, 0, 64)
			b.ReportAllocs()
			for b.Loop() {
				buf = AppendV2(buf[:0], p.src, p.dst)
			}
		})
	}
}
