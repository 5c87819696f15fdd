package static

import "testing"

func TestExportedRanges(t *testing.T) {
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
