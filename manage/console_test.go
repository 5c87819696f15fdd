package manage

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
	"github.com/plb/plb/internal/version"
)

const testConf = `LOAD vhosts
CREATE POOL web
POOL web ADD 10.0.0.1:80
POOL web ADD 10.0.0.2:8080
CREATE POOL spare
CREATE SERVICE proxy
SET role = reverse_proxy
SET listen = 127.0.0.1:8080
SET pool = web
SET connect_ahead = 2
ENABLE proxy
CREATE SERVICE files
SET role = web_server
SET listen = 127.0.0.1:8081
SET docroot = /tmp
CREATE SERVICE mgmt
SET role = management
SET listen = 127.0.0.1:60000
ENABLE mgmt
CREATE SERVICE sel
SET role = selector
SET plugins = vhosts
`

// testRuntime is a fake runtime with figures on every service, node and
// socket, at fixed ages from now.
func testRuntime(t *testing.T) *fakeRT {
	rt := newFakeRT(t, testConf)
	waited := func(s int) time.Time { return time.Now().Add(-time.Duration(s)*time.Second - 100*time.Millisecond) }
	rt.setStatus("proxy", ServiceStatus{Listening: "127.0.0.1:8080", PendClients: 1, PendBackends: 1, Bored: 1, Requests: 3,
		Queues: [3]QueueStatus{{Count: 1, Oldest: waited(3)}, {Count: 2, Oldest: waited(5)}}})
	rt.setStatus("mgmt", ServiceStatus{Listening: "127.0.0.1:60000"})
	web := rt.Pool("web")
	n1, n2 := web.Nodes()[0], web.Nodes()[1]
	n1.Attempts.Store(3)
	n1.LastAttempt.Store(1700000000)
	n1.Connects.Store(3)
	n1.LastConnect.Store(1700000001)
	at := time.Unix(1700000002, 0)
	n1.RecordResponse(200, at)
	n1.RecordResponse(200, at)
	n1.RecordResponse(404, at)
	n2.Attempts.Store(2)
	n2.SetDown(true)
	n2.SetNoVerify(time.Now(), 90*time.Second+900*time.Millisecond)
	rt.socks = func() []Sock {
		now := time.Now()
		ago := func(s int) time.Time { return now.Add(-time.Duration(s)*time.Second - 100*time.Millisecond) }
		return []Sock{
			{Fd: 9, Created: ago(60), Addr: "10.0.0.1:80", Reading: true,
				Info: engine.ConnInfo{Class: classBackend, Service: "proxy", State: "bored", Detail: ": localport=40001; uses=4; bored"}},
			{Fd: 5, Created: ago(100), Listener: true, Reading: true, Addr: "127.0.0.1:8080", Info: engine.ConnInfo{Service: "proxy"}},
			{Fd: 7, Created: ago(4), Addr: "127.0.0.1:50000", Reading: true,
				Info: engine.ConnInfo{Class: classProxy, Service: "proxy", State: "wait_backend", Since: ago(3),
					Detail: ": localport=8080; reqs=1; wait_backend; http://example.com/"}},
			{Fd: 8, Created: ago(2), Addr: "10.0.0.2:8080", Writing: true, WriteBuf: 2048,
				Info: engine.ConnInfo{Class: classBackend, Service: "proxy", State: "verifying_backend", Detail: ": localport=40000; uses=0; verifying_backend"}},
			{Fd: 10, Created: ago(1), Addr: "127.0.0.1:50001", Writing: true, WriteBuf: 1024,
				Info: engine.ConnInfo{Class: classWeb, Service: "files", State: "xfer_disk", OpenFile: true, Detail: ": localport=8081; reqs=1; xfer_disk"}},
			{Fd: 6, Created: ago(0), Addr: "127.0.0.1:50002", Info: engine.ConnInfo{Class: "Perlbal::ClientManage", Service: "mgmt"}},
		}
	}
	return rt
}

func lines(s ...string) string { return strings.Join(s, "\n") }

