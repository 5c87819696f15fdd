// Package proxyproto writes HAProxy's PROXY protocol header (versions 1
// and 2, doc/proxy-protocol.txt), which tells a backend the client's
// address before any byte of the connection.
package proxyproto

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

// MaxV1 is the longest version 1 header (the specification's bound).
const MaxV1 = 107

// sigV2 opens every version 2 header.
const sigV2 = "\r\n\r\n\x00\r\nQUIT\n"

// AppendV1 appends the version 1 line for a connection from src to dst:
// "PROXY TCP4 src dst sport dport\r\n", TCP6 when either address is IPv6
// (an IPv4 one is then written IPv4-mapped), or "PROXY UNKNOWN\r\n" when an
// address is invalid. IPv4-mapped IPv6 pairs are written as TCP4.
func AppendV1(dst []byte, src, to netip.AddrPort) []byte {
	s, d := src.Addr().Unmap(), to.Addr().Unmap()
	if !s.IsValid() || !d.IsValid() {
		return append(dst, "PROXY UNKNOWN\r\n"...)
	}
	if s.Is4() && d.Is4() {
		dst = append(dst, "PROXY TCP4 "...)
	} else {
		dst = append(dst, "PROXY TCP6 "...)
		s, d = as16(s), as16(d)
	}
	dst = s.AppendTo(dst)
	dst = append(dst, ' ')
	dst = d.AppendTo(dst)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(src.Port()), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(to.Port()), 10)
	return append(dst, "\r\n"...)
}

// as16 writes an IPv4 address IPv4-mapped (for a TCP6 line or block).
func as16(a netip.Addr) netip.Addr {
	if a.Is4() {
		return netip.AddrFrom16(a.As16())
	}
	return a.WithZone("")
}

// AppendV2 appends the version 2 header for a proxied TCP connection
// from src to dst (AF_INET when both are IPv4, else AF_INET6), or a LOCAL
// header (the proxy's own connection, as a health check) when an address
// is invalid. No TLVs are written.
func AppendV2(dst []byte, src, to netip.AddrPort) []byte {
	dst = append(dst, sigV2...)
	s, d := src.Addr().Unmap(), to.Addr().Unmap()
	switch {
	case !s.IsValid() || !d.IsValid():
		return append(dst, 0x20, 0x00, 0, 0) // LOCAL, UNSPEC, no address
	case s.Is4() && d.Is4():
		dst = append(dst, 0x21, 0x11, 0, 12)
		a, b := s.As4(), d.As4()
		dst = append(dst, a[:]...)
		dst = append(dst, b[:]...)
	default:
		dst = append(dst, 0x21, 0x21, 0, 36)
		a, b := as16(s).As16(), as16(d).As16()
		dst = append(dst, a[:]...)
		dst = append(dst, b[:]...)
	}
	dst = binary.BigEndian.AppendUint16(dst, src.Port())
	return binary.BigEndian.AppendUint16(dst, to.Port())
}

// AppendLocalV2 appends a version 2 LOCAL header: the connection is the
// proxy's own (a health check), the receiver uses the real addresses.
func AppendLocalV2(dst []byte) []byte {
	return AppendV2(dst, netip.AddrPort{}, netip.AddrPort{})
}
