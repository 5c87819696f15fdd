package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/plb/plb/internal/testhttp"
	"github.com/plb/plb/pool/source"
)

// startEtcd starts Debian's etcd on loopback (quiet ports, a data
// directory of the test's) and returns its client URL and a client.
func startEtcd(t *testing.T) (string, *clientv3.Client, *exec.Cmd) {
	t.Helper()
	bin := needServer(t, "etcd")
	client := fmt.Sprintf("http://127.0.0.1:%d", quietPort(t))
	peer := fmt.Sprintf("http://127.0.0.1:%d", quietPort(t))
	cmd := exec.Command(bin, "--name", "plbtest", "--data-dir", filepath.Join(t.TempDir(), "etcd"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "plbtest="+peer, "--log-level", "error")
	runGroup(t, cmd)
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{client}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Get(ctx, "ready")
		cancel()
		if err == nil {
			break
		}
		if i == 50 {
			t.Fatalf("etcd does not answer: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return client, c, cmd
}

// TestEtcdNodesFollowKeys: nodes_from = "etcd:URL/prefix/" against
// Debian's etcd on loopback: a key written reaches the pool within a
// second, weight and all; a key deleted drains its node; no request of
// the load fails; etcd gone keeps the last nodes, and the status says so.
func TestEtcdNodesFollowKeys(t *testing.T) {
	port, hits := loopbackNodes(t, 3)
	url, etcd, cmd := startEtcd(t)
	node := func(i int) string { return fmt.Sprintf("127.0.0.%d:%d", i+2, port) }
	put := func(k, v string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := etcd.Put(ctx, "/plb/pools/web/"+k, v); err != nil {
			t.Fatal(err)
		}
	}
	del := func(k string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := etcd.Delete(ctx, "/plb/pools/web/"+k); err != nil {
			t.Fatal(err)
		}
	}
	put("a", node(0))
	put("junk", "not a node")
	ts := startProxy(t, nil, fmt.Sprintf("nodes_from = \"etcd:%s/plb/pools/web/\"\nbalance_method = \"round_robin\"\n", url), testhttp.ServiceKeys())
	addr := ts.addrOf("proxy")
	nodes := func() []string {
		var s []string
		for _, n := range ts.Pool("web").Nodes() {
			s = append(s, n.Spec())
		}
		slices.Sort(s)
		return s
	}
	if got := nodes(); !slices.Equal(got, []string{node(0)}) {
		t.Fatalf("nodes at start: %v", got)
	}
	stop := make(chan struct{})
	wait := testhttp.Load("http://"+addr+"/", "", 4, 200000, stop)

	start := time.Now()
	put("b", node(1)+" weight=2")
	testhttp.WaitFor(t, "the key written", func() bool { return slices.Equal(nodes(), []string{node(0), node(1) + " weight=2"}) })
	if d := time.Since(start); d > time.Second {
		t.Errorf("the key written took %v to reach the pool", d)
	}
	testhttp.WaitFor(t, "requests on the new node", func() bool { return hits[1].Load() > 0 })

	put("c", node(2))
	del("a")
	testhttp.WaitFor(t, "the deleted key's node gone", func() bool { return slices.Equal(nodes(), []string{node(1) + " weight=2", node(2)}) })
	before := hits[0].Load()
	testhttp.WaitFor(t, "requests on the third node", func() bool { return hits[2].Load() > 0 })
	time.Sleep(200 * time.Millisecond)
	if after := hits[0].Load(); after != before {
		t.Errorf("the deleted node got %d more requests", after-before)
	}
	if st, ok := ts.PoolSource("web"); !ok || !st.OK || st.Nodes != 2 {
		t.Errorf("the source's status: %+v, %v", st, ok)
	}

	// etcd goes away: the last nodes stay, and the status says so.
	cmd.Process.Kill()
	testhttp.WaitFor(t, "the source to notice", func() bool { st, _ := ts.PoolSource("web"); return !st.OK })
	if got := nodes(); !slices.Equal(got, []string{node(1) + " weight=2", node(2)}) {
		t.Errorf("nodes with etcd gone: %v", got)
	}
	close(stop)
	ok, failed := wait()
	if failed > 0 || ok == 0 {
		t.Fatalf("%d requests failed, %d succeeded", failed, ok)
	}
	t.Logf("%d requests under load, none failed", ok)
}

// TestEtcdSourceEdges: values that are no node (large ones among them)
// are left out, said once each, not at every read; with credentials and
// etcd down at the start, the source waits for etcd rather than giving up.
func TestEtcdSourceEdges(t *testing.T) {
	url, etcd, _ := startEtcd(t)
	ctx := context.Background()
	junk := strings.Repeat("x", 300<<10)
	for i := range 3 {
		if _, err := etcd.Put(ctx, fmt.Sprintf("/edge/web/junk%d", i), junk); err != nil {
			t.Fatal(err)
		}
	}
	etcd.Put(ctx, "/edge/web/good", "127.0.0.1:80")
	var logs logBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	src, err := source.NewEtcd("etcd:"+url+"/edge/web/", source.EtcdAuth{}, nil, source.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if nodes := src.Nodes(); !slices.Equal(nodes, []string{"127.0.0.1:80"}) {
		t.Fatalf("nodes: %v", nodes)
	}
	rctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	go func() {
		for i := 0; rctx.Err() == nil; i++ {
			etcd.Put(ctx, "/edge/web/good", fmt.Sprintf("127.0.0.1:%d", 80+i%2))
			time.Sleep(200 * time.Millisecond)
		}
	}()
	src.Run(rctx, func([]string) error { return nil })
	if n := strings.Count(logs.String(), "etcd key is no node"); n != 3 || len(logs.String()) > 64<<10 {
		t.Fatalf("%d warnings, %d bytes of log:\n%.2000s", n, len(logs.String()), logs.String())
	}

	down := fmt.Sprintf("etcd:http://127.0.0.1:%d/edge/web/", quietPort(t))
	src, err = source.NewEtcd(down, source.EtcdAuth{Username: "u", Password: "p"}, []string{"127.0.0.1:1"}, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rctx2, cancel2 := context.WithTimeout(ctx, 3*time.Second)
	defer cancel2()
	start := time.Now()
	src.Run(rctx2, func([]string) error { return nil })
	if d := time.Since(start); d < 2500*time.Millisecond {
		t.Fatalf("with credentials and etcd down, the source gave up after %v", d)
	}
	if st := src.Status().Snapshot(); st.OK {
		t.Fatalf("status with etcd down: %+v", st)
	}
}

// TestEtcdTLSClientCert: an etcd on https that asks for a client
// certificate: with etcd_ca_file, etcd_cert_file and etcd_key_file the
// source reads the nodes; without the certificate it fails, and says so.
func TestEtcdTLSClientCert(t *testing.T) {
	bin := needServer(t, "etcd")
	ca := newTestCA(t)
	serverCert, serverKey, _ := ca.issue("etcd", false, "localhost")
	clientCert, clientKey, _ := ca.issue("plb", true)
	url := fmt.Sprintf("https://127.0.0.1:%d", quietPort(t))
	peer := fmt.Sprintf("http://127.0.0.1:%d", quietPort(t))
	runGroup(t, exec.Command(bin, "--name", "tls", "--data-dir", filepath.Join(t.TempDir(), "etcd"),
		"--listen-client-urls", url, "--advertise-client-urls", url, "--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer, "--initial-cluster", "tls="+peer, "--log-level", "error",
		"--cert-file", serverCert, "--key-file", serverKey, "--client-cert-auth", "--trusted-ca-file", ca.pem))
	auth := source.EtcdAuth{CAFile: ca.pem, CertFile: clientCert, KeyFile: clientKey}
	spec := "etcd:" + url + "/tls/web/"
	var src *source.Etcd
	testhttp.WaitFor(t, "etcd over TLS", func() bool {
		var err error
		if src, err = source.NewEtcd(spec, auth, nil, source.Options{}); err != nil {
			t.Fatal(err)
		}
		return len(src.Nodes()) == 0 && src.Status().Snapshot().OK // answers, no key yet
	})
	cert, err := tls.LoadX509KeyPair(clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 2 * time.Second, Logger: zap.NewNop(),
		TLS: &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{cert}}})
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := kv.Put(ctx, "/tls/web/a", "127.0.0.1:80 weight=2"); err != nil {
		t.Fatal(err)
	}
	src, _ = source.NewEtcd(spec, auth, nil, source.Options{})
	if nodes := src.Nodes(); !slices.Equal(nodes, []string{"127.0.0.1:80 weight=2"}) {
		t.Fatalf("over TLS with a client certificate: %v", nodes)
	}
	bare, _ := source.NewEtcd(spec, source.EtcdAuth{CAFile: ca.pem}, []string{"10.0.0.1:80"}, source.Options{})
	if nodes := bare.Nodes(); !slices.Equal(nodes, []string{"10.0.0.1:80"}) || bare.Status().Snapshot().OK {
		t.Fatalf("without the client certificate: %v, %+v", nodes, bare.Status().Snapshot())
	}
}