// TestConsoleFormats checks every listing command's exact output and
// terminator against Perlbal's formats.
func TestConsoleFormats(t *testing.T) {
	rt := testRuntime(t)
	svc := New("mgmt", rt)
	cl := dialConsole(t, startConsole(t, svc))
	for _, tc := range []struct{ cmd, want string }{
		{"show service", lines("files 127.0.0.1:8081 DISABLED", "mgmt 127.0.0.1:60000 ENABLED",
			"proxy 127.0.0.1:8080 ENABLED", "sel not_listening DISABLED", ".")},
		{"SHOW SERVICE", lines("files 127.0.0.1:8081 DISABLED", "mgmt 127.0.0.1:60000 ENABLED",
			"proxy 127.0.0.1:8080 ENABLED", "sel not_listening DISABLED", ".")},
		{"show service proxy", lines("SERVICE proxy", "     listening: 127.0.0.1:8080", "          role: reverse_proxy",
			"  pend clients: 1", "  pend backend: 1", "   10.0.0.2:8080 - verifying_backend - 2s", " connect-ahead: 1/2",
			"          pool: web", "         nodes:",
			"                10.0.0.1:80                 3",
			"                10.0.0.2:8080               0", ".")},
		{"show service files", lines("SERVICE files", "     listening: 127.0.0.1:8081", "          role: web_server",
			"  pend clients: 0", "  pend backend: 0", "        docroot: /tmp", ".")},
		{"show service mgmt", lines("SERVICE mgmt", "     listening: 127.0.0.1:60000", "          role: management", ".")},
		{"show service sel", lines("SERVICE sel", "     listening: --", "          role: selector", ".")},
		{"show service nope", "ERROR: Unknown service"},
		{"show pool", lines("spare nodes 0", "spare services 0", "web nodes 2", "web services 1", ".")},
		{"show pool web", lines("10.0.0.1:80 3", "10.0.0.2:8080 0", ".")},
		{"show pool nope", "ERROR: pool 'nope' does not exist"},
		{"show", "ERROR: Invalid syntax to 'show' command"},
		{"show proxy", "ERROR: Invalid syntax to 'show' command"},
		{"nodes", lines("10.0.0.1:80 attempts 3", "10.0.0.1:80 lastattempt 1700000000", "10.0.0.1:80 connects 3",
			"10.0.0.1:80 lastconnect 1700000001", "10.0.0.1:80 requests 3", "10.0.0.1:80 lastresponse 1700000002",
			"10.0.0.1:80 responsecodes 200 2", "10.0.0.1:80 responsecodes 404 1", "10.0.0.1:80 state up",
			"10.0.0.1:80 token 1bdc450bb74633c9",
			"10.0.0.2:8080 attempts 2", "10.0.0.2:8080 state down", "10.0.0.2:8080 token 85a36085ca4410e6", ".")},
		{"node 10.0.0.2:8080", lines("10.0.0.2:8080 attempts 2", "10.0.0.2:8080 state down", "10.0.0.2:8080 token 85a36085ca4410e6", ".")},
		{"node 10.0.0.9", "."},
		{"node x", "ERROR: Invalid syntax to 'node' command"},
		{"socks", lines("   fd    age",
			"    5   100s Perlbal::TCPListener(R): open: listening on 127.0.0.1:8080 for service 'proxy'",
			"    6     0s Perlbal::ClientManage(): open to 127.0.0.1:50002",
			"    7     4s Perlbal::ClientProxy(R): open to 127.0.0.1:50000: localport=8080; reqs=1; wait_backend; http://example.com/",
			"    8     2s Perlbal::BackendHTTP(W): open to 10.0.0.2:8080: localport=40000; uses=0; verifying_backend",
			"    9    60s Perlbal::BackendHTTP(R): open to 10.0.0.1:80: localport=40001; uses=4; bored",
			"   10     1s Perlbal::ClientHTTP(W): open to 127.0.0.1:50001: localport=8081; reqs=1; xfer_disk", ".")},
		{"socks summary", lines("    2 Perlbal::BackendHTTP", "    1 Perlbal::ClientHTTP", "    1 Perlbal::ClientManage",
			"    1 Perlbal::ClientProxy", "    1 Perlbal::TCPListener", "", "Aggregate write buffer: 3.0k", "            Open files: 1", ".")},
		{"socks bogus", "."},
		{"socks a b", "ERROR: Invalid syntax to 'socks' command"},
		{"states", lines("Perlbal::BackendHTTP bored 1", "Perlbal::BackendHTTP verifying_backend 1",
			"Perlbal::ClientHTTP xfer_disk 1", "Perlbal::ClientProxy wait_backend 1", ".")},
		{"states files", lines("Perlbal::ClientHTTP xfer_disk 1", ".")},
		{"states nope", "ERROR: Service not found."},
		{"queues", lines("proxy-normal.age 3", "proxy-normal.count 1", "proxy-highpri.age 5", "proxy-highpri.count 2",
			"proxy-lowpri.age 0", "proxy-lowpri.count 0", ".")},
		{"backends", lines("10.0.0.1:80 1", "10.0.0.2:8080 1", ".")},
		{"noverify", lines("10.0.0.2:8080 90", ".")},
		{"pending", lines("proxy 10.0.0.2:8080 2", ".")},
		{"pending x", "ERROR: The 'pending' command takes no arguments"},
		{"plugins", lines("sel vhosts", ".")},
		{"reproxy_state", lines("SERVER max_reproxy_connections = 0", ".")},
		{"mime", lines("html text/html", "txt text/plain", ".")},
		{"mime set foo text/x-foo", "foo set to text/x-foo."},
		{"mime list", lines("foo text/x-foo", "html text/html", "txt text/plain", ".")},
		{"mime remove foo", "foo removed."},
		{"mime remove foo", "ERROR: foo not a defined extension."},
		{"mime set foo", "ERROR: Usage: set <ext> <mime>"},
		{"mime frob", "ERROR: Usage: list, remove <ext>, set <ext> <mime>"},
		{"bogus", "ERROR: unknown command: bogus"},
		{"!!", "ERROR: invalid command"},
		{"", ""},
		{"# a comment", ""},
	} {
		if got := cl.do(tc.cmd); got != tc.want {
			t.Errorf("%q:\n--- got ---\n%s\n--- want ---\n%s", tc.cmd, got, tc.want)
		}
	}
}

