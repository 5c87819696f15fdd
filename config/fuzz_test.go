package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// fuzzSetup is run before each fuzzed line: a few objects to act on.
var fuzzSetup = []string{
	"LOAD vhosts", "LOAD AccessControl", "LOAD Include", "LOAD MaxContentLength",
	"CREATE POOL p", "POOL p ADD 10.0.0.1",
	"CREATE SERVICE rp", "SET rp.role = reverse_proxy", "SET rp.pool = p",
	"CREATE SERVICE ws", "SET ws.role = web_server", "SET ws.docroot = /srv",
	"CREATE SERVICE sel", "SET sel.role = selector", "SET sel.plugins = vhosts",
}

// FuzzPerlbalLine checks that Interp.Exec never panics, and that whatever it
// builds dumps to TOML that parses back to the same model.
func FuzzPerlbalLine(f *testing.F) {
	for _, s := range oracleSnippets {
		for l := range strings.SplitSeq(s, "\n") {
			f.Add(l)
		}
	}
	for _, s := range []string{"SET rp.idle_timeout = 5s", "HEADER rp INSERT a: b", "VHOST sel *.x = rp",
		"ACCESS deny netmask 10.0.0.0/8", "SET ws.index_files = a,b c", "SET extra.x = \"q\\\"", "DEFAULT persist_client = 1",
		"SET rp.error_retry_schedule = 0,1e3", "POOL p ADD [::ffff:1.2.3.4]:0", "SET sel.latency = 1.5ms"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		in := NewInterp(New(), fakeOptions())
		for _, l := range fuzzSetup {
			if _, err := in.Exec(l); err != nil {
				t.Fatalf("setup %q: %v", l, err)
			}
		}
		in.Exec(line)
		in.Exec("USE rp")
		in.Exec(line)
		c := in.Config()
		_ = c.Validate()
		if utf8.ValidString(line) {
			checkRoundTrip(t, c)
		}
	})
}

// FuzzLoad checks that Parse never panics on any bytes, and that a config it
// accepts round-trips through its TOML dump.
func FuzzLoad(f *testing.F) {
	for _, glob := range []string{"testdata/*.conftest", "../etc/*.toml", "../etc/*.conf"} {
		files, _ := filepath.Glob(glob)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			input, _, _ := bytes.Cut(data, []byte("\n----\n"))
			f.Add(input)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		c, err := ParseWith("fuzz", data, fakeOptions())
		if d := time.Since(start); d > time.Second {
			t.Fatalf("slow input (%v): %q", d, data)
		}
		if err != nil || !utf8.Valid(data) {
			return
		}
		checkRoundTrip(t, c)
	})
}

func checkRoundTrip(t *testing.T, c *Config) {
	t.Helper()
	dump := c.MarshalTOML()
	c2, err := ParseWith("dump", dump, fakeOptions())
	if err != nil {
		if c.Validate() != nil {
			return // an invalid model (the fuzzed line broke it) need not load
		}
		t.Fatalf("dump does not parse: %v\n%s", err, dump)
	}
	if d2 := c2.MarshalTOML(); !bytes.Equal(dump, d2) {
		t.Fatalf("dump changed on re-parse:\n%s---\n%s", dump, d2)
	}
	if a, b := comparable(c), comparable(c2); !reflect.DeepEqual(a, b) {
		t.Fatalf("model changed on re-parse:\n%#v\n---\n%#v\n%s", a, b, dump)
	}
}

func BenchmarkExecSet(b *testing.B) {
	in := NewInterp(New(), fakeOptions())
	for _, l := range []string{"CREATE POOL p", "CREATE SERVICE web", "SET web.role = reverse_proxy", "SET web.pool = p"} {
		if _, err := in.Exec(l); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := in.Exec("SET web.persist_backend = on"); err != nil {
			b.Fatal(err)
		}
	}
}
