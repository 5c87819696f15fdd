package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func execAll(t *testing.T, in *Interp, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if _, err := in.Exec(l); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
	}
}

func TestExecNotConfigCommand(t *testing.T) {
	in := NewInterp(New(), fakeOptions())
	for _, l := range []string{"show service", "nodes", "proc", "crash", "dumpconfig", "SHUTDOWN graceful",
		"vhost a = b", "access reset", "include = x", "mime set foo text/plain", "xs"} {
		if _, err := in.Exec(l); !errors.Is(err, ErrNotConfigCommand) {
			t.Errorf("%q: got %v, want ErrNotConfigCommand", l, err)
		}
	}
	for _, l := range []string{"", "   ", "# comment only", "$UNSET_VAR"} {
		if out, err := in.Exec(l); err != nil || out != nil {
			t.Errorf("%q: got %v %v, want a no-op", l, out, err)
		}
	}
	if _, err := in.Exec("!!"); err == nil || err.Error() != "invalid command" {
		t.Errorf("!!: got %v", err)
	}
}

func TestExecContextAndVerbose(t *testing.T) {
	in := NewInterp(New(), fakeOptions())
	if !strings.EqualFold(in.Context(), "") || in.Verbose() {
		t.Fatalf("fresh interp: context %q verbose %v", in.Context(), in.Verbose())
	}
	execAll(t, in, "CREATE SERVICE a", "CREATE POOL P", "VERBOSE on")
	if in.Context() != "p" || !in.Verbose() {
		t.Fatalf("context %q verbose %v", in.Context(), in.Verbose())
	}
	execAll(t, in, "USE a", "SET role = web_server", "SET docroot = /srv")
	if s := in.Config().Service("a"); s.Role != RoleWebServer || s.Docroot != "/srv" {
		t.Fatalf("service a: %+v", s)
	}
	// A second connection has its own context.
	in2 := NewInterp(in.Config(), fakeOptions())
	if _, err := in2.Exec("SET role = web_server"); err == nil || err.Error() != "omitted service/pool name not implied from context" {
		t.Fatalf("second interp: %v", err)
	}
}

func TestExecRunningRefusesPidfile(t *testing.T) {
	o := fakeOptions()
	o.Running = true
	in := NewInterp(New(), o)
	_, err := in.Exec("SERVER pidfile = /run/x.pid")
	if err == nil || err.Error() != "pidfile must be configured at startup, before Perlbal::run is called" {
		t.Fatal(err)
	}
}

func TestExecExpansion(t *testing.T) {
	o := fakeOptions()
	o.InterfaceAddr = func(name string) (string, error) {
		if name == "eth0" {
			return "192.0.2.7", nil
		}
		return "", errors.New("no such interface")
	}
	in := NewInterp(New(), o)
	execAll(t, in, "CREATE SERVICE m", "SET m.role = management", "SET m.listen = ${ip:eth0}:$MGPORT")
	if l := in.Config().Service("m").Listen; l != "192.0.2.7:16000" {
		t.Fatalf("listen %q", l)
	}
	for line, msg := range map[string]string{
		"SET m.listen = ${ip:eth1}:80":  "Can't find IP of interface 'eth1'",
		"SET m.listen = ${ip:e-1}:80":   "Bogus-looking iface name",
		"SET m.listen = ${host:x}:80":   "Unknown config variable type: host",
		"SET m.listen = ${nonsense}:80": "Unknown config variable: nonsense",
	} {
		if _, err := in.Exec(line); err == nil || err.Error() != msg {
			t.Errorf("%q: got %v, want %q", line, err, msg)
		}
	}
}