// TestConsoleFigures checks the commands whose figures move (time, pid,
// descriptors, the Go runtime) by pattern.
func TestConsoleFigures(t *testing.T) {
	rt := testRuntime(t)
	cl := dialConsole(t, startConsole(t, New("mgmt", rt)))
	for _, tc := range []struct{ cmd, pattern string }{
		{"uptime", `^starttime \d+\nuptime 9\d\nversion ` + regexp.QuoteMeta(version.Version) + `\n\.$`},
		{"version", `^starttime \d+\nuptime 9\d\nversion ` + regexp.QuoteMeta(version.Version) + `\n\.$`},
		{"proc", fmt.Sprintf(`^time: \d+\npid: %d\nutime: [\d.]+ \(\+[\d.]+\)\nstime: [\d.]+ \(\+[\d.]+\)\nreqs: 7 \(\+7\)\n\.$`, os.Getpid())},
		{"proc", `\nreqs: 7 \(\+0\)\n\.$`},
		{"fd", `^max \d+\ncur \d+\n\.$`},
		{"obj", `^Perlbal::BackendHTTP = 2\nPerlbal::ClientHTTP = 1\nPerlbal::ClientManage = 1\nPerlbal::ClientProxy = 1\nPerlbal::TCPListener = 1\n` +
			`go\.goroutines = \d+\ngo\.heap_objects = \d+ \(tot=\d+\)\ngo\.heap_bytes = \d+\ngo\.gc_cycles = \d+\n\.$`},
		{"help", `^backends\ncreate\n(?:\w+\n)+version\n\.$`},
		{"dumpconfig", `^LOAD vhosts\n\nCREATE POOL web\n  POOL ADD web 10\.0\.0\.1:80\n  POOL ADD web 10\.0\.0\.2:8080\n\n` +
			`CREATE POOL spare\n\nCREATE SERVICE proxy\n  SET role = reverse_proxy\n  SET listen = 127\.0\.0\.1:8080\n  SET pool = web\n` +
			`  SET connect_ahead = 2\nENABLE proxy\n\n(?s:.*)CREATE SERVICE sel\n  SET role = selector\n  SET plugins = vhosts\n\nOK$`},
	} {
		if got := cl.do(tc.cmd); !regexp.MustCompile(tc.pattern).MatchString(got) {
			t.Errorf("%q:\n--- got ---\n%s\n--- want /%s/", tc.cmd, got, tc.pattern)
		}
	}
}

