package http

import "testing"

func TestTokenTable(t *testing.T) {
	const tchar = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	for c := 0; c < 256; c++ {
		want := false
		for i := 0; i < len(tchar); i++ {
			want = want || tchar[i] == byte(c)
		}
		if isToken(byte(c)) != want || isTokenMask(byte(c)) != want {
			t.Errorf("%#x: table %v, mask %v, want %v", c, isToken(byte(c)), isTokenMask(byte(c)), want)
		}
	}
}

func TestHasCTL(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 8; pos++ {
			var b [8]byte
			for i := range b {
				b[i] = 'a' + byte(i)
			}
			b[pos] = byte(c)
			w := uint64(0)
			for i := 7; i >= 0; i-- {
				w = w<<8 | uint64(b[i])
			}
			want := c < 0x20 || c == 0x7f
			if hasCTL(w) != want {
				t.Errorf("byte %#x at %d: %v", c, pos, !want)
			}
		}
	}
}

func TestHostMask(t *testing.T) {
	const ok = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!$%&'()*+,-.:;=[]_~"
	for c := 0; c < 256; c++ {
		want := false
		for i := 0; i < len(ok); i++ {
			want = want || ok[i] == byte(c)
		}
		if isHostByte(byte(c)) != want {
			t.Errorf("%#x: %v", c, !want)
		}
	}
}
