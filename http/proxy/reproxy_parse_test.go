package proxy

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/http"
)

func TestParseReproxyURLs(t *testing.T) {
	tests := []struct {
		in   string
		want []string // "host port path"
	}{
		{"http://127.0.0.1:8080/foo.txt", []string{"127.0.0.1 8080 /foo.txt"}},
		{"http://example.com", []string{"example.com 80 /"}},
		{"http://example.com/a?b=c d", []string{"example.com 80 /a?b=c"}},
		{"  http://a:1/x \t http://b/y  ", []string{"a 1 /x", "b 80 /y"}},
		{"HTTP://A:81/", []string{"A 81 /"}},
		{"https://a/x ftp://b/ http://c/z", []string{"c 80 /z"}},
		{"http://[::1]:8080/p", []string{"[::1] 8080 /p"}},
		{"http://[::1]/p", []string{"[::1] 80 /p"}},
		{"http://host:abc/x", []string{"host:abc 80 /x"}}, // Perlbal's pattern: the host takes it
		{"http://h:0/ http://h:65536/ http://:80/ http:// http://u@h/", nil},
		{"", nil},
	}
	for _, tt := range tests {
		var got []string
		for _, u := range parseReproxyURLs(nil, []byte(tt.in)) {
			got = append(got, u.Host+" "+strconv.Itoa(int(u.Port))+" "+u.Path)
			if u.Key != u.Host+":"+strconv.Itoa(int(u.Port)) {
				t.Errorf("%q: key %q", tt.in, u.Key)
			}
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("parseReproxyURLs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	many := strings.Repeat("http://a/ ", 100)
	if n := len(parseReproxyURLs(nil, []byte(many))); n != maxReproxyURLs {
		t.Errorf("%d URLs kept, want the bound %d", n, maxReproxyURLs)
	}
}

func TestReproxyURLAddr(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:81/": "127.0.0.1:81",
		"http://[::1]:82/":     "[::1]:82",
		"http://localhost/":    "",
	} {
		us := parseReproxyURLs(nil, []byte(in))
		a, ok := us[0].addr()
		if got := ""; ok {
			got = a.String()
			if got != want {
				t.Errorf("%s: addr %s, want %s", in, got, want)
			}
		} else if want != "" {
			t.Errorf("%s: no address, want %s", in, want)
		}
	}
}

func TestParseCacheFor(t *testing.T) {
	tests := []struct {
		in    string
		ok    bool
		secs  int64
		names string
	}{
		{"1; Last-Modified Content-Type", true, 1, "Last-Modified,Content-Type"},
		{" 30 ;  ETag\tX-A  ", true, 30, "ETag,X-A"},
		{"10s; ETag", true, 10, "ETag"},
		{"60", true, 60, ""},
		{"0; ETag", false, 0, ""},
		{"; ETag", false, 0, ""},
		{"x; ETag", false, 0, ""},
		{"5; Bad:Name Good", true, 5, "Good"},
		{"9999999999; ETag", false, 0, ""},
	}
	for _, tt := range tests {
		cf, ok := parseCacheFor([]byte(tt.in))
		var names []string
		for _, n := range cf.Names {
			names = append(names, string(n))
		}
		if ok != tt.ok || cf.Secs != tt.secs || strings.Join(names, ",") != tt.names {
			t.Errorf("parseCacheFor(%q) = %d %q %v, want %d %q %v", tt.in, cf.Secs, names, ok, tt.secs, tt.names, tt.ok)
		}
	}
}

func TestSmallParsers(t *testing.T) {
	if n, ok := parseExpectedSize([]byte(" 31000 ")); !ok || n != 31000 {
		t.Errorf("expected size: %d %v", n, ok)
	}
	for _, bad := range []string{"", "0", "-1", "12a", "1234567890123456789"} {
		if _, ok := parseExpectedSize([]byte(bad)); ok {
			t.Errorf("expected size %q accepted", bad)
		}
	}
	for in, want := range map[string]int64{"bytes 0-6/31000": 31000, "bytes */500": 500, "bytes 0-6/*": -1, "": -1} {
		n, ok := contentRangeTotal([]byte(in))
		if !ok {
			n = -1
		}
		if n != want {
			t.Errorf("contentRangeTotal(%q) = %d, want %d", in, n, want)
		}
	}
	for in, want := range map[string]string{
		"Sat, 29 Oct 1994 19:43:31 GMT; length=3000": "Sat, 29 Oct 1994 19:43:31 GMT",
		"199":          "199",
		"a; length=":   "a; length=",
		"a; length=1b": "ab",
	} {
		if got := string(stripIMSLength([]byte(in))); got != want {
			t.Errorf("stripIMSLength(%q) = %q, want %q", in, got, want)
		}
	}
}

// perlbalURL is Perlbal's pattern for one X-REPROXY-URL token.
var perlbalURL = regexp.MustCompile(`^http://(.+?)(?::(\d+))?(/.*)?$`)

// FuzzParseReproxyURLs checks the parser against Perlbal's pattern: every
// URL it keeps is one the pattern matches with the same parts, and no
// kept part holds a byte that could break the request line.
func FuzzParseReproxyURLs(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:8080/foo.txt http://b/", "http://[::1]:1/x", "http://a:b:c/", "http:///", "http://a:99999/"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		for _, u := range parseReproxyURLs(nil, v) {
			for _, part := range []string{u.Host, u.Path} {
				if strings.ContainsAny(part, " \t\r\n\x00") {
					t.Fatalf("%q: part %q", v, part)
				}
			}
			if u.Port == 0 || u.Host == "" || u.Path == "" || u.Path[0] != '/' {
				t.Fatalf("%q: %+v", v, u)
			}
			tok := "http://" + u.Host + ":" + strconv.Itoa(int(u.Port)) + u.Path
			m := perlbalURL.FindStringSubmatch(tok)
			if m == nil || m[1] != u.Host || m[2] != strconv.Itoa(int(u.Port)) || m[3] != u.Path {
				t.Fatalf("%q: %+v is not what Perlbal reads in %q: %q", v, u, tok, m)
			}
		}
	})
}

