package plb

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayers holds the packages' layering (DESIGN.md): the engine knows no
// protocol and no configuration; health knows no protocol (a protocol
// supplies its own probe); HTTP and SMTP do not know each other; pool
// itself imports nothing of plb (config's balance names come from it);
// nothing imports the command. It reads the import graph with go list.
func TestLayers(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the packages with")
	}
	out, err := exec.Command(goTool, "list", "-f", "{{.ImportPath}} {{join .Deps \" \"}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/plb/plb/"
	deps := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], mod) {
			continue
		}
		for _, d := range f[1:] {
			if strings.HasPrefix(d, mod) {
				deps[strings.TrimPrefix(f[0], mod)] = append(deps[strings.TrimPrefix(f[0], mod)], strings.TrimPrefix(d, mod))
			}
		}
	}
	if len(deps) == 0 {
		t.Fatal("go list named no package of the module")
	}
	under := func(pkg, tree string) bool { return pkg == tree || strings.HasPrefix(pkg, tree+"/") }
	rules := []struct {
		pkg, forbidden, why string
	}{
		{"engine", "config", "the engine is configured by its callers"},
		{"engine", "http", "the engine knows no protocol"},
		{"engine", "smtp", "the engine knows no protocol"},
		{"engine", "manage", "the engine knows no protocol"},
		{"engine", "health", "the engine knows no protocol"},
		{"engine", "server", "the engine knows no protocol"},
		{"health", "smtp", "a protocol supplies its own probe"},
		{"health", "http", "a protocol supplies its own probe"},
		{"http", "smtp", "HTTP and SMTP do not know each other"},
		{"smtp", "http", "HTTP and SMTP do not know each other"},
	}
	for _, d := range deps["pool"] {
		t.Errorf("pool depends on %s: it imports no package of plb (config builds on it; pool/source may use config)", d)
	}
	for pkg, ds := range deps {
		for _, d := range ds {
			if under(d, "cmd") {
				t.Errorf("%s imports %s: nothing imports the command", pkg, d)
			}
			for _, r := range rules {
				if under(pkg, r.pkg) && under(d, r.forbidden) {
					t.Errorf("%s depends on %s: %s", pkg, d, r.why)
				}
			}
		}
	}
}
