package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDumpPerlbalRoundTrip runs the console's dumpconfig of every golden
// Perlbal configuration back through the interpreter and checks the model
// is unchanged. (TOML models need not survive: Perlbal's language
// lower-cases header rules, and knows no forward references.)
func TestDumpPerlbalRoundTrip(t *testing.T) {
	files, err := filepath.Glob("testdata/perlbal_*.conftest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		input, _, _ := bytes.Cut(data, []byte("\n----\n"))
		c, err := Parse(file, append(input, '\n'), testEnv)
		if err != nil {
			continue
		}
		t.Run(strings.TrimSuffix(filepath.Base(file), ".conftest"), func(t *testing.T) {
			dump := strings.Join(c.DumpPerlbal(), "\n") + "\n"
			c2, err := Parse("dump.conf", []byte("# perlbal\n"+dump), testEnv)
			if err != nil {
				t.Fatalf("dump does not parse: %v\n%s", err, dump)
			}
			if a, b := c.MarshalTOML(), c2.MarshalTOML(); !bytes.Equal(a, b) {
				t.Fatalf("model changed through the dump:\n%s\n--- before ---\n%s--- after ---\n%s", dump, a, b)
			}
		})
	}
}

func TestDumpPerlbalLayout(t *testing.T) {
	c, err := Parse("x.conf", []byte(`CREATE POOL web
POOL web ADD 127.0.0.1:18091
CREATE SERVICE proxy
SET role = reverse_proxy
SET listen = 127.0.0.1:18090
SET pool = web
SET persist_backend = on
ENABLE proxy
CREATE SERVICE ws
SET role = web_server
SET listen = 127.0.0.1:18091
SET docroot = /tmp
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `CREATE POOL web
  POOL ADD web 127.0.0.1:18091

CREATE SERVICE proxy
  SET role = reverse_proxy
  SET listen = 127.0.0.1:18090
  SET pool = web
  SET persist_backend = on
ENABLE proxy

CREATE SERVICE ws
  SET role = web_server
  SET listen = 127.0.0.1:18091
  SET docroot = /tmp

`
	if got := strings.Join(c.DumpPerlbal(), "\n") + "\n"; got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
