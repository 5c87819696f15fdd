package server

// The console, /metrics and the status figures against a running server:
// the counters are the proxy's true ones and move with traffic.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/internal/testhttp"
)

// consoleTOML is a proxy over nodes plus a management service.
func consoleTOML(nodes []string, svcKeys string) string {
	return testhttp.ProxyTOML(nodes, "", svcKeys) + `
[service.mgmt]
role = "management"
listen = "127.0.0.1:0"
`
}

// console is a management connection to a test server.
type console struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialConsole(t *testing.T, addr string) *console {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(testTimeout))
	return &console{t: t, c: c, r: bufio.NewReader(c)}
}

// do sends cmd and returns the reply lines up to a "." line (excluded),
// or the one OK/ERROR line.
func (cn *console) do(cmd string) []string {
	cn.t.Helper()
	fmt.Fprintf(cn.c, "%s\r\n", cmd)
	var out []string
	for {
		line, err := cn.r.ReadString('\n')
		if err != nil {
			cn.t.Fatalf("%s: %v after %q", cmd, err, out)
		}
		line = strings.TrimSuffix(line, "\r\n")
		if line == "." {
			return out
		}
		out = append(out, line)
		if len(out) == 1 && (line == "OK" || strings.HasPrefix(line, "ERROR:")) {
			return out
		}
	}
}

// scrape fetches /metrics from the management service and parses it into
// sample name (with labels) → value.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	fmt.Fprintf(c, "GET /metrics HTTP/1.0\r\n\r\n")
	all, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	_, body, ok := strings.Cut(string(all), "\r\n\r\n")
	if !ok || !strings.HasPrefix(string(all), "HTTP/1.0 200 OK\r\n") {
		t.Fatalf("/metrics: %q", all)
	}
	m := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		m[line[:i]] = v
	}
	return m
}

// TestMetricsFollowTraffic: requests, responses by class, bytes, node
// figures and the latency histogram move by what was sent.
func TestMetricsFollowTraffic(t *testing.T) {
	a := testhttp.OKBackend(t, "a")
	ts := startServer(t, consoleTOML([]string{a.Addr}, ""))
	mgmt, addr := ts.addrOf("mgmt"), ts.addrOf("proxy")
	before := scrape(t, mgmt)
	const n = 7
	for i := 0; i < n; i++ {
		testhttp.MustGet(t, addr, fmt.Sprintf("/m%d", i))
	}
	after := scrape(t, mgmt)
	node := fmt.Sprintf(`{pool="web",node=%q}`, a.Addr)
	for _, name := range []string{
		`plb_requests_total{service="proxy",role="reverse_proxy"}`,
		`plb_responses_total{service="proxy",class="2xx"}`,
		`plb_request_duration_seconds_count{service="proxy"}`,
		`plb_request_duration_seconds_bucket{service="proxy",le="+Inf"}`,
		"plb_node_responses_total" + node,
	} {
		if d := after[name] - before[name]; d != n {
			t.Errorf("%s moved by %v, want %d", name, d, n)
		}
	}
	for _, name := range []string{
		`plb_received_bytes_total{service="proxy",role="reverse_proxy"}`,
		`plb_sent_bytes_total{service="proxy",role="reverse_proxy"}`,
		`plb_request_duration_seconds_sum{service="proxy"}`,
	} {
		if after[name] <= before[name] {
			t.Errorf("%s did not grow: %v → %v", name, before[name], after[name])
		}
	}
	if after["plb_node_up"+node] != 1 || after[`plb_proxy_errors_total{service="proxy",code="503"}`] != 0 {
		t.Errorf("node up %v, 503s %v", after["plb_node_up"+node], after[`plb_proxy_errors_total{service="proxy",code="503"}`])
	}
	// A dead node: the proxy answers 503 itself, counted as such.
	ts.exec("POOL web ADD "+testhttp.DeadAddr(t), "POOL web REMOVE "+a.Addr)
	if resp, _ := testhttp.Get(t, addr, "/dead"); resp.StatusCode != 503 {
		t.Fatalf("dead node: %d", resp.StatusCode)
	}
	last := scrape(t, mgmt)
	if d := last[`plb_responses_total{service="proxy",class="5xx"}`] - after[`plb_responses_total{service="proxy",class="5xx"}`]; d != 1 {
		t.Errorf("5xx moved by %v", d)
	}
	if last[`plb_proxy_errors_total{service="proxy",code="503"}`] != 1 {
		t.Errorf("503s: %v", last[`plb_proxy_errors_total{service="proxy",code="503"}`])
	}
}

