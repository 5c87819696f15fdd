package config

import (
	"testing"
	"time"
)

// TestParseDuration: durations as people write them, in Perlbal's seconds
// and with units, and what stays an error.
func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		unit time.Duration
		want time.Duration
	}{
		{"300", time.Second, 300 * time.Second},
		{"0", time.Second, 0},
		{"500", time.Millisecond, 500 * time.Millisecond},
		{"1.5", time.Second, 1500 * time.Millisecond},
		{"5m", time.Second, 5 * time.Minute},
		{"5M", time.Second, 5 * time.Minute},
		{"1h30m", time.Second, 90 * time.Minute},
		{"500ms", time.Second, 500 * time.Millisecond},
		{"2s", time.Millisecond, 2 * time.Second},
		{"1.5s", time.Second, 1500 * time.Millisecond},
		{".5s", time.Second, 500 * time.Millisecond},
		{"5 min", time.Second, 5 * time.Minute},
		{"10 minutes", time.Second, 10 * time.Minute},
		{"2 hours", time.Second, 2 * time.Hour},
		{"1 hour 30 min", time.Second, 90 * time.Minute},
		{"30sec", time.Second, 30 * time.Second},
		{"1d", time.Second, 24 * time.Hour},
		{" 45s ", time.Second, 45 * time.Second},
		{"250us", time.Second, 250 * time.Microsecond},
	} {
		got, ok := parseDuration(tc.in, tc.unit)
		if !ok || got != tc.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", tc.in, got, ok, tc.want)
		}
	}
	for _, in := range []string{"", "x", "soon", "-5s", "5 fortnights", "1h30", "1..5s", "5s-", "s", "1.5.5",
		"99999999999999999999", "9999999999999999s", "1e3s", "5 m s"} {
		if got, ok := parseDuration(in, time.Second); ok {
			t.Errorf("parseDuration(%q) = %v, want an error", in, got)
		}
	}
}

// TestDurationErrorSaysWhatToWrite: a bad duration's error shows the
// forms that work, in every syntax.
func TestDurationErrorSaysWhatToWrite(t *testing.T) {
	msg := `parameter 'idle_timeout' takes seconds (300) or a duration ("5m", "1h30m", "1.5s", "10 minutes")`
	for _, tc := range []struct{ name, src, place string }{
		{"a.conf", "CREATE SERVICE s\nSET s.role = reverse_proxy\nSET s.idle_timeout = soon\n", "a.conf:3: "},
		{"a.toml", "[service.s]\nrole = \"web_server\"\ndocroot = \".\"\nidle_timeout = \"soon\"\n", "a.toml:4: "},
	} {
		if _, err := Parse(tc.name, []byte(tc.src), nil); err == nil || err.Error() != tc.place+msg {
			t.Errorf("%s: %v, want %s%s", tc.name, err, tc.place, msg)
		}
	}
}