// TestConsoleConfigCommands: configuration commands answer one OK or
// ERROR line (none with VERBOSE off) and change the live model.
func TestConsoleConfigCommands(t *testing.T) {
	rt := testRuntime(t)
	cl := dialConsole(t, startConsole(t, New("mgmt", rt)))
	for _, tc := range []struct{ cmd, want string }{
		{"CREATE SERVICE x", "OK"},
		{"SET role = web_server", "OK"}, // in the context CREATE set
		{"SET x.bogus = 1", "ERROR: Unknown service parameter 'bogus'"},
		{"SET nope.role = web_server", "ERROR: service/pool 'nope' does not exist"},
		{"POOL web ADD 10.0.0.3:80", "OK"},
		{"pool web remove 10.0.0.1", "OK"},
		{"use nope", "ERROR: Non-existent pool or service 'nope'"},
		{"disable mgmt", "ERROR: can't disable management service"},
		{"verbose x", "ERROR: usage: VERBOSE {on|off}"},
		{"server bogus = 7", "ERROR: unknown server option '7'"},
		{"header proxy insert X-Foo: bar", "OK"},
		{"verbose off", ""},
		{"create pool quiet", ""},
		{"set quiet.bogus = 1", "ERROR: Unknown pool parameter 'bogus'"},
		{"verbose on", "OK"},
		{"show pool web", lines("10.0.0.2:8080 0", "10.0.0.3:80 0", ".")},
		// plb's weights: POOL ADD again sets one (and moves the node to
		// the end, as Perlbal's ADD does); nodes shows it.
		{"POOL web ADD 10.0.0.2:8080 weight=3", "OK"},
		{"POOL web ADD 10.0.0.3 weight=300", "ERROR: Invalid node weight 'weight=300' (weight=0 to 256; 0 drains the node)"},
		{"nodes 10.0.0.2:8080", lines("10.0.0.2:8080 attempts 2", "10.0.0.2:8080 state down", "10.0.0.2:8080 token 85a36085ca4410e6",
			"10.0.0.2:8080 weight 3", ".")},
		{"show pool web", lines("10.0.0.3:80 0", "10.0.0.2:8080 0", ".")},
	} {
		if got := cl.do(tc.cmd); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.cmd, got, tc.want)
		}
	}
	cfg := rt.Config()
	if s := cfg.Service("x"); s == nil || s.Role != "web_server" {
		t.Errorf("service x not created as a web_server: %+v", s)
	}
	if cfg.Pool("quiet") == nil {
		t.Error("pool quiet not created with VERBOSE off")
	}
	if h := cfg.Service("proxy").Headers; len(h) != 1 || h[0].Name != "x-foo" {
		t.Errorf("header rule: %+v", h)
	}
	rt.mu.Lock()
	rt.applyErr = fmt.Errorf("Can't start service 'y' on 1.2.3.4:1: nope")
	rt.mu.Unlock()
	if got := cl.do("create service y"); got != "ERROR: Can't start service 'y' on 1.2.3.4:1: nope" {
		t.Errorf("failed apply: %q", got)
	}
	if rt.Config().Service("y") != nil {
		t.Error("a failed apply changed the model")
	}
}

// TestConsoleManagementAccess: the console refuses to open a management
// service beyond loopback to everyone, as the start-up check does.
func TestConsoleManagementAccess(t *testing.T) {
	rt := testRuntime(t)
	cl := dialConsole(t, startConsole(t, New("mgmt", rt)))
	got := cl.do("SET mgmt.listen = 0.0.0.0:60001")
	if !strings.HasPrefix(got, "ERROR: management service 'mgmt' listens on 0.0.0.0:60001, beyond this host, with no 'allow'") {
		t.Fatalf("open management: %q", got)
	}
	if l := rt.Config().Service("mgmt").Listen; l != "127.0.0.1:60000" {
		t.Fatalf("listen changed to %s", l)
	}
	for _, cmd := range []string{"SET mgmt.allow = 10.0.0.0/8, 127.0.0.1", "SET mgmt.listen = 0.0.0.0:60001"} {
		if got := cl.do(cmd); got != "OK" {
			t.Fatalf("%s: %q", cmd, got)
		}
	}
}

