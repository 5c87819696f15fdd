package manage

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/internal/version"
)

// httpGet sends raw as the first bytes of a management connection and
// returns the status line, the header block and the body; the server must
// close the connection after it.
func httpGet(t *testing.T, addr, raw string) (status, head, body string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	h, b, ok := strings.Cut(string(all), "\r\n\r\n")
	if !ok {
		t.Fatalf("%q: no head in %q", raw, all)
	}
	status, head, _ = strings.Cut(h, "\r\n")
	if want := "Content-Length: " + strconv.Itoa(len(b)); !strings.HasPrefix(raw, "HEAD ") && !strings.Contains(head, want) {
		t.Errorf("%q: head %q lacks %q", raw, head, want)
	}
	return status, head, b
}

// TestHTTPPerlbalPages: Perlbal's management pages, now under /perlbal,
// /socks, /obj and /service?NAME; anything else is Perlbal's 404.
func TestHTTPPerlbalPages(t *testing.T) {
	addr := startConsole(t, New("mgmt", testRuntime(t)))
	for _, tc := range []struct {
		uri, status string
		has         []string
	}{
		{"/perlbal", "HTTP/1.0 200 OK", []string{"<title>perlbal management interface</title>", "<a href='/socks'>",
			"<a href='/service?proxy'>proxy</a> - reverse_proxy (127.0.0.1:8080)</li>", "<a href='/service?sel'>sel</a> - selector</li>"}},
		{"/socks", "HTTP/1.0 200 OK", []string{"<b>socks summary</b>", "    1 Perlbal::ClientProxy\n",
			"Aggregate write buffer: 3.0k", "listening on 127.0.0.1:8080 for <a href=\"/service?proxy\">proxy</a>"}},
		{"/obj", "HTTP/1.0 200 OK", []string{"<b>obj</b>", "Perlbal::ClientProxy = 1\n", "go.goroutines = "}},
		{"/service?proxy", "HTTP/1.0 200 OK", []string{"<b>show service proxy</b>", "SERVICE proxy\n", "          pool: web\n"}},
		{"/service?nope", "HTTP/1.0 200 OK", []string{"ERROR: Unknown service"}},
		{"/nope", "HTTP/1.0 404 Not found", []string{"<h1>404 Not found</h1>"}},
	} {
		status, head, body := httpGet(t, addr, "GET "+tc.uri+" HTTP/1.0\r\n\r\n")
		if status != tc.status || !strings.Contains(head, "Content-type: text/html") {
			t.Errorf("%s: %s\n%s", tc.uri, status, head)
		}
		for _, h := range tc.has {
			if !strings.Contains(body, h) {
				t.Errorf("%s: body lacks %q:\n%s", tc.uri, h, body)
			}
		}
	}
	// HEAD: the head alone; POST works as GET (as Perlbal).
	if status, _, body := httpGet(t, addr, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"); status != "HTTP/1.0 200 OK" || body != "" {
		t.Errorf("HEAD /: %s, %d body bytes", status, len(body))
	}
	if status, _, _ := httpGet(t, addr, "POST /perlbal HTTP/1.0\r\nContent-Length: 0\r\n\r\n"); status != "HTTP/1.0 200 OK" {
		t.Errorf("POST /perlbal: %s", status)
	}
}

// TestHTTPStatusPage: "/" is plb's status page: every service and pool
// with its nodes, state classes for the colours, and a refresh.
func TestHTTPStatusPage(t *testing.T) {
	addr := startConsole(t, New("mgmt", testRuntime(t)))
	for _, uri := range []string{"/", "/status"} {
		status, head, body := httpGet(t, addr, "GET "+uri+" HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\n\r\n")
		if status != "HTTP/1.0 200 OK" || !strings.Contains(head, "Content-type: text/html; charset=utf-8") {
			t.Fatalf("%s: %s\n%s", uri, status, head)
		}
		for _, h := range []string{
			`<meta http-equiv="refresh" content="5">`, "<title>plb status</title>",
			`<b>proxy</b></td><td class="l">reverse_proxy</td><td class="l">127.0.0.1:8080</td><td class="state">UP</td>`,
			`<tr class="disabled"><td class="l"><b>files</b>`,
			"pool web &middot; idle_first &middot; 1/2 nodes up &middot; used by proxy",
			`<tr class="up"><td class="l">10.0.0.1:80</td><td class="state">UP</td>`,
			`<tr class="down"><td class="l">10.0.0.2:8080</td><td class="state">DOWN</td>`,
			"pool spare", "no nodes", `<a href="/perlbal">`,
		} {
			if !strings.Contains(body, h) {
				t.Errorf("%s lacks %q", uri, h)
			}
		}
	}
}

