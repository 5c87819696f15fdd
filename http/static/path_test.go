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
