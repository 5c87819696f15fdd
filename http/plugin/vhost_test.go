package plugin

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// tried lists the patterns EachHostPattern tries for host when none
// matches.
func tried(host string) []string {
	var out []string
	EachHostPattern(host, func(p string) bool { out = append(out, p); return false })
	return out
}

func TestEachHostPatternOrder(t *testing.T) {
	for _, tc := range []struct {
		host string
		want []string
	}{
		{"foo.site.com", []string{"foo.site.com", "*.foo.site.com", "*.site.com", "*.com", "*"}},
		{"foo.site.com:8080", []string{"foo.site.com", "*.foo.site.com", "*.site.com", "*.com", "*"}},
		{"localhost", []string{"localhost", "*.localhost", "*"}},
		{"", []string{"*"}},
		{":80", []string{"*"}},
		{"a%b.c", []string{"a%b.c", "*.a%b.c", "*%b.c", "*"}},
		{"a:b", []string{"a:b", "*.a:b", "*:b", "*"}},
	} {
		if got := tried(tc.host); !slices.Equal(got, tc.want) {
			t.Errorf("%q: tried %q, want %q", tc.host, got, tc.want)
		}
	}
}

func TestEachHostPatternStops(t *testing.T) {
	rules := map[string]bool{"*.example.com": true, "www.example.com": true, "*": true}
	for host, want := range map[string]string{
		"www.example.com":    "www.example.com",
		"a.b.example.com":    "*.example.com",
		"example.com":        "*.example.com", // "*." + host comes before peeling
		"example.org":        "*",
		"www.example.com:81": "www.example.com",
	} {
		var n int
		got := EachHostPattern(host, func(p string) bool { n++; return rules[p] })
		if got != want {
			t.Errorf("%s: matched %q, want %q", host, got, want)
		}
		if n > len(tried(host)) {
			t.Errorf("%s: %d tries", host, n)
		}
	}
	if got := EachHostPattern("x.y", func(string) bool { return false }); got != "" {
		t.Errorf("no rule matched %q", got)
	}
}

// perlOrder is Perlbal's Vhosts loop written with regular expressions, the
// reference the fuzz test compares with.
func perlOrder(host string) []string {
	host = regexp.MustCompile(`:\d+$`).ReplaceAllString(host, "")
	if host == "" {
		return []string{"*"}
	}
	out := []string{host, "*." + host}
	peel := regexp.MustCompile(`^\*\.[\w\-_]+`)
	wild := "*." + host
	for peel.MatchString(wild) {
		wild = peel.ReplaceAllString(wild, "*")
		out = append(out, wild)
	}
	if wild != "*" {
		out = append(out, "*")
	}
	return out
}

func FuzzEachHostPattern(f *testing.F) {
	for _, s := range []string{"foo.site.com", "a:80", "", "*.x", "a..b", "-.-", "a.b.c.d.e.f:1", "_:_", "x.é.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		got := tried(host)
		if want := perlOrder(host); !slices.Equal(got, want) {
			t.Fatalf("%q: tried %q, Perlbal's order %q", host, got, want)
		}
		if got[len(got)-1] != "*" {
			t.Fatalf("%q: last try %q, want *", host, got[len(got)-1])
		}
		for i, p := range got[1:] {
			if !strings.HasPrefix(p, "*") {
				t.Fatalf("%q: try %d is %q", host, i+1, p)
			}
		}
		// The first pattern accepted is the one returned.
		for i, p := range got {
			n := 0
			if r := EachHostPattern(host, func(q string) bool { n++; return n == i+1 }); r != p {
				t.Fatalf("%q: accepting try %d returned %q, want %q", host, i+1, r, p)
			}
		}
	})
}
