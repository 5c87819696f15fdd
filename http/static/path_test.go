package static

import "testing"

func TestDecodePath(t *testing.T) {
	for in, want := range map[string]string{
		"/a%20b":       "/a b",
		"/a+b":         "/a+b",
		"/a%2Bb":       "/a+b",
		"/%2e%2E":      "/..",
		"/%252e":       "/%2e",
		"/%zz%4":       "/%zz%4",
		"/%":           "/%",
		"/a?b=%20":     "/a",
		"/a%3Fb?c":     "/a?b",
		"/%00":         "/\x00",
		"/caf%C3%A9":   "/café",
		"":             "",
		"?only=query":  "",
		"/trailing%2f": "/trailing/",
	} {
		if got := string(decodePath(nil, []byte(in))); got != want {
			t.Errorf("decodePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBogusPath(t *testing.T) {
	for in, want := range map[string]bool{
		"/":               false,
		"/foo..123.txt":   false,
		"/..foo":          false,
		"/foo..":          false,
		"/...":            false,
		"/.":              false,
		"/a/./b":          false,
		"//":              false,
		"/..":             true,
		"/../":            true,
		"/a/..":           true,
		"/a/../b":         true,
		"/a//..//b":       true,
		"":                true,
		"a":               true,
		"*":               true,
		"..":              true,
		"\\..\\":          true, // no leading slash
		"/..\\secret.txt": false,
	} {
		if got := bogusPath([]byte(in)); got != want {
			t.Errorf("bogusPath(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestAppendRelative(t *testing.T) {
	for in, want := range map[string]string{
		"/":            ".",
		"//":           ".",
		"/.":           ".",
		"/./":          ".",
		"/a":           "a",
		"/a/":          "a",
		"/a//b/./c/":   "a/b/c",
		"/a/.b/..c":    "a/.b/..c",
		"/foo..1.txt":  "foo..1.txt",
		"/./a/./":      "a",
		"/a b/c+d.txt": "a b/c+d.txt",
	} {
		if got := string(appendRelative(nil, []byte(in))); got != want {
			t.Errorf("appendRelative(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidIndexName(t *testing.T) {
	for in, want := range map[string]bool{
		"index.html": true, "..index": true, "": false, ".": false, "..": false,
		"a/b": false, "/x": false, "a\x00": false,
	} {
		if got := validIndexName(in); got != want {
			t.Errorf("validIndexName(%q) = %v, want %v", in, got, want)
		}
	}
}

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
		code, off, n := parseRange([]byte(tc.v), tc.size)
		if got := (res{code, off, n}); got != tc.want {
			t.Errorf("parseRange(%q, %d) = %+v, want %+v", tc.v, tc.size, got, tc.want)
		}
	}
}
