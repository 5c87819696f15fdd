package pool

import (
	"crypto/sha256"
	"encoding/binary"
)

// Sticky sessions by cookie (a reverse_proxy's sticky_cookie): the cookie
// names a node by its Token, which the proxy writes in Set-Cookie and
// reads back with ParseToken and ByToken.
//
// A token is the first 64 bits of SHA-256 of the node's address (its Name,
// "ip:port"), written as 16 lowercase hex digits: opaque to the client (not
// the address, nor the node's place in the list), and the same for the
// same address in every plb process, so that several plb instances with
// the same nodes send a client to the same node with no state shared
// between them, and a node keeps its token when others are added or
// removed. nginx's sticky cookie does the same with MD5; like it, the
// token hides the address only from someone who does not guess the
// address space (see README).

// Token names a node in a sticky cookie.
type Token uint64

// TokenLen is the length of a token written out (Token.Append).
const TokenLen = 16

// tokenOf is the token of the node named name.
func tokenOf(name string) Token {
	sum := sha256.Sum256([]byte("plb sticky node\x00" + name))
	return Token(binary.BigEndian.Uint64(sum[:8]))
}

// Token is the node's sticky-cookie token.
func (n *Node) Token() Token { return n.token }

// Append appends t as TokenLen lowercase hex digits. It allocates nothing
// when dst has room.
func (t Token) Append(dst []byte) []byte {
	const hex = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		dst = append(dst, hex[t>>uint(shift)&0xf])
	}
	return dst
}

// ParseToken parses a token as Append writes it (lowercase hex, exactly
// TokenLen digits); anything else is not a token.
func ParseToken(b []byte) (Token, bool) {
	if len(b) != TokenLen {
		return 0, false
	}
	var t Token
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			t = t<<4 | Token(c-'0')
		case 'a' <= c && c <= 'f':
			t = t<<4 | Token(c-'a'+10)
		default:
			return 0, false
		}
	}
	return t, true
}

// ByToken returns the pool's node whose token is t, nil when none is (a
// cookie of a node since removed, of another pool, or made up). Safe from
// any goroutine; it allocates nothing.
func (p *Pool) ByToken(t Token) *Node {
	if m := p.byToken.Load(); m != nil {
		return (*m)[t]
	}
	return nil
}

// Holds reports whether n is one of the pool's nodes: a node picked
// before the caller waited may have been removed since. Safe from any
// goroutine; it allocates nothing.
func (p *Pool) Holds(n *Node) bool { return p.ByToken(n.token) == n }
