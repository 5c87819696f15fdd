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

// TestConnectionNames: the tokens of every Connection field, in any case
// and spacing, name fields; close, keep-alive and upgrade alone leave
// ConnOthers false, so that a proxy skips the scan.
func TestConnectionNames(t *testing.T) {
	var p Parser
	var r RequestHead
	raw := "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive,X-Foo\r\nconnection: ,  x-BAR ,\r\n\r\n"
	if n, err := p.ParseRequest([]byte(raw), &r); n == 0 || err != nil {
		t.Fatal(n, err)
	}
	if !r.ConnOthers || !r.ConnKeepAlive {
		t.Fatalf("ConnOthers %v, ConnKeepAlive %v", r.ConnOthers, r.ConnKeepAlive)
	}
	for name, want := range map[string]bool{"X-Foo": true, "x-bar": true, "X-Baz": false, "Host": false, "": false} {
		if got := ConnectionNames(r.Headers, []byte(name)); got != want {
			t.Errorf("%q: %v", name, got)
		}
	}
	if n := testing.AllocsPerRun(100, func() { ConnectionNames(r.Headers, []byte("x-bar")) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
	var resp ResponseHead
	if n, err := p.ParseResponse([]byte("HTTP/1.1 200 OK\r\nConnection: close, Upgrade\r\n\r\n"), &resp); n == 0 || err != nil {
		t.Fatal(n, err)
	}
	if resp.ConnOthers {
		t.Fatal("close and upgrade taken for other tokens")
	}
}
