package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected output of testdata/*.conftest")

// testEnv is the environment $NAME expands from in the golden tests.
func testEnv(name string) string {
	return map[string]string{"MGPORT": "16000", "WEBROOT": "testdata", "ROLE": "web_server"}[name]
}

// TestGolden parses each testdata/*.conftest input (the part before a
// "----" line) and compares the normalized TOML dump, or the error, with the
// part after it.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.conftest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".conftest"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			input, want, ok := bytes.Cut(data, []byte("\n----\n"))
			if !ok {
				t.Fatalf("%s: no ---- separator", file)
			}
			input = append(input, '\n')
			got := goldenOutput(file, input)
			if *update {
				out := append(append(input[:len(input)-1:len(input)-1], "\n----\n"...), got...)
				if err := os.WriteFile(file, out, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if string(got) != string(want) {
				t.Errorf("%s:\n--- got ---\n%s--- want ---\n%s", file, got, want)
			}
			c, err := Parse(file, input, testEnv)
			if err == nil {
				assertRoundTrip(t, c)
			}
		})
	}
}

func goldenOutput(file string, input []byte) []byte {
	c, err := Parse(file, input, testEnv)
	if err != nil {
		return []byte(err.Error() + "\n")
	}
	return c.MarshalTOML()
}

// assertRoundTrip parses c's dump and checks the model and the dump are
// the same.
func assertRoundTrip(t *testing.T, c *Config) {
	t.Helper()
	dump := c.MarshalTOML()
	c2, err := Parse("dump.toml", dump, nil)
	if err != nil {
		t.Fatalf("dump does not parse: %v\n%s", err, dump)
	}
	if d2 := c2.MarshalTOML(); !bytes.Equal(dump, d2) {
		t.Fatalf("dump changed on re-parse:\n%s---\n%s", dump, d2)
	}
	if a, b := comparable(c), comparable(c2); !reflect.DeepEqual(a, b) {
		t.Fatalf("model changed on re-parse:\n%#v\n---\n%#v", a, b)
	}
}

// comparable is c without the places (file and line) and the
// auto-vivification state, which a dump does not carry.
func comparable(c *Config) *Config {
	c = c.Clone()
	c.File, c.vivifyOff = "", false
	for _, p := range c.Pools {
		p.File, p.Line = "", 0
	}
	for _, s := range c.Services {
		s.File, s.Line = "", 0
		if len(s.Set) == 0 {
			s.Set = nil
		}
		if len(s.Extra) == 0 {
			s.Extra = nil
		}
	}
	if len(c.Global.Extra) == 0 {
		c.Global.Extra = nil
	}
	c.Global.Places = nil
	if len(c.Defaults) == 0 {
		c.Defaults = nil
	}
	return c
}