// TestHTTPHealthz: /healthz is 200 "ok" while serving, 503 while
// draining.
func TestHTTPHealthz(t *testing.T) {
	rt := testRuntime(t)
	addr := startConsole(t, New("mgmt", rt))
	if status, _, body := httpGet(t, addr, "GET /healthz HTTP/1.0\r\n\r\n"); status != "HTTP/1.0 200 OK" || body != "ok\n" {
		t.Fatalf("serving: %s %q", status, body)
	}
	rt.mu.Lock()
	rt.draining = true
	rt.mu.Unlock()
	if status, _, body := httpGet(t, addr, "GET /healthz HTTP/1.0\r\n\r\n"); status != "HTTP/1.0 503 Service Unavailable" || body != "draining\n" {
		t.Fatalf("draining: %s %q", status, body)
	}
}

// TestHTTPStatusJSON: /status.json carries the same figures.
func TestHTTPStatusJSON(t *testing.T) {
	rt := testRuntime(t)
	rt.setStatus("proxy", ServiceStatus{Listening: "127.0.0.1:8080", Requests: 12, Responses: [6]int64{0, 0, 10, 0, 1, 1}, Errors503: 1,
		Latency: &Histogram{Bounds: []float64{0.1, 1}, Counts: []int64{8, 2, 0}, Count: 10, Sum: 1.5}})
	addr := startConsole(t, New("mgmt", rt))
	status, head, body := httpGet(t, addr, "GET /status.json HTTP/1.0\r\n\r\n")
	if status != "HTTP/1.0 200 OK" || !strings.Contains(head, "Content-type: application/json") {
		t.Fatalf("%s\n%s", status, head)
	}
	var sn snapshot
	if err := json.Unmarshal([]byte(body), &sn); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if sn.Version != version.Version {
		t.Errorf("status.json version %q, want %q (internal/version: one version everywhere)", sn.Version, version.Version)
	}
	var proxy *serviceSnap
	for i := range sn.Services {
		if sn.Services[i].Name == "proxy" {
			proxy = &sn.Services[i]
		}
	}
	if proxy == nil || proxy.Requests != 12 || proxy.Responses["2xx"] != 10 || proxy.Errors["503"] != 1 ||
		proxy.Latency == nil || proxy.Latency.Count != 10 || proxy.Latency.P50 <= 0 || proxy.Latency.P50 > 0.1 {
		t.Errorf("proxy: %+v", proxy)
	}
	if len(sn.Pools) != 2 || sn.Pools[1].Name != "web" || len(sn.Pools[1].Nodes) != 2 ||
		!sn.Pools[1].Nodes[0].Up || sn.Pools[1].Nodes[1].Up || sn.Pools[1].Nodes[0].Recent["4xx"] != 1 {
		t.Errorf("pools: %+v", sn.Pools)
	}
}

// parseMetrics reads the Prometheus text format: every sample by its name
// with labels as written, checking each family has HELP and TYPE first.
func parseMetrics(t *testing.T, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	typed := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || !map[string]bool{"counter": true, "gauge": true, "histogram": true}[f[1]] {
				t.Fatalf("bad TYPE line %q", line)
			}
			typed[f[0]] = true
			continue
		}
		if strings.HasPrefix(line, "# HELP ") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("bad sample %q", line)
		}
		name, value := line[:i], line[i+1:]
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("bad value in %q", line)
		}
		family := name
		if j := strings.IndexByte(family, '{'); j >= 0 {
			family = family[:j]
		}
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(family, "_bucket"), "_sum"), "_count")
		if !typed[family] && !typed[base] {
			t.Fatalf("sample %q before its TYPE", line)
		}
		if _, dup := out[name]; dup {
			t.Fatalf("duplicate sample %q", name)
		}
		out[name] = v
	}
	return out
}

