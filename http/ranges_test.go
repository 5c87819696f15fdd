package http

import (
	"testing"
)

func TestParseRange(t *testing.T) {
	type res struct {
		code   int
		off, n int64
	}
	for _, tc := range []struct {
		v    string
		size int64
		want res
	}{
		{"", 10, res{200, 0, 10}},
		{"bytes=0-6", 10, res{206, 0, 7}},
		{"bytes=5-", 10, res{206, 5, 5}},
		{"bytes=-3", 10, res{206, 7, 3}},
		{"bytes=-30", 10, res{206, 0, 10}},
		{"bytes=0-0", 10, res{206, 0, 1}},
		{"bytes=9-9", 10, res{206, 9, 1}},
		{"bytes=9-100", 10, res{206, 9, 1}},
		{"bytes=5-1", 10, res{416, 0, 0}},
		{"bytes=5-1", 0, res{416, 0, 0}},
		{"bytes=-0", 10, res{416, 0, 0}},
		{"bytes=10-", 10, res{416, 0, 0}},
		{"bytes=10-20", 10, res{416, 0, 0}},
		{"bytes=0-", 0, res{416, 0, 0}},
		{"bytes=-5", 0, res{416, 0, 0}},
		{"bytes=0-1,2-3", 10, res{200, 0, 10}},
		{"bytes=0-1, 2-3", 10, res{200, 0, 10}},
		{"bytes=-", 10, res{200, 0, 10}},
		{"bytes=1", 10, res{200, 0, 10}},
		{"bytes=+1-2", 10, res{200, 0, 10}},
		{"bytes=1--2", 10, res{200, 0, 10}},
		{"bytes 0-1", 10, res{200, 0, 10}},
		{"BYTES=0-1", 10, res{206, 0, 2}},
		{"bytes=18446744073709551616-", 10, res{416, 0, 0}},
		{"bytes=0-18446744073709551616", 10, res{206, 0, 10}},
		{"bytes=-18446744073709551616", 10, res{206, 0, 10}},
		{"bytes=9223372036854775807-9223372036854775807", 1 << 62, res{416, 0, 0}},
	} {
		code, off, n := ParseRange([]byte(tc.v), tc.size)
		if got := (res{code, off, n}); got != tc.want {
			t.Errorf("ParseRange(%q, %d) = %+v, want %+v", tc.v, tc.size, got, tc.want)
		}
	}
}

func TestAppendContentRange(t *testing.T) {
	for _, tc := range []struct {
		rng  string
		code int
		want string
	}{
		{"bytes=0-6", 206, "Content-Range: bytes 0-6/100\r\n"},
		{"bytes=-10", 206, "Content-Range: bytes 90-99/100\r\n"},
		{"bytes=100-", 416, "Content-Range: bytes */100\r\n"},
		{"bytes=5-1", 416, "Content-Range: bytes */100\r\n"},
		{"", 200, ""},
	} {
		code, off, n := ParseRange([]byte(tc.rng), 100)
		if got := string(AppendContentRange(nil, code, off, n, 100)); code != tc.code || got != tc.want {
			t.Errorf("%q: %d %q, want %d %q", tc.rng, code, got, tc.code, tc.want)
		}
	}
}

// FuzzParseRange: whatever the header, the answer is 200 with the whole
// representation, 206 with a non-empty region inside it, or 416.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-6", "bytes=-3", "bytes=5-", "bytes=5-1", "bytes=0-1,2-3", "BYTES = 1 - 2", "bytes=-0", ""} {
		f.Add(s, int64(10))
	}
	f.Fuzz(func(t *testing.T, v string, size int64) {
		if size < 0 {
			size = -size
			if size < 0 {
				size = 0
			}
		}
		code, off, n := ParseRange([]byte(v), size)
		switch code {
		case 200:
			if off != 0 || n != size {
				t.Fatalf("%q %d: 200 with [%d,+%d)", v, size, off, n)
			}
		case 206:
			if off < 0 || n <= 0 || off > size-n {
				t.Fatalf("%q %d: 206 with [%d,+%d)", v, size, off, n)
			}
		case 416:
		default:
			t.Fatalf("%q %d: code %d", v, size, code)
		}
	})
}

func TestParseRangeAllocatesNothing(t *testing.T) {
	v := []byte("bytes=100-199")
	if n := testing.AllocsPerRun(100, func() { ParseRange(v, 1000) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
