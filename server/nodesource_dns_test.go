package server

import (
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/plb/plb/internal/testhttp"
)

// unboundServer is Debian's unbound on a loopback port, serving the zone
// plb.test from local data that the test changes at run time.
type unboundServer struct {
	t    *testing.T
	addr string
	conf string
	cmd  *exec.Cmd
}

// startUnbound starts unbound with records ("name TTL IN TYPE data").
func startUnbound(t *testing.T, records ...string) *unboundServer {
	t.Helper()
	bin := needServer(t, "unbound")
	dir := t.TempDir()
	port := quietPort(t)
	var b strings.Builder
	fmt.Fprintf(&b, "server:\n  interface: 127.0.0.1@%d\n  port: %d\n  do-daemonize: no\n  username: \"\"\n  chroot: \"\"\n", port, port)
	fmt.Fprintf(&b, "  directory: %q\n  pidfile: %q\n  use-syslog: no\n  logfile: \"\"\n  verbosity: 0\n", dir, filepath.Join(dir, "pid"))
	b.WriteString("  access-control: 127.0.0.0/8 allow\n  do-not-query-localhost: no\n  local-zone: \"plb.test.\" static\n")
	for _, r := range records {
		fmt.Fprintf(&b, "  local-data: %q\n", r)
	}
	fmt.Fprintf(&b, "remote-control:\n  control-enable: yes\n  control-interface: %q\n  control-use-cert: no\n", filepath.Join(dir, "control.sock"))
	conf := filepath.Join(dir, "unbound.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	u := &unboundServer{t: t, addr: fmt.Sprintf("127.0.0.1:%d", port), conf: conf}
	u.cmd = exec.Command(bin, "-d", "-c", conf)
	u.cmd.Stderr = os.Stderr
	if err := u.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.stop)
	m := new(dns.Msg)
	m.SetQuestion("plb.test.", dns.TypeSOA)
	for i := 0; ; i++ {
		if _, _, err := (&dns.Client{Timeout: 200 * time.Millisecond}).Exchange(m, u.addr); err == nil {
			break
		}
		if i == 50 {
			t.Fatal("unbound does not answer")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return u
}

// control runs unbound-control with args.
func (u *unboundServer) control(args ...string) {
	u.t.Helper()
	out, err := exec.Command(needServer(u.t, "unbound-control"), append([]string{"-c", u.conf}, args...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		u.t.Fatalf("unbound-control %q: %v\n%s", args, err, out)
	}
}

// set makes name's records of one type exactly records.
func (u *unboundServer) set(name string, records ...string) {
	u.t.Helper()
	u.control("local_data_remove", name)
	for _, r := range records {
		u.control("local_data", r)
	}
}

func (u *unboundServer) stop() {
	if u.cmd.Process != nil {
		u.cmd.Process.Kill()
		u.cmd.Wait()
	}
}

// loopbackNodes starts one HTTP backend on each of the addresses
// 127.0.0.N (N from 2) at one port, answering with its address and a
// newline.
func loopbackNodes(t *testing.T, n int) (port int, hits []*atomic.Int64) {
	t.Helper()
	port = quietPort(t)
	for i := range n {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:%d", i+2, port))
		if err != nil {
			t.Fatal(err)
		}
		c := &atomic.Int64{}
		hits = append(hits, c)
		name := ln.Addr().String()
		srv := &nethttp.Server{Handler: nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
			c.Add(1)
			io.WriteString(w, name+"\n")
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
	}
	return port, hits
}

// TestDNSNodesFollowRecords: nodes_from = "dns:NAME:PORT" against unbound
// on loopback: a record added reaches plb within its TTL, a record
// removed drains its node, all under load with no failed request; when
// the DNS server goes away the last nodes stay and serve.
func TestDNSNodesFollowRecords(t *testing.T) {
	port, hits := loopbackNodes(t, 3)
	u := startUnbound(t, "web.plb.test. 1 IN A 127.0.0.2")
	ts := startProxy(t, nil, fmt.Sprintf("nodes_from = \"dns:web.plb.test:%d\"\ndns_server = %q\n", port, u.addr), testhttp.ServiceKeys())
	addr := ts.addrOf("proxy")
	nodes := func() []string {
		var s []string
		for _, n := range ts.Pool("web").Nodes() {
			s = append(s, n.Name)
		}
		slices.Sort(s)
		return s
	}
	node := func(i int) string { return fmt.Sprintf("127.0.0.%d:%d", i+2, port) }
	if got := nodes(); !slices.Equal(got, []string{node(0)}) {
		t.Fatalf("nodes at start: %v", got)
	}
	stop := make(chan struct{})
	wait := testhttp.Load("http://"+addr+"/", "", 4, 200000, stop)

	u.set("web.plb.test.", "web.plb.test. 1 IN A 127.0.0.2", "web.plb.test. 1 IN A 127.0.0.3")
	start := time.Now()
	testhttp.WaitFor(t, "the added record's node", func() bool { return slices.Equal(nodes(), []string{node(0), node(1)}) })
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the added record took %v, its TTL is 1 s", d)
	}
	testhttp.WaitFor(t, "requests on the new node", func() bool { return hits[1].Load() > 0 })

	u.set("web.plb.test.", "web.plb.test. 1 IN A 127.0.0.3", "web.plb.test. 1 IN A 127.0.0.4")
	testhttp.WaitFor(t, "the removed record's node gone", func() bool { return slices.Equal(nodes(), []string{node(1), node(2)}) })
	before := hits[0].Load()
	testhttp.WaitFor(t, "requests on the third node", func() bool { return hits[2].Load() > 0 })
	time.Sleep(200 * time.Millisecond)
	if after := hits[0].Load(); after != before {
		t.Errorf("the removed node got %d more requests", after-before)
	}

	if st, ok := ts.PoolSource("web"); !ok || !st.OK || st.Nodes != 2 {
		t.Errorf("the source's status: %+v, %v", st, ok)
	}

	// The DNS server goes away: the last nodes stay and serve, and the
	// status says so.
	u.stop()
	time.Sleep(3 * time.Second) // past the TTL and a retry
	if got := nodes(); !slices.Equal(got, []string{node(1), node(2)}) {
		t.Errorf("nodes after the DNS server went away: %v", got)
	}
	if st, _ := ts.PoolSource("web"); st.OK || st.Failures == 0 || st.Err == "" || st.Nodes != 2 {
		t.Errorf("the source's status with its server gone: %+v", st)
	}
	close(stop)
	ok, failed := wait()
	if failed > 0 || ok == 0 {
		t.Fatalf("%d requests failed, %d succeeded", failed, ok)
	}
	t.Logf("%d requests under load, none failed", ok)
}

// TestSRVNodesWeights: nodes_from = "srv:NAME": each SRV target's
// addresses at its port, with its weight; the targets of a worse
// priority are backups, used only when none of the best can take a
// request.
func TestSRVNodesWeights(t *testing.T) {
	port, _ := loopbackNodes(t, 3)
	u := startUnbound(t,
		fmt.Sprintf("_http._tcp.plb.test. 1 IN SRV 0 30 %d a.plb.test.", port),
		fmt.Sprintf("_http._tcp.plb.test. 1 IN SRV 0 10 %d b.plb.test.", port),
		fmt.Sprintf("_http._tcp.plb.test. 1 IN SRV 1 10 %d c.plb.test.", port),
		"a.plb.test. 1 IN A 127.0.0.2", "b.plb.test. 1 IN A 127.0.0.3", "c.plb.test. 1 IN A 127.0.0.4")
	ts := startProxy(t, nil, fmt.Sprintf("nodes_from = \"srv:_http._tcp.plb.test\"\ndns_server = %q\nbalance_method = \"round_robin\"\n", u.addr), testhttp.ServiceKeys())
	var got []string
	for _, n := range ts.Pool("web").Nodes() {
		got = append(got, n.Spec())
	}
	slices.Sort(got)
	a, b, c := fmt.Sprintf("127.0.0.2:%d", port), fmt.Sprintf("127.0.0.3:%d", port), fmt.Sprintf("127.0.0.4:%d", port)
	want := []string{a + " weight=30", b + " weight=10", c + " weight=10 backup"}
	if !slices.Equal(got, want) {
		t.Fatalf("nodes %q, want %q", got, want)
	}
	counts := curlNodes(t, ts.addrOf("proxy"), "/w", 40)
	if counts[a] != 30 || counts[b] != 10 || counts[c] != 0 {
		t.Fatalf("40 requests went %v, want 30, 10 and none to the backup", counts)
	}
	// The best priority's targets drained: the backup serves.
	pl := ts.Pool("web")
	pl.Add(a + " weight=0")
	pl.Add(b + " weight=0")
	if counts := curlNodes(t, ts.addrOf("proxy"), "/d", 10); counts[c] != 10 {
		t.Fatalf("with the best targets drained, 10 requests went %v", counts)
	}
}
