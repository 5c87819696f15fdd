package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/plb/plb/internal/testhttp"
	"github.com/plb/plb/internal/testutil"
)

// cluster is three hosts in network namespaces on one bridge, and the
// root namespace's address on it, where the shared services run.
type cluster struct {
	t      *testing.T
	prefix string // 10.201.N.
	hosts  []string
	ns     []string
}

// ipCmd runs ip with args.
func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newCluster makes a bridge in the root namespace (prefix.1, and prefix.2
// for a second client address) and three namespaces on it (prefix.11 to
// .13), removed at the end of the test.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command (iproute2)")
	}
	id := os.Getpid() % 200
	c := &cluster{t: t, prefix: fmt.Sprintf("10.201.%d.", id+20)}
	br := fmt.Sprintf("plbbr%d", id)
	ipCmd(t, "link", "add", br, "type", "bridge")
	t.Cleanup(func() { exec.Command("ip", "link", "del", br).Run() })
	ipCmd(t, "addr", "add", c.prefix+"1/24", "dev", br)
	ipCmd(t, "addr", "add", c.prefix+"2/24", "dev", br)
	ipCmd(t, "link", "set", br, "up")
	for i := 1; i <= 3; i++ {
		ns := fmt.Sprintf("plbc%d_%d", id, i)
		veth, peer := fmt.Sprintf("plbv%d_%d", id, i), fmt.Sprintf("plbp%d_%d", id, i)
		ipCmd(t, "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		ipCmd(t, "link", "add", veth, "type", "veth", "peer", "name", peer)
		ipCmd(t, "link", "set", peer, "netns", ns)
		ipCmd(t, "link", "set", veth, "master", br)
		ipCmd(t, "link", "set", veth, "up")
		host := fmt.Sprintf("%s%d", c.prefix, 10+i)
		ipCmd(t, "-n", ns, "addr", "add", host+"/24", "dev", peer)
		ipCmd(t, "-n", ns, "link", "set", peer, "up")
		ipCmd(t, "-n", ns, "link", "set", "lo", "up")
		c.hosts, c.ns = append(c.hosts, host), append(c.ns, ns)
	}
	return c
}