// TestConsoleShutdown: "shutdown graceful N" answers OK, drains and stops
// after N seconds; plain "shutdown" stops at once and answers nothing.
func TestConsoleShutdown(t *testing.T) {
	rt := testRuntime(t)
	addr := startConsole(t, New("mgmt", rt))
	cl := dialConsole(t, addr)
	if got := cl.do("shutdown graceful 5"); got != "OK" {
		t.Fatalf("shutdown graceful 5: %q", got)
	}
	if got := cl.do("shutdown now"); got != "ERROR: Invalid syntax to 'shutdown' command" {
		t.Fatalf("shutdown now: %q", got)
	}
	if got := cl.do("shutdown"); got != "" {
		t.Fatalf("shutdown: %q", got)
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if fmt.Sprint(rt.shutdowns) != "[true false]" || rt.stopAfter != 5*time.Second {
		t.Fatalf("shutdowns %v, stop after %v", rt.shutdowns, rt.stopAfter)
	}
}

// TestConsoleQuit: quit, exit and any line ending in "exit" close the
// connection; commands sent before it are answered first.
func TestConsoleQuit(t *testing.T) {
	rt := testRuntime(t)
	addr := startConsole(t, New("mgmt", rt))
	for _, q := range []string{"quit", "exit", "please exit", "quit now"} {
		cl := dialConsole(t, addr)
		if _, err := cl.c.Write([]byte("show pool web\r\n" + q + "\r\nshow pool web\r\n")); err != nil {
			t.Fatal(err)
		}
		var got []string
		for {
			line, err := cl.r.ReadString('\n')
			if err != nil {
				break
			}
			got = append(got, strings.TrimSuffix(line, "\r\n"))
		}
		if want := "10.0.0.1:80 3|10.0.0.2:8080 0|."; strings.Join(got, "|") != want {
			t.Errorf("%q: got %q, want %q", q, got, want)
		}
	}
	// QUIT is not quit (Perlbal tests the line before lower-casing it).
	cl := dialConsole(t, addr)
	if got := cl.do("QUIT"); got != "ERROR: unknown command: quit" {
		t.Errorf("QUIT: %q", got)
	}
}

// TestAllowedThroughSelector: through a selector, the management pages are
// for the allow list, or loopback peers when there is none.
func TestAllowedThroughSelector(t *testing.T) {
	s := New("m", nil)
	s.Update(&config.Service{Listen: "127.0.0.1:60000"})
	for peer, want := range map[string]bool{"127.0.0.1": true, "::1": true, "10.0.0.1": false} {
		if got := s.allowedThrough(netip.MustParseAddr(peer)); got != want {
			t.Errorf("no allow list, %s: %v", peer, got)
		}
	}
	s.Update(&config.Service{Listen: "0.0.0.0:60000", Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	for peer, want := range map[string]bool{"127.0.0.1": false, "10.1.2.3": true, "::ffff:10.0.0.1": true, "192.0.2.1": false} {
		if got := s.allowedThrough(netip.MustParseAddr(peer)); got != want {
			t.Errorf("allow 10/8, %s: %v", peer, got)
		}
	}
}

// TestConsoleIdleTimeout: a console connection that says nothing is closed
// after HeadTimeout, one idle after a command after IdleTimeout; commands
// before that are answered.
func TestConsoleIdleTimeout(t *testing.T) {
	svc := New("mgmt", testRuntime(t))
	svc.HeadTimeout, svc.IdleTimeout = 300*time.Millisecond, 600*time.Millisecond
	addr := startConsole(t, svc)
	closedWithin := func(cl *client, limit time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		cl.c.SetReadDeadline(start.Add(limit))
		if n, err := cl.r.Read(make([]byte, 64)); err != io.EOF {
			t.Fatalf("idle console connection: read %d, %v; want EOF within %v", n, err, limit)
		}
		return time.Since(start)
	}
	silent := dialConsole(t, addr)
	if d := closedWithin(silent, 5*time.Second); d < 200*time.Millisecond {
		t.Fatalf("silent connection closed after %v, before HeadTimeout", d)
	}
	cl := dialConsole(t, addr)
	time.Sleep(150 * time.Millisecond)
	if got := cl.do("uptime"); !strings.Contains(got, "uptime") {
		t.Fatalf("uptime: %q", got)
	}
	time.Sleep(400 * time.Millisecond) // past HeadTimeout, within IdleTimeout
	if got := cl.do("uptime"); !strings.Contains(got, "uptime") {
		t.Fatalf("second uptime: %q", got)
	}
	if d := closedWithin(cl, 5*time.Second); d < 400*time.Millisecond {
		t.Fatalf("idle connection closed after %v, before IdleTimeout", d)
	}
}
