package server

import (
	"context"
	"fmt"
	"net"
	nethttp "net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/internal/testhttp"
)

// TestHTTP2Chromium: headless Chromium loads a page and its scripts over
// HTTP/2 (TLS, ALPN h2) through a reverse_proxy in front of Go's
// net/http file server; the page reports the protocol of each load, and
// the scripts ran.
func TestHTTP2Chromium(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	browser := testhttp.Browser(t)
	files := map[string]string{
		"index.html": `<!doctype html><html><head><title>h2</title>` +
			`<script src="a.js"></script><script src="b.js"></script><script src="c.js"></script></head>` +
			`<body><p id="out"></p><script>
var n = performance.getEntriesByType("navigation")[0];
var r = performance.getEntriesByType("resource").map(function (e) { return e.nextHopProtocol; });
document.getElementById("out").textContent = "page=" + n.nextHopProtocol + " scripts=" + r.join(",") + " ran=" + window.ran.join("");
</script></body></html>`,
	}
	for _, s := range []string{"a", "b", "c"} {
		files[s+".js"] = fmt.Sprintf("window.ran = (window.ran || []).concat([%q]);\n", s)
	}
	dir := webRoot(t, files)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &nethttp.Server{Handler: nethttp.FileServer(nethttp.Dir(dir))}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	ca := newTestCA(t)
	cert, key, _ := ca.issue("a", false, "a.test")
	ts := startProxy(t, []string{ln.Addr().String()}, "", testhttp.ServiceKeys(tlsKeys(cert, key)))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
		"--ignore-certificate-errors", "--user-data-dir="+t.TempDir(), "--dump-dom",
		"https://"+ts.addrOf("proxy")+"/index.html")
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.Output()
	if err != nil && len(out) == 0 {
		t.Fatalf("chromium: %v", err)
	}
	want := "page=h2 scripts=h2,h2,h2 ran=abc"
	if !strings.Contains(string(out), want) {
		t.Fatalf("the page says:\n%s\nwant %q", out, want)
	}
}
