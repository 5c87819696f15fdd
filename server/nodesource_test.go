package server

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/plb/plb/internal/testhttp"
)

// TestNodefileSourceAcrossApply: a pool's nodefile watcher owns its nodes
// while a new config names the same file (the config's copy of the file
// may be older); another file, or none, publishes the config's nodes at
// once and stops the watcher.
func TestNodefileSourceAcrossApply(t *testing.T) {
	dir := t.TempDir()
	file, file2 := filepath.Join(dir, "nodes"), filepath.Join(dir, "nodes2")
	write := func(path, text string, age time.Duration) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		when := time.Now().Add(age)
		os.Chtimes(path, when, when)
	}
	write(file, "10.0.0.1:80\n", -10*time.Second)
	ts := startServer(t, fmt.Sprintf(`[pool.web]
nodefile = %q
[service.proxy]
role = "reverse_proxy"
listen = "127.0.0.1:0"
pool = "web"
`, file))
	nodes := func() []string {
		var s []string
		for _, n := range ts.Pool("web").Nodes() {
			s = append(s, n.Name)
		}
		return s
	}
	is := func(want ...string) func() bool {
		return func() bool { return slices.Equal(nodes(), want) }
	}
	if !is("10.0.0.1:80")() {
		t.Fatalf("at start: %v", nodes())
	}
	write(file, "10.0.0.2:80\n", 0)
	testhttp.WaitFor(t, "the watcher's read", is("10.0.0.2:80"))

	// Same file (a console SET elsewhere on the pool): the watcher's
	// nodes stay, not the config's copy of the file.
	c := ts.Config().Clone()
	c.Pool("web").BalanceMethod = "round_robin"
	if err := ts.Apply(c); err != nil {
		t.Fatal(err)
	}
	if !is("10.0.0.2:80")() {
		t.Fatalf("same nodefile, after Apply: %v, want the watcher's", nodes())
	}

	// Another file: its nodes as the config read them, at once.
	write(file2, "10.0.0.3:80\n", -10*time.Second)
	c = ts.Config().Clone()
	c.Pool("web").NodeFile, c.Pool("web").Nodes = file2, []string{"10.0.0.3:80"}
	if err := ts.Apply(c); err != nil {
		t.Fatal(err)
	}
	if !is("10.0.0.3:80")() {
		t.Fatalf("another nodefile, after Apply: %v", nodes())
	}
	write(file2, "10.0.0.4:80\n", 0)
	testhttp.WaitFor(t, "the new watcher's read", is("10.0.0.4:80"))

	// None (SET nodefile = none): the config's nodes, and the file is no
	// longer watched; neither is the first one.
	c = ts.Config().Clone()
	c.Pool("web").NodeFile, c.Pool("web").Nodes = "", []string{"10.0.0.5:80"}
	if err := ts.Apply(c); err != nil {
		t.Fatal(err)
	}
	if !is("10.0.0.5:80")() {
		t.Fatalf("no nodefile, after Apply: %v", nodes())
	}
	write(file, "10.0.0.6:80\n", time.Second)
	write(file2, "10.0.0.7:80\n", time.Second)
	time.Sleep(4 * time.Second) // more than a look every 3 s
	if !is("10.0.0.5:80")() {
		t.Fatalf("a nodefile no longer named was still watched: %v", nodes())
	}
}