// TestConsoleShowsWaitingClients: a client whose backend is still being
// verified is a pending client with a pending backend in show service,
// states, queues, pending and socks; the counts fall back to zero after.
func TestConsoleShowsWaitingClients(t *testing.T) {
	hold := make(chan struct{})
	mute := testhttp.NewBackend(t, func(b *testhttp.Backend, c net.Conn, id int64) {
		br := bufio.NewReader(c)
		if req, err := nethttp.ReadRequest(br); err != nil || req.Method != "OPTIONS" {
			return
		}
		<-hold // the probe is answered once the test has looked
		io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n")
		if _, err := nethttp.ReadRequest(br); err == nil {
			io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\ndone")
		}
	})
	released := false
	defer func() {
		if !released {
			close(hold)
		}
	}()
	ts := startServer(t, consoleTOML([]string{mute.Addr}, testhttp.ServiceKeys("verify_backend = true")))
	cn := dialConsole(t, ts.addrOf("mgmt"))
	cl := testhttp.Dial(t, ts.addrOf("proxy"))
	cl.Send("GET /wait HTTP/1.1\r\nHost: example.com\r\n\r\n")
	mute.WaitOpen(t, 1)
	var show []string
	testhttp.WaitFor(t, "a pending client", func() bool {
		show = cn.do("show service proxy")
		return len(show) > 4 && show[3] == "  pend clients: 1" && show[4] == "  pend backend: 1"
	})
	if !strings.HasPrefix(show[5], "   "+mute.Addr+" - verifying_backend - ") {
		t.Errorf("pending line: %q", show)
	}
	want := map[string][]string{
		"states proxy": {"Perlbal::BackendHTTP verifying_backend 1", "Perlbal::ClientProxy wait_backend 1"},
		"pending":      {"proxy " + mute.Addr + " 0"},
		"backends":     {mute.Addr + " 1"},
	}
	for cmd, w := range want {
		if got := cn.do(cmd); strings.Join(got, "|") != strings.Join(w, "|") {
			t.Errorf("%s: %q, want %q", cmd, got, w)
		}
	}
	if q := cn.do("queues"); len(q) < 2 || q[1] != "proxy-normal.count 1" {
		t.Errorf("queues: %q", q)
	}
	socks := strings.Join(cn.do("socks"), "\n")
	for _, s := range []string{
		"Perlbal::ClientProxy(", "; reqs=1; wait_backend; http://example.com/wait; backend=" + mute.Addr,
		"Perlbal::BackendHTTP(", "open to " + mute.Addr + ": localport=", "; uses=0; verifying_backend; has_attention=no",
		"Perlbal::TCPListener(R): open: listening on ", "for service 'proxy'",
		"Perlbal::ClientManage(",
	} {
		if !strings.Contains(socks, s) {
			t.Errorf("socks lacks %q:\n%s", s, socks)
		}
	}
	close(hold)
	released = true
	if resp, body := cl.Read("GET"); resp.StatusCode != 200 || body != "done" {
		t.Fatalf("response after the wait: %d %q", resp.StatusCode, body)
	}
	testhttp.WaitFor(t, "the counts back to zero", func() bool {
		st := ts.ServiceStatus("proxy")
		return st.PendClients == 0 && st.PendBackends == 0
	})
}
