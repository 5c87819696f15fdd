package server

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/plb/plb/internal/testhttp"
)

// startNginxNodes runs one nginx answering on two loopback ports with the
// port it was reached on ("node PORT"), so that a test sees which node
// took each request; it returns the two addresses.
func startNginxNodes(t *testing.T) [2]string {
	bin := needServer(t, "nginx")
	dir := t.TempDir()
	p1, p2 := quietPort(t), quietPort(t)
	a1, a2 := fmt.Sprintf("127.0.0.1:%d", p1), fmt.Sprintf("127.0.0.1:%d", p2)
	runNginx(t, bin, dir, fmt.Sprintf(`  keepalive_requests 100000;
  server {
    listen %s;
    listen %s;
    location / { return 200 "node $server_port\n"; }
  }
`, a1, a2), a1, a2)
	return [2]string{a1, a2}
}

// curlNodes fetches n URLs of path from addr with one curl on one
// keep-alive connection, sending the extra curl arguments (a cookie), and
// counts the answers by node line.
func curlNodes(t *testing.T, addr, path string, n int, extra ...string) map[string]int {
	t.Helper()
	bin := needServer(t, "curl")
	args := append([]string{"-sS", "--fail", "--max-time", "20"}, extra...)
	for i := range n {
		args = append(args, fmt.Sprintf("http://%s%s%d", addr, path, i))
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	count := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		count[l]++
	}
	return count
}

// TestInteropBalancing: weights, a drain and hashing by cookie with real
// servers and a real client: nginx as the two nodes, curl as the client.
// Weights 3:1 give nginx's first port three requests in four over curl's
// keep-alive connection; weight 0 drains it; a session cookie keeps a
// client on one node, and many cookies reach both.
func TestInteropBalancing(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	nodes := startNginxNodes(t)
	heavy, light := "node "+nodes[0][strings.LastIndex(nodes[0], ":")+1:], "node "+nodes[1][strings.LastIndex(nodes[1], ":")+1:]
	ts := startProxy(t, []string{nodes[0] + " weight=3", nodes[1]}, `balance_method = "round_robin"`, testhttp.StdProxy)
	count := curlNodes(t, ts.addrOf("proxy"), "/w", 200)
	if count[heavy] != 150 || count[light] != 50 {
		t.Errorf("weights 3:1 over 200 requests: %v", count)
	}
	ts.exec("POOL web ADD " + nodes[0] + " weight=0")
	if count := curlNodes(t, ts.addrOf("proxy"), "/d", 40); count[light] != 40 {
		t.Errorf("the first node drained: %v", count)
	}

	ts.exec("POOL web ADD "+nodes[0], "SET web.balance_method = hash", "SET web.hash_key = cookie:sid")
	for _, sid := range []string{"alice", "bob", "carol"} {
		if count := curlNodes(t, ts.addrOf("proxy"), "/h", 20, "-b", "theme=dark; sid="+sid); len(count) != 1 {
			t.Errorf("sid=%s went to %v", sid, count)
		}
	}
	seen := map[string]bool{}
	for i := range 24 {
		for node := range curlNodes(t, ts.addrOf("proxy"), "/s", 1, "-b", fmt.Sprintf("sid=s%d", i)) {
			seen[node] = true
		}
	}
	if !seen[heavy] || !seen[light] {
		t.Errorf("24 session cookies reached %v", seen)
	}
}