// FuzzParseCacheFor: names are tokens, the time positive, nothing panics.
func FuzzParseCacheFor(f *testing.F) {
	for _, s := range []string{"1; Last-Modified Content-Type", "0", ";;", "5;", "12 ; a b c"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		cf, ok := parseCacheFor(v)
		if !ok {
			return
		}
		if cf.Secs <= 0 || len(cf.Names) > maxCacheHeaders {
			t.Fatalf("%q: %+v", v, cf)
		}
		for _, n := range cf.Names {
			if !http.IsToken(n) || !bytes.Contains(v, n) {
				t.Fatalf("%q: name %q", v, n)
			}
		}
		stripIMSLength(v)
		contentRangeTotal(v)
	})
}

func TestReproxyCacheLRU(t *testing.T) {
	var rc reproxyCache
	rc.resize(2)
	now := time.Unix(1000, 0)
	put := func(k string, ttl time.Duration) {
		rc.set(&cacheEntry{key: k, expires: now.Add(ttl), urls: []byte("http://x/" + k)})
	}
	put("a", time.Second)
	put("b", time.Second)
	if rc.get([]byte("a"), now) == nil { // a is now the newest
		t.Fatal("a missing")
	}
	put("c", time.Second) // evicts b
	if rc.get([]byte("b"), now) != nil || rc.get([]byte("c"), now) == nil || rc.get([]byte("a"), now) == nil {
		t.Fatal("LRU order wrong")
	}
	if e := rc.get([]byte("a"), now.Add(2*time.Second)); e != nil {
		t.Fatal("expired entry served")
	}
	st := rc.stats()
	if st.Size != 1 || st.Max != 2 || st.Hits != 3 || st.Requests != 5 {
		t.Fatalf("stats %+v", st)
	}
	rc.resize(0)
	put("d", time.Second)
	if rc.stats().Size != 0 {
		t.Fatal("disabled cache stored")
	}
}
