package proxy

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestDropField(t *testing.T) {
	head := "POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nX-Expect: 1\r\nexpect: again\r\nExpectation: no\r\n\r\n"
	got := string(dropField([]byte(head), "Expect"))
	want := "POST /x HTTP/1.1\r\nHost: a\r\nX-Expect: 1\r\nExpectation: no\r\n\r\n"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	// The request line is never taken for a field.
	if got := string(dropField([]byte("Expect: /x HTTP/1.1\r\n\r\n"), "Expect")); got != "Expect: /x HTTP/1.1\r\n\r\n" {
		t.Fatalf("request line dropped: %q", got)
	}
	if got := string(appendHeadField([]byte("GET / HTTP/1.1\r\nA: b\r\n\r\n"), "Content-Length", "12")); got != "GET / HTTP/1.1\r\nA: b\r\nContent-Length: 12\r\n\r\n" {
		t.Fatalf("appendHeadField: %q", got)
	}
}

func FuzzDropField(f *testing.F) {
	f.Add("POST / HTTP/1.1\r\nExpect: 100-continue\r\nA: b\r\n\r\n", "Expect")
	f.Add("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nbody", "transfer-encoding")
	f.Add("\r\n\r\n", "x")
	f.Fuzz(func(t *testing.T, head, name string) {
		if name == "" || strings.ContainsAny(name, ":\r\n") {
			return
		}
		got := dropField([]byte(head), name)
		// Reference: split into CRLF lines up to the first empty one,
		// keep the request line and every line not naming the field.
		lines := strings.SplitAfter(head, "\r\n")
		var want strings.Builder
		for i, l := range lines {
			body := strings.TrimSuffix(l, "\r\n")
			if i > 0 && body != l && len(body) > len(name) && body[len(name)] == ':' && equalFold([]byte(body[:len(name)]), name) {
				continue
			}
			want.WriteString(l)
			if body == "" || body == l {
				// the empty line or an unterminated rest: copied as is
				want.WriteString(strings.Join(lines[i+1:], ""))
				break
			}
		}
		if !bytes.Equal(got, []byte(want.String())) {
			t.Fatalf("dropField(%q, %q) = %q, want %q", head, name, got, want.String())
		}
	})
}

func TestSpoolReason(t *testing.T) {
	cases := []struct {
		rate      int64
		limit     time.Duration
		read      int64
		left      int64
		elapsed   time.Duration
		want      string
		situation string
	}{
		{0, 0, 100_000, 900_000, time.Second, "", "no thresholds"},
		{300_000, 0, 175_000, 650_000, 2 * time.Second, "rate", "slower than the rate"},
		{300_000, 0, 500_000, 0, 10 * time.Millisecond, "", "fast"},
		{0, 3 * time.Second, 300_000, 500_000, 2 * time.Second, "time", "3.3 s left"},
		{0, 3 * time.Second, 700_000, 100_000, 10 * time.Millisecond, "", "little left"},
		{300_000, 3 * time.Second, 100_000, 900_000, time.Second, "time", "both: time wins, as in Perlbal"},
		{300_000, 3 * time.Second, 100_000, 100_000, 0, "", "no time elapsed: fast"},
	}
	for _, c := range cases {
		if got := spoolReason(c.rate, c.limit, c.read, c.left, c.elapsed); got != c.want {
			t.Errorf("%s: %q, want %q", c.situation, got, c.want)
		}
	}
}