// TestHTTPMetrics: /metrics is the Prometheus text format with the
// service, node and latency families, and its values follow the runtime.
func TestHTTPMetrics(t *testing.T) {
	rt := testRuntime(t)
	addr := startConsole(t, New("mgmt", rt))
	scrape := func() map[string]float64 {
		status, head, body := httpGet(t, addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
		if status != "HTTP/1.0 200 OK" || !strings.Contains(head, "Content-type: text/plain; version=0.0.4") {
			t.Fatalf("%s\n%s", status, head)
		}
		return parseMetrics(t, body)
	}
	m := scrape()
	for name, want := range map[string]float64{
		`plb_requests_total{service="proxy",role="reverse_proxy"}`:           3,
		`plb_queue_length{service="proxy",role="reverse_proxy"}`:             1,
		`plb_queue_clients{service="proxy",queue="normal"}`:                  1,
		`plb_queue_clients{service="proxy",queue="highpri"}`:                 2,
		`plb_queue_clients{service="proxy",queue="lowpri"}`:                  0,
		`plb_backend_connects_pending{service="proxy",role="reverse_proxy"}`: 1,
		`plb_node_up{pool="web",node="10.0.0.1:80"}`:                         1,
		`plb_node_up{pool="web",node="10.0.0.2:8080"}`:                       0,
		`plb_node_connects_total{pool="web",node="10.0.0.1:80"}`:             3,
		`plb_node_responses_total{pool="web",node="10.0.0.1:80"}`:            3,
	} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	if _, ok := m[`plb_requests_total{service="mgmt",role="management"}`]; ok {
		t.Error("a management service has traffic figures")
	}
	rt.setStatus("proxy", ServiceStatus{Requests: 5, Responses: [6]int64{0, 0, 4, 0, 0, 1}, Errors502: 1, Clients: 2,
		Latency: &Histogram{Bounds: []float64{0.01, 0.1}, Counts: []int64{3, 1, 1}, Count: 5, Sum: 0.75}})
	rt.Pool("web").Nodes()[1].SetDown(false)
	m = scrape()
	for name, want := range map[string]float64{
		`plb_requests_total{service="proxy",role="reverse_proxy"}`:       5,
		`plb_responses_total{service="proxy",class="2xx"}`:               4,
		`plb_responses_total{service="proxy",class="5xx"}`:               1,
		`plb_proxy_errors_total{service="proxy",code="502"}`:             1,
		`plb_client_connections{service="proxy",role="reverse_proxy"}`:   2,
		`plb_request_duration_seconds_bucket{service="proxy",le="0.01"}`: 3,
		`plb_request_duration_seconds_bucket{service="proxy",le="0.1"}`:  4,
		`plb_request_duration_seconds_bucket{service="proxy",le="+Inf"}`: 5,
		`plb_request_duration_seconds_sum{service="proxy"}`:              0.75,
		`plb_request_duration_seconds_count{service="proxy"}`:            5,
		`plb_node_up{pool="web",node="10.0.0.2:8080"}`:                   1,
		`plb_node_weight{pool="web",node="10.0.0.1:80"}`:                 1,
	} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	// A weight set at the console shows at once, as does a drain.
	if err := rt.Pool("web").Add("10.0.0.1:80 weight=3"); err != nil {
		t.Fatal(err)
	}
	if err := rt.Pool("web").Add("10.0.0.2:8080 weight=0"); err != nil {
		t.Fatal(err)
	}
	m = scrape()
	if a, b := m[`plb_node_weight{pool="web",node="10.0.0.1:80"}`], m[`plb_node_weight{pool="web",node="10.0.0.2:8080"}`]; a != 3 || b != 0 {
		t.Errorf("weights %v and %v, want 3 and 0", a, b)
	}
}

// TestAllowed: who may use the console.
func TestAllowed(t *testing.T) {
	addr := netip.MustParseAddr
	for _, tc := range []struct {
		listen, allow string
		peer          string
		want          bool
	}{
		{"127.0.0.1:60000", "", "127.0.0.1", true},
		{"0.0.0.0:60000", "", "10.1.2.3", false}, // escaped the start-up check: loopback only
		{"0.0.0.0:60000", "", "127.0.0.1", true},
		{"0.0.0.0:60000", "10.0.0.0/8", "10.1.2.3", true},
		{"0.0.0.0:60000", "10.0.0.0/8", "192.168.1.1", false},
		{"0.0.0.0:60000", "10.0.0.0/8", "127.0.0.1", false}, // only whom allow names
		{"[::]:60000", "10.0.0.0/8", "::ffff:10.0.0.1", true},
		{"127.0.0.1:60000", "192.168.0.7", "127.0.0.1", false},
	} {
		svc := New("mgmt", nil)
		sc := &config.Service{Listen: tc.listen}
		if tc.allow != "" {
			sc.Allow = []netip.Prefix{netip.MustParsePrefix(tc.allow + map[bool]string{true: "", false: "/32"}[strings.Contains(tc.allow, "/")])}
		}
		svc.Update(sc)
		if got := svc.Allowed(addr(tc.peer)); got != tc.want {
			t.Errorf("listen %s allow %q peer %s: %v, want %v", tc.listen, tc.allow, tc.peer, got, tc.want)
		}
	}
	if New("x", nil).Allowed(addr("10.0.0.1")) || !New("x", nil).Allowed(addr("127.0.0.1")) {
		t.Error("before Update: loopback only")
	}
}

// TestAllowRefusedSilently: a peer that may not connect is closed at once
// without a byte.
func TestAllowRefusedSilently(t *testing.T) {
	rt := testRuntime(t)
	svc := New("mgmt", rt)
	svc.Update(&config.Service{Listen: "0.0.0.0:1", Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	addr := startConsole(t, svc)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "proc\r\n")
	got, err := io.ReadAll(c)
	if len(got) != 0 {
		t.Fatalf("refused peer got %q", got)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("refused peer's connection left open")
	}
}

// TestPoolSourceShown: a pool's node source (nodes_from) on the status
// page, in the status JSON and in /metrics: answering, then failing with
// the last nodes kept.
func TestPoolSourceShown(t *testing.T) {
	rt := testRuntime(t)
	since := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	rt.sources = map[string]SourceStatus{"web": {Source: "dns:web.example.com:80", OK: false, Err: "i/o timeout",
		Since: since, Nodes: 2, Failures: 7}}
	addr := startConsole(t, New("mgmt", rt))
	_, _, page := httpGet(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\n\r\n")
	if want := `<tr class="down"><td class="l" colspan="12">nodes from dns:web.example.com:80: FAILS since 12:00:00 (i/o timeout); the last nodes are kept</td></tr>`; !strings.Contains(page, want) {
		t.Errorf("the status page lacks %q", want)
	}
	_, _, js := httpGet(t, addr, "GET /status.json HTTP/1.1\r\nHost: x\r\n\r\n")
	if !strings.Contains(js, `"source": "dns:web.example.com:80"`) || !strings.Contains(js, `"failures": 7`) {
		t.Errorf("the status JSON lacks the source:\n%s", js)
	}
	_, _, metrics := httpGet(t, addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
	m := parseMetrics(t, metrics)
	if m[`plb_pool_source_up{pool="web",source="dns:web.example.com:80"}`] != 0 || m[`plb_pool_source_failures_total{pool="web",source="dns:web.example.com:80"}`] != 7 {
		t.Errorf("metrics: %v", m)
	}
	if _, ok := m[`plb_pool_source_up{pool="web",source="dns:web.example.com:80"}`]; !ok {
		t.Error("plb_pool_source_up missing")
	}
}
