package pool

import (
	"fmt"
	"testing"
)

// TestTokenFixed: a node's token depends on its address alone, and on
// nothing of the process: these values are what every plb writes for
// these addresses, today and in later versions (a change would move
// every sticky client at an upgrade).
func TestTokenFixed(t *testing.T) {
	for addr, want := range map[string]string{
		"10.0.0.1:80": "1bdc450bb74633c9",
		"10.0.0.1":    "1bdc450bb74633c9", // the default port: the same address
		"[::1]:8080":  "aaa183346facbdcf",
	} {
		n, err := ParseNode(addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(n.Token().Append(nil)); got != want {
			t.Errorf("%s: token %s, want %s", addr, got, want)
		}
	}
}

// TestTokensDistinctAndParsed: 65,536 addresses have as many tokens, and
// each parses back to itself.
func TestTokensDistinctAndParsed(t *testing.T) {
	seen := map[Token]string{}
	for i := range 1 << 16 {
		addr := fmt.Sprintf("10.%d.%d.1:%d", i>>8, i&0xff, 8000+i%4)
		n, err := ParseNode(addr)
		if err != nil {
			t.Fatal(err)
		}
		tok := n.Token()
		if other, ok := seen[tok]; ok {
			t.Fatalf("%s and %s share token %x", addr, other, uint64(tok))
		}
		seen[tok] = addr
		text := tok.Append(nil)
		if len(text) != TokenLen {
			t.Fatalf("%s: %q is not %d long", addr, text, TokenLen)
		}
		if back, ok := ParseToken(text); !ok || back != tok {
			t.Fatalf("%s: %q parsed as %x, %v", addr, text, uint64(back), ok)
		}
	}
}

// TestParseTokenRefuses: what Append never writes is not a token.
func TestParseTokenRefuses(t *testing.T) {
	for _, bad := range []string{"", "1bdc450bb74633c", "1bdc450bb74633c99", "1BDC450BB74633C9", "1bdc450bb74633g9",
		" bdc450bb74633c9", "1bdc450bb74633c\x00", "-bdc450bb74633c9", "+1dc450bb74633c9"} {
		if tok, ok := ParseToken([]byte(bad)); ok {
			t.Errorf("%q parsed as %x", bad, uint64(tok))
		}
	}
}

// TestByToken: the pool finds its node by token, and nothing for a token
// of a node it no longer holds or never held; Holds says whether a node
// is the pool's (a node added again is a new one).
func TestByToken(t *testing.T) {
	p, err := New("web", MethodRoundRobin)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetNodes([]string{"10.0.0.1:80", "10.0.0.2:80 weight=3"}); err != nil {
		t.Fatal(err)
	}
	one, two := p.Nodes()[0], p.Nodes()[1]
	if p.ByToken(one.Token()) != one || p.ByToken(two.Token()) != two || !p.Holds(one) || !p.Holds(two) {
		t.Fatal("a node not found by its token")
	}
	if err := p.Remove("10.0.0.1:80"); err != nil {
		t.Fatal(err)
	}
	if n := p.ByToken(one.Token()); n != nil || p.Holds(one) {
		t.Fatalf("a removed node's token found %v", n)
	}
	if err := p.Add("10.0.0.1:80"); err != nil {
		t.Fatal(err)
	}
	if back := p.ByToken(one.Token()); back == nil || back.Name != one.Name || p.Holds(one) {
		t.Fatal("the node added again is not found by its token, or the old node is held")
	}
	if n := p.ByToken(0); n != nil {
		t.Fatalf("token 0 found %s", n.Name)
	}
}

// TestStickyLookupAllocatesNothing: parsing a token, writing one and
// finding its node allocate nothing.
func TestStickyLookupAllocatesNothing(t *testing.T) {
	p, err := New("web", MethodRoundRobin)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetNodes([]string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"}); err != nil {
		t.Fatal(err)
	}
	text := p.Nodes()[2].Token().Append(nil)
	buf := make([]byte, 0, 64)
	if a := testing.AllocsPerRun(100, func() {
		tok, ok := ParseToken(text)
		if !ok || p.ByToken(tok) == nil {
			t.Fatal("not found")
		}
		buf = tok.Append(buf[:0])
	}); a != 0 {
		t.Errorf("%v allocations per lookup", a)
	}
}

// FuzzParseToken: any bytes parse or not without a panic, and what
// parses is exactly what Append writes for the token.
func FuzzParseToken(f *testing.F) {
	for _, s := range []string{"1bdc450bb74633c9", "", "ffffffffffffffff", "0000000000000000", "1BDC450BB74633C9", "zz"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, ok := ParseToken(b)
		if !ok {
			return
		}
		if out := tok.Append(nil); string(out) != string(b) {
			t.Fatalf("%q parsed as %x, written %q", b, uint64(tok), out)
		}
	})
}

// BenchmarkStickyLookup is a request's cost of its sticky cookie: the
// token parsed and its node found, in a pool of 4, 64 and 1,000 nodes.
func BenchmarkStickyLookup(b *testing.B) {
	for _, size := range []int{4, 64, 1000} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			p, err := New("web", MethodRoundRobin)
			if err != nil {
				b.Fatal(err)
			}
			var addrs []string
			for i := range size {
				addrs = append(addrs, fmt.Sprintf("10.0.%d.%d:80", i/200, i%200+1))
			}
			if err := p.SetNodes(addrs); err != nil {
				b.Fatal(err)
			}
			text := p.Nodes()[size-1].Token().Append(nil)
			b.ReportAllocs()
			for b.Loop() {
				tok, _ := ParseToken(text)
				if p.ByToken(tok) == nil {
					b.Fatal("not found")
				}
			}
		})
	}
}
