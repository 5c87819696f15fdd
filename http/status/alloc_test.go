//go:build !race

package status

import (
	"testing"
	"time"
)

func TestAllocsZero(t *testing.T) {
	buf := make([]byte, 0, 1024)
	extra := []string{"Retry-After: 5"}
	conn := func(dst []byte) []byte { return AppendConnection(dst, true, 30) }
	now := time.Now()
	var c DateCache
	var sc SharedDateCache
	sc.Append(nil, now)
	ims := []byte("Sun, 06 Nov 1994 08:49:37 GMT")
	for name, f := range map[string]func(){
		"AppendSimple": func() {
			buf = AppendSimple(buf[:0], 503, "busy", Options{ServerTokens: true, Extra: extra, KeepAlive: true, KeepAliveTimeout: 30})
		},
		"AppendSimpleConn": func() { buf = AppendSimple(buf[:0], 404, "", Options{Conn: conn, Head: true}) },
		"AppendDate":       func() { buf = AppendDate(buf[:0], now) },
		"DateCache":        func() { buf = c.Append(buf[:0], now) },
		"SharedDateCache":  func() { buf = sc.Append(buf[:0], now) },
		"ParseDate":        func() { _, _ = ParseDate(ims) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocs per run, want 0", name, n)
		}
	}
}
