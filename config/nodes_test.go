package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestNodefileWarnings: a nodefile line that holds no node is reported
// with the nodefile's name and line, and the pool, instead of being
// dropped without a word (Perlbal's way); the good lines still count.
func TestNodefileWarnings(t *testing.T) {
	var warnings []string
	o := Options{Warn: func(err error) { warnings = append(warnings, err.Error()) }}
	c, err := ParseWith("a.conf", []byte("CREATE POOL dynamic\nSET dynamic.nodefile = testdata/nodes.txt\n"), o)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"10.1.0.10:80", "10.1.0.11:8081", "[2001:db8::7]:8080"}; !slices.Equal(c.Pool("dynamic").Nodes, want) {
		t.Errorf("nodes %q, want %q", c.Pool("dynamic").Nodes, want)
	}
	want := `testdata/nodes.txt:7: pool 'dynamic': no node in "not a node", line ignored (a line holds ip[:port], e.g. 10.0.0.1:8080 or [2001:db8::1]:80)`
	if len(warnings) != 1 || warnings[0] != want {
		t.Errorf("warnings %q, want [%q]", warnings, want)
	}

	// TOML pools read nodefiles the same way.
	warnings = nil
	if _, err := ParseWith("a.toml", []byte("[pool.p]\nnodefile = \"testdata/nodes.txt\"\n"), o); err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.HasPrefix(warnings[0], "testdata/nodes.txt:7: ") {
		t.Errorf("TOML: warnings %q", warnings)
	}
}

// TestParseNodeFile: every kind of line without a node is reported once,
// with its line number; comments, blank lines and good lines are not.
func TestParseNodeFile(t *testing.T) {
	data := "# nodes\n10.0.0.1\n\n   \n10.0.0.2:8080 # web2\n999.1.1.1\nweb3.example.com:80\n[::1\n10.0.0.3 backup\n10.0.0.4:8O\n"
	nodes, bad := ParseNodeFile("n.txt", []byte(data))
	// 10.0.0.4:8O is read as Perlbal reads it, and reported.
	if want := []string{"10.0.0.1:80", "10.0.0.2:8080", "10.0.0.3:80", "10.0.0.4:8"}; !slices.Equal(nodes, want) {
		t.Errorf("nodes %q, want %q", nodes, want)
	}
	var lines []string
	for _, err := range bad {
		msg := err.Error()
		lines = append(lines, msg[:strings.Index(msg, ": ")])
	}
	if want := []string{"n.txt:6", "n.txt:7", "n.txt:8", "n.txt:10"}; !slices.Equal(lines, want) {
		t.Errorf("reported %q, want %q (%v)", lines, want, bad)
	}
	if want := `n.txt:10: "10.0.0.4:8O" read as node 10.0.0.4:8: the address runs into "O"`; len(bad) != 4 || bad[3].Error() != want {
		t.Errorf("run-on node: %v, want %s", bad, want)
	}
	if _, bad := ParseNodeFile("long.txt", []byte(strings.Repeat("x", 1000))); len(bad) != 1 || len(bad[0].Error()) > 200 {
		t.Errorf("a long bad line: %v", bad)
	}
}

// TestNodefileWeights: "weight=N" after a node gives its weight (plb's;
// Perlbal reads the node alone); a bad weight keeps the node at weight 1
// and is reported at its line.
func TestNodefileWeights(t *testing.T) {
	data := "10.0.0.1 weight=3\n10.0.0.2:81 weight=1 # web2\nweight=9 10.0.0.3\n10.0.0.4 weight=0\n10.0.0.5 weight=999\n"
	nodes, bad := ParseNodeFile("n.txt", []byte(data))
	want := []string{"10.0.0.1:80 weight=3", "10.0.0.2:81", "10.0.0.3:80", "10.0.0.4:80 weight=0", "10.0.0.5:80"}
	if !slices.Equal(nodes, want) {
		t.Errorf("nodes %q, want %q", nodes, want)
	}
	if len(bad) != 1 || bad[0].Error() != `n.txt:5: "weight=999": weight must be 0 to 256, node 10.0.0.5:80 kept with weight 1` {
		t.Errorf("reported %v", bad)
	}
}

// TestNodefileMissing names the file (Perlbal said "File not found").
func TestNodefileMissing(t *testing.T) {
	_, err := Parse("a.toml", []byte("[pool.p]\nnodefile = \"/nonexistent/nodes.txt\"\n"), nil)
	if want := "a.toml:2: nodefile '/nonexistent/nodes.txt' not found"; err == nil || err.Error() != want {
		t.Errorf("%v, want %s", err, want)
	}
}

// TestNodesFrom: nodes_from's three forms, what each means, and the
// mistakes refused with their reason; nodes_from and a nodefile are two
// sources of the same nodes, refused together.
func TestNodesFrom(t *testing.T) {
	for _, c := range []struct {
		spec, want string
	}{
		{"dns:web.example.com:80", "dns web.example.com. 80 []"},
		{"dns:web.example.com.:8080", "dns web.example.com. 8080 []"},
		{"srv:_http._tcp.example.com", "srv _http._tcp.example.com. 0 []"},
		{"etcd:http://127.0.0.1:2379/plb/pools/web/", "etcd /plb/pools/web/ 0 [http://127.0.0.1:2379]"},
		{"etcd:https://a:2379/p/,https://b:2379", "etcd /p/ 0 [https://a:2379 https://b:2379]"},
		{"dns:web.example.com", "error: want dns:NAME:PORT"},
		{"dns:web.example.com:0", "error: bad port"},
		{"dns:web example.com:80", "error: is not a domain name"},
		{"srv:", "error: is not a domain name"},
		{"etcd:http://127.0.0.1:2379", "error: the prefix of the nodes' keys"},
		{"etcd:ftp://127.0.0.1:2379/p/", "error: is not an http:// or https:// URL"},
		{"etcd:http://a:2379/p/,https://b:2379/p/", "error: differ in scheme or prefix"},
		{"consul:web", "error: want dns:NAME:PORT, srv:NAME or etcd:URL"},
	} {
		nf, err := ParseNodesFrom(c.spec)
		got := fmt.Sprintf("%s %s %d %v", nf.Kind, nf.Name, nf.Port, nf.Endpoints)
		if err != nil {
			got = "error: " + err.Error()
			if strings.Contains(got, strings.TrimPrefix(c.want, "error: ")) {
				continue
			}
		}
		if got != c.want {
			t.Errorf("%q: %q, want %q", c.spec, got, c.want)
		}
	}
	dir := t.TempDir()
	nodefile := filepath.Join(dir, "nodes")
	os.WriteFile(nodefile, []byte("10.0.0.1:80\n"), 0o644)
	_, err := Parse("t.toml", []byte(fmt.Sprintf("[pool.web]\nnodefile = %q\nnodes_from = \"dns:web.example.com:80\"\n", nodefile)), nil)
	if err == nil || !strings.Contains(err.Error(), "two sources of the same nodes") || !strings.Contains(err.Error(), "t.toml:") {
		t.Fatalf("nodefile and nodes_from together: %v", err)
	}
}