// TestConsoleFlow is how the management console uses an Interp: run each
// command on a clone of the live snapshot, validate, publish.
func TestConsoleFlow(t *testing.T) {
	live, err := Parse("live.conf", []byte("CREATE POOL p\nPOOL p ADD 10.0.0.1\nCREATE SERVICE web\nSET web.role = reverse_proxy\nSET web.pool = p\nENABLE web\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	in := NewInterp(live, Options{Running: true, Verbose: true})
	next := live.Clone()
	in.SetConfig(next)
	execAll(t, in, "POOL p ADD 10.0.0.2", "SET web.persist_backend = 1", "DISABLE web")
	if err := next.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(live.Pool("p").Nodes) != 1 || live.Service("web").PersistBackend || !live.Service("web").Enabled {
		t.Fatal("the live snapshot changed")
	}
	if got := next.Pool("p").Nodes; len(got) != 2 || got[1] != "10.0.0.2:80" {
		t.Fatalf("nodes %v", got)
	}
}

func TestCloneIsDeep(t *testing.T) {
	c, err := Parse("x.toml", []byte(`
[global]
aio_threads = 3
[defaults]
persist_client = true
[pool.p]
nodes = ["10.0.0.1"]
[service.w]
role = "reverse_proxy"
pool = "p"
headers = ["insert A: b"]
trusted_upstream_proxies = ["10.0.0.0/8"]
"extra.k" = "v"
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := c.Clone()
	d.Global.Extra["aio_threads"] = "9"
	d.Defaults["persist_client"] = "0"
	d.Pools[0].Nodes[0] = "x"
	s := d.Services[0]
	s.Headers[0].Name = "x"
	s.TrustedUpstreamProxies[0] = s.TrustedUpstreamProxies[0].Masked()
	s.Extra["extra.k"] = "w"
	s.Set["idle_timeout"] = true
	s.ErrorRetrySchedule[0] = time.Hour
	o := c.Services[0]
	if c.Global.Extra["aio_threads"] != "3" || c.Defaults["persist_client"] != "1" || c.Pools[0].Nodes[0] != "10.0.0.1:80" ||
		o.Headers[0].Name != "A" || o.Extra["extra.k"] != "v" || o.Set["idle_timeout"] || o.ErrorRetrySchedule[0] != 0 {
		t.Fatal("Clone shares memory with the original")
	}
}

func TestDetect(t *testing.T) {
	for in, want := range map[string]Syntax{
		"":                                  SyntaxTOML,
		"# only\n\n":                        SyntaxTOML,
		"[global]\nworkers = 1":             SyntaxTOML,
		"# x\n  CREATE SERVICE a":           SyntaxPerlbal,
		"load vhosts":                       SyntaxPerlbal,
		"SERVER aio_mode = none":            SyntaxPerlbal,
		"set a.b=c":                         SyntaxPerlbal,
		"# plb\nlisten_ip 0.0.0.0":          SyntaxPLB,
		"servers_ip\t10.0.0.1 10.0.0.2":     SyntaxPLB,
		"listen_ip = \"x\"":                 SyntaxTOML,
		"workers = 4":                       SyntaxTOML,
		"\n\nVHOST *.example.com = service": SyntaxPerlbal,
	} {
		if got := Detect([]byte(in)); got != want {
			t.Errorf("Detect(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestParseNodeList(t *testing.T) {
	got := ParseNodeList([]byte("# nodes\n10.1.0.10    # test machine\n\n#10.1.0.10:8083\nhost=10.0.0.2:81 backup 10.0.0.3\n[::1]:8080\n[fe80::1]\n999.1.1.1\nnothing\n10.0.0.4:0\n"))
	want := []string{"10.1.0.10:80", "10.0.0.2:81", "[::1]:8080", "[fe80::1]:80", "10.0.0.4:80"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestServiceParams(t *testing.T) {
	seen := map[string]bool{}
	c := &setCtx{cfg: New(), fs: fakeFS{}}
	for _, p := range ServiceParams() {
		if seen[p.Name] {
			t.Errorf("duplicate parameter %s", p.Name)
		}
		seen[p.Name] = true
		row, ok := lookupParam(p.Name)
		if !ok {
			t.Fatalf("lookupParam(%s) failed", p.Name)
		}
		if p.Doc == "" {
			t.Errorf("%s has no doc", p.Name)
		}
		if p.Default != "" {
			if err := row.assign(c, &Service{Name: "x"}, p.Default); err != nil {
				t.Errorf("%s: default %q does not parse: %v", p.Name, p.Default, err)
			}
		}
	}
}

func TestRoleDefaults(t *testing.T) {
	in := NewInterp(New(), fakeOptions())
	execAll(t, in, "CREATE SERVICE rp", "SET role = reverse_proxy", "CREATE SERVICE ws", "SET role = web_server")
	rp, ws := in.Config().Service("rp"), in.Config().Service("ws")
	if rp.BufferSize != 256<<10 || rp.BufferBackendConnect != 100<<10 || rp.BackendPersistCache != 2 ||
		rp.VerifyBackendPath != "*" || rp.ConnectTimeout != 5*time.Second || rp.BackendTimeout != time.Minute ||
		rp.IdleTimeout != 30*time.Second || !rp.ServerTokens || rp.MaxChunkedRequestSize != 209715200 ||
		len(rp.ErrorRetrySchedule) != 8 || rp.ErrorRetrySchedule[1] != 250*time.Millisecond ||
		rp.BufferUploadThresholdTime != 5*time.Second || rp.SSLCipherList != "ALL:!LOW:!EXP" {
		t.Errorf("reverse_proxy defaults: %+v", rp)
	}
	if ws.BufferSize != 0 || !ws.EnableMD5 || len(ws.IndexFiles) != 1 || ws.IndexFiles[0] != "index.html" ||
		ws.HeaderTimeout != 30*time.Second {
		t.Errorf("web_server defaults: %+v", ws)
	}
	if len(rp.Set) != 1 || !rp.Set["role"] {
		t.Errorf("defaults count as set: %v", rp.Set)
	}
}

func TestLoadPerlbalFile(t *testing.T) {
	c, err := LoadPerlbal("testdata/include/b.conf", nil)
	if err == nil || err.Error() != "testdata/include/b.conf:3: Pool 'p' not found" {
		t.Fatalf("got %v, %v", c, err)
	}
	o := fakeOptions()
	var fallback []string
	o.Fallback = func(line string) ([]string, error) {
		fallback = append(fallback, line)
		return []string{"fallback"}, nil
	}
	c, err = ParseWith("x.conf", []byte("CREATE SERVICE m\nXS enable headers\nSET m.role = management\n"), o)
	if err != nil || len(fallback) != 1 || c.Service("m").Role != RoleManagement {
		t.Fatalf("fallback: %v %v", fallback, err)
	}
}

func TestTOMLIndex(t *testing.T) {
	src := "# c\n[a]\nx = \"\"\"\nmulti\nline\"\"\"\ny = [\n 1,\n 2]\n\"q.k\" = 1\nd.e = { f = 1 }\n[ b . 'c' ]\nz = 'str # not comment'\n"
	idx, _, _ := indexTOML(src)
	for path, want := range map[string]int{"a": 2, "a.x": 3, "a.y": 6, "a.q.k": 9, "a.d.e": 10, "a.d.e.f": 10, "b.c.z": 12, "nope": 0} {
		var p []string
		if path == "a.q.k" {
			p = []string{"a", "q.k"}
		} else {
			p = strings.Split(path, ".")
		}
		if got := idx.line(p...); got != want {
			t.Errorf("line(%s) = %d, want %d", path, got, want)
		}
	}
}
