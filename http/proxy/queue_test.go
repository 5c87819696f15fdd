package proxy

import (
	"net/url"
	"strings"
	"testing"

	"github.com/plb/plb/http"
)

func TestCookieHas(t *testing.T) {
	cases := []struct {
		cookies        []string
		name, contents string
		want           bool
	}{
		{nil, "vip", "", false}, // Perlbal said true: see priority
		{[]string{"vip=1"}, "vip", "", true},
		{[]string{"a=b; vip=gold-member"}, "vip", "gold", true},
		{[]string{"a=b;vip=gold"}, "vip", "gold", true},
		{[]string{"a=b", "vip=silver"}, "vip", "gold", false},
		{[]string{"a=b", "vip = x%20gold%21"}, "vip", "gold!", true},
		{[]string{"v%69p=gold"}, "vip", "gold", true},
		{[]string{"vip2=gold"}, "vip", "gold", false},
		{[]string{"vip"}, "vip", "", false},
		{[]string{"my+name=a+b"}, "my name", "a b", true},
		{[]string{"x=%zz%4"}, "x", "%zz%4", true},
	}
	for _, c := range cases {
		raw := "GET / HTTP/1.1\r\nHost: h\r\n"
		for _, v := range c.cookies {
			raw += "Cookie: " + v + "\r\n"
		}
		r := parseReq(t, raw+"\r\n")
		if got := cookieHas(r, c.name, c.contents); got != c.want {
			t.Errorf("%q %s/%s: %v", c.cookies, c.name, c.contents, got)
		}
	}
}

func TestCookieHasAllocs(t *testing.T) {
	r := parseReq(t, "GET / HTTP/1.1\r\nHost: h\r\nCookie: a=b; vip=x%20gold\r\n\r\n")
	if n := testing.AllocsPerRun(100, func() { cookieHas(r, "vip", "gold") }); n != 0 {
		t.Errorf("%v allocs", n)
	}
}

// durlRef is Perlbal's durl: '+' is a space, then %XX decoded.
func durlRef(s string) string {
	s = strings.ReplaceAll(s, "+", " ")
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := url.PathUnescape(s[i : i+3]); err == nil {
				b.WriteString(v)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func FuzzCookieHas(f *testing.F) {
	f.Add("a=b; vip=gold%21", "vip", "gold!")
	f.Add("v%69p=+x+", "vip", " x ")
	f.Add("=;;=%", "", "")
	f.Fuzz(func(t *testing.T, cookie, name, contents string) {
		if strings.ContainsAny(cookie, "\r\n\x00") {
			return
		}
		if got, want := string(durlAppend(nil, []byte(cookie))), durlRef(cookie); got != want {
			t.Fatalf("durlAppend(%q) = %q, want %q", cookie, got, want)
		}
		if got, want := durlEqual([]byte(cookie), name), durlRef(cookie) == name; got != want {
			t.Fatalf("durlEqual(%q, %q) = %v", cookie, name, got)
		}
		r := parseReqLoose("GET / HTTP/1.1\r\nHost: h\r\nCookie: " + cookie + "\r\n\r\n")
		if r == nil {
			return
		}
		want := false
		for _, pair := range strings.Split(string(r.Get("Cookie")), ";") {
			k, v, ok := strings.Cut(pair, "=")
			if ok && durlRef(strings.Trim(k, " \t")) == name {
				want = strings.Contains(durlRef(strings.Trim(v, " \t")), contents)
				break
			}
		}
		if got := cookieHas(r, name, contents); got != want {
			t.Fatalf("cookieHas(%q, %q, %q) = %v", cookie, name, contents, got)
		}
	})
}

// parseReqLoose parses raw, or returns nil when it is not a request.
func parseReqLoose(raw string) *http.RequestHead {
	var p http.Parser
	var r http.RequestHead
	if n, err := p.ParseRequest([]byte(raw), &r); err != nil || n == 0 {
		return nil
	}
	return &r
}
