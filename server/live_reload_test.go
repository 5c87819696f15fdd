package server

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/internal/testhttp"
)

// reloadTOML is a proxy over pool web of nodes, with extra TOML after it.
func reloadTOML(nodes []*testhttp.Backend, proxyExtra, extra string) string {
	q := make([]string, len(nodes))
	for i, n := range nodes {
		q[i] = fmt.Sprintf("%q", n.Addr)
	}
	return fmt.Sprintf(`[global]
workers = 2

[pool.web]
nodes = [%s]

[service.proxy]
role = "reverse_proxy"
listen = "127.0.0.1:0"
pool = "web"
%s%s
%s`, strings.Join(q, ", "), testhttp.StdProxy, proxyExtra, extra)
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReloadUnderLoad: reloads that change nodes and settings, add and
// remove a service and a pool, and one invalid file, all under a running
// load: not one failed request or refused connection (the proxy's listener
// keeps its socket), every change applied, the invalid file rejected with
// its file:line and the running configuration untouched.
func TestReloadUnderLoad(t *testing.T) {
	a, b := testhttp.OKBackend(t, "a"), testhttp.OKBackend(t, "b")
	docroot := t.TempDir()
	writeFile(t, filepath.Join(docroot, "hello.txt"), "hello from docs")
	path := filepath.Join(t.TempDir(), "plb.toml")
	v1 := reloadTOML([]*testhttp.Backend{a}, "", "")
	writeFile(t, path, v1)
	var logs logBuffer
	ts := startServerOpts(t, v1, Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	addr := ts.addrOf("proxy")
	g := startLoad(t, addr, 8, 4, 20*time.Second)
	waitServed(t, a, 50)

	// v2: b replaces a, a header is inserted, a web server and a pool
	// appear, and workers changes (which needs a restart: ignored).
	v2 := strings.Replace(reloadTOML([]*testhttp.Backend{b}, `headers = ["insert X-Reloaded: 2"]`+"\n", fmt.Sprintf(`
[pool.spare]
nodes = [%q]

[service.docs]
role = "web_server"
listen = "127.0.0.1:0"
docroot = %q
`, a.Addr, docroot)), "workers = 2", "workers = 3", 1)
	writeFile(t, path, v2)
	if err := ts.Reload(path); err != nil {
		t.Fatal(err)
	}
	if got := ts.addrOf("proxy"); got != addr {
		t.Fatalf("proxy listener moved from %s to %s", addr, got)
	}
	expectQuiet(t, a, "after the reload that removed a")
	waitServed(t, b, 50)
	reqs := b.Requests()
	if h := reqs[len(reqs)-1].Header.Get("X-Reloaded"); h != "2" {
		t.Fatalf("new header setting not applied: X-Reloaded %q", h)
	}
	if body := testhttp.MustGet(t, ts.addrOf("docs"), "/hello.txt"); body != "hello from docs" {
		t.Fatalf("new service: %q", body)
	}
	if ts.Pool("spare") == nil || len(ts.Config().Services) != 2 || ts.Config().Global.Workers != 2 {
		t.Fatal("new pool or service missing, or workers changed in the model")
	}
	if !strings.Contains(logs.String(), "key=workers") {
		t.Fatalf("no warning that workers needs a restart:\n%s", logs.String())
	}
	docsAddr := ts.addrOf("docs")
	idleDocs := testhttp.Dial(t, docsAddr)
	if resp, _ := idleDocs.Do("GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}

	// An invalid file changes nothing and names file:line.
	running := ts.Config()
	writeFile(t, path, v2+"\n[pool.broken]\nnodes = [\"10.0.0.1:80\"]\nbalance_method = \"fastest\"\n")
	err := ts.Reload(path)
	if err == nil || !strings.Contains(err.Error(), path+":") {
		t.Fatalf("invalid file: %v", err)
	}
	if ts.Config() != running || ts.Pool("broken") != nil {
		t.Fatal("an invalid file changed the running configuration")
	}
	if !strings.Contains(logs.String(), "reload failed") || !strings.Contains(logs.String(), path+":") {
		t.Fatalf("failed reload not logged with file:line:\n%s", logs.String())
	}

	// v3: the web server and the spare pool go; a comes back beside b.
	writeFile(t, path, reloadTOML([]*testhttp.Backend{a, b}, "", ""))
	if err := ts.Reload(path); err != nil {
		t.Fatal(err)
	}
	if ts.Addr("docs") != nil || ts.Pool("spare") != nil {
		t.Fatal("removed service or pool still running")
	}
	idleDocs.ExpectClosed() // the removed service's idle client is closed
	testhttp.WaitFor(t, "the removed service to stop listening", func() bool {
		c, err := net.DialTimeout("tcp", docsAddr, time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	waitServed(t, a, served(a)+50)

	// A burst of reloads, as from a config management tool.
	for i := 0; i < 10; i++ {
		nodes := []*testhttp.Backend{a, b}
		if i%2 == 0 {
			nodes = nodes[1:]
		}
		writeFile(t, path, reloadTOML(nodes, fmt.Sprintf(`headers = ["insert X-Reloaded: %d"]`+"\n", i), ""))
		if err := ts.Reload(path); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond)
	}
	if got := ts.addrOf("proxy"); got != addr {
		t.Fatalf("proxy listener moved from %s to %s", addr, got)
	}
	g.check(t)
}

// TestReloadMissingFile: a file that cannot be read leaves everything as
// it was.
func TestReloadMissingFile(t *testing.T) {
	a := testhttp.OKBackend(t, "a")
	ts := startServer(t, reloadTOML([]*testhttp.Backend{a}, "", ""))
	running := ts.Config()
	if err := ts.Reload(filepath.Join(t.TempDir(), "missing.toml")); err == nil {
		t.Fatal("missing file accepted")
	}
	if ts.Config() != running {
		t.Fatal("config changed")
	}
	testhttp.MustGet(t, ts.addrOf("proxy"), "/x")
}

// TestApplyFailureChangesNothing: when a new listener cannot be opened, the
// other changes of the same Apply are not made either.
func TestApplyFailureChangesNothing(t *testing.T) {
	a, b := testhttp.OKBackend(t, "a"), testhttp.OKBackend(t, "b")
	ts := startServer(t, reloadTOML([]*testhttp.Backend{a}, "", ""))
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	path := filepath.Join(t.TempDir(), "plb.toml")
	writeFile(t, path, reloadTOML([]*testhttp.Backend{b}, "", fmt.Sprintf(`
[service.docs]
role = "web_server"
listen = %q
docroot = %q
`, busy.Addr().String(), t.TempDir())))
	running := ts.Config()
	if err := ts.Reload(path); err == nil || !strings.Contains(err.Error(), "docs") {
		t.Fatalf("reload onto a busy port: %v", err)
	}
	if ts.Config() != running || ts.Addr("docs") != nil {
		t.Fatal("running configuration changed")
	}
	if body := testhttp.MustGet(t, ts.addrOf("proxy"), "/x"); !strings.HasPrefix(body, "a ") {
		t.Fatalf("pool changed by a failed apply: %q", body)
	}
}