// TestThreeNodes: three plb processes in network namespaces, as one site:
// clients spread over them (as DNS round robin would), the nodes from one
// etcd prefix, Throttle's state in one memcached. A node written to etcd
// is used by all three within a second; an address banned on one is
// refused by the others; killing one process fails only its own
// connections.
func TestThreeNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	c := newCluster(t)
	root := c.prefix + "1"
	bin := plbBinary(t)
	etcdBin, err := exec.LookPath("etcd")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("etcd is not installed")
		}
		t.Skip("etcd is not installed")
	}
	memcachedBin, err := exec.LookPath("memcached")
	if err != nil {
		t.Skip("memcached is not installed")
	}
	dir := t.TempDir()

	// The shared services, on the bridge's address.
	etcdURL := fmt.Sprintf("http://%s:%d", root, testutil.QuietPort(t))
	peer := fmt.Sprintf("http://127.0.0.1:%d", testutil.QuietPort(t))
	etcd := exec.Command(etcdBin, "--name", "site", "--data-dir", filepath.Join(dir, "etcd"), "--listen-client-urls", etcdURL,
		"--advertise-client-urls", etcdURL, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "site="+peer, "--log-level", "error")
	if err := etcd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { etcd.Process.Kill(); etcd.Wait() })
	mcAddr := fmt.Sprintf("%s:%d", root, testutil.QuietPort(t))
	host, port, _ := net.SplitHostPort(mcAddr)
	mc := exec.Command(memcachedBin, "-l", host, "-p", port, "-U", "0", "-m", "16", "-u", "root")
	if err := mc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mc.Process.Kill(); mc.Wait() })
	kv, err := clientv3.New(clientv3.Config{Endpoints: []string{etcdURL}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	put := func(k, v string) {
		t.Helper()
		for i := 0; ; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := kv.Put(ctx, "/site/web/"+k, v)
			cancel()
			if err == nil {
				return
			}
			if i == 50 {
				t.Fatalf("etcd put: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	backend := func(name string) string {
		ln, err := net.Listen("tcp", root+":0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &nethttp.Server{Handler: nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
			if r.URL.Path == "/slow" {
				w.(nethttp.Flusher).Flush()
				time.Sleep(5 * time.Second)
			}
			io.WriteString(w, name)
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		return ln.Addr().String()
	}
	nodeA, nodeB := backend("A"), backend("B")
	put("a", nodeA)

	// The three plb processes, one configuration.
	conf := filepath.Join(dir, "plb.toml")
	text := fmt.Sprintf(`[global]
workers = 1
[pool.web]
nodes_from = "etcd:%s/site/web/"
balance_method = "round_robin"
[service.proxy]
role = "reverse_proxy"
listen = "0.0.0.0:8080"
pool = "web"
plugins = ["Throttle"]
path_regex = "^/throttled"
initial_delay = 0
max_delay = 0
max_concurrent = 100
ban_threshold = 3
ban_expiration = 3600
memcached_servers = %q
[service.mgmt]
role = "management"
listen = "0.0.0.0:16000"
allow = ["%s0/24"]
`, etcdURL, mcAddr, c.prefix)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var procs []*exec.Cmd
	for i, ns := range c.ns {
		cmd := exec.Command("ip", "netns", "exec", ns, bin, "-d", "1", "-l", filepath.Join(dir, fmt.Sprintf("plb%d.log", i)), "-c", conf)
		errf, err := os.Create(filepath.Join(dir, fmt.Sprintf("plb%d.log", i)))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = errf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		procs = append(procs, cmd)
	}
	client := &nethttp.Client{Timeout: 10 * time.Second, Transport: &nethttp.Transport{DisableKeepAlives: true}}
	get := func(host, path string) (int, string, error) {
		resp, err := client.Get("http://" + host + ":8080" + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	for i, h := range c.hosts {
		deadline := time.Now().Add(15 * time.Second)
		for {
			code, body, err := get(h, "/")
			if err == nil && body == "A" {
				break
			}
			if time.Now().After(deadline) {
				log, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("plb%d.log", i)))
				t.Fatalf("plb on %s: %d %q %v; log:\n%s", h, code, body, err, log)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// A node written to etcd: used by all three within a second.
	nodesOf := func(h string) []string {
		resp, err := client.Get("http://" + h + ":16000/status.json")
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var st struct {
			Pools []struct {
				Nodes []struct{ Name string } `json:"nodes"`
			} `json:"pools"`
		}
		json.NewDecoder(resp.Body).Decode(&st)
		var out []string
		for _, p := range st.Pools {
			for _, n := range p.Nodes {
				out = append(out, n.Name)
			}
		}
		return out
	}
	start := time.Now()
	put("b", nodeB)
	for _, h := range c.hosts {
		eventually(t, 5*time.Second, "node b on "+h, func() bool { return len(nodesOf(h)) == 2 })
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the node written to etcd reached all three in %v", d)
	}

	// Banned on the first by Throttle: refused by the other two.
	other := &nethttp.Client{Timeout: 10 * time.Second, Transport: &nethttp.Transport{DisableKeepAlives: true,
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(c.prefix + "2")}}).DialContext}}
	otherGet := func(h, path string) int {
		resp, err := other.Get("http://" + h + ":8080" + path)
		if err != nil {
			return 0 // the banning request is dropped
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	banned := false
	for i := 0; i < 10 && !banned; i++ {
		code := otherGet(c.hosts[0], "/throttled")
		banned = code == 0 || code == 403
	}
	if !banned {
		t.Fatal("not banned on the first node")
	}
	time.Sleep(1100 * time.Millisecond)
	for _, h := range c.hosts[1:] {
		otherGet(h, "/throttled") // its question goes out
	}
	time.Sleep(300 * time.Millisecond)
	for _, h := range c.hosts[1:] {
		if code := otherGet(h, "/throttled"); code != 403 {
			t.Errorf("the address banned on %s, on %s: %d", c.hosts[0], h, code)
		}
	}

	// Killing one process: only its connections fail.
	stop := make(chan struct{})
	var waits []func() (int64, int64)
	for _, h := range c.hosts {
		waits = append(waits, testhttp.Load("http://"+h+":8080/", "", 1, 100000, stop))
	}
	slowErr := make(chan error, 1)
	go func() { _, _, err := get(c.hosts[1], "/slow"); slowErr <- err }()
	time.Sleep(500 * time.Millisecond)
	procs[1].Process.Signal(syscall.SIGKILL)
	time.Sleep(time.Second)
	close(stop)
	var ok, failed [3]int64
	for i, wait := range waits {
		ok[i], failed[i] = wait()
	}
	if err := <-slowErr; err == nil {
		t.Error("the download in flight on the killed process did not fail")
	}
	for _, i := range []int{0, 2} {
		if failed[i] > 0 || ok[i] == 0 {
			t.Errorf("%s: %d failed, %d succeeded while another process was killed", c.hosts[i], failed[i], ok[i])
		}
	}
	if failed[1] == 0 {
		t.Errorf("%s was killed, yet none of its requests failed", c.hosts[1])
	}
	t.Logf("requests per node (ok, failed): %d/%d %d/%d %d/%d", ok[0], failed[0], ok[1], failed[1], ok[2], failed[2])
}
