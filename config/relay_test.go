package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// The smtp_proxy and tcp_proxy roles in the three syntaxes.

// TestRelaySameModelEverySyntax checks that Perlbal, TOML and PLB's file
// (protocol SMTP, protocol TCP) give the same pool and service.
func TestRelaySameModelEverySyntax(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		perlbal, toml, plb   string
		role                 string
		client, server, bann time.Duration
	}{{
		name: "smtp",
		perlbal: `CREATE POOL plb_pool
  POOL plb_pool ADD 10.0.0.1:25
  POOL plb_pool ADD 10.0.0.2:25
  SET plb_pool.balance_method = least_conn
  SET plb_pool.check = smtp
CREATE SERVICE plb
  SET role = smtp_proxy
  SET listen = 192.0.2.10:25
  SET pool = plb_pool
  SET connect_timeout = 3
  SET banner_timeout = 20
  SET client_timeout = 400
  SET server_timeout = 900
ENABLE plb
`,
		toml: `[pool.plb_pool]
nodes = ["10.0.0.1:25", "10.0.0.2:25"]
balance_method = "least_conn"
check = "smtp"

[service.plb]
role = "smtp_proxy"
listen = "192.0.2.10:25"
pool = "plb_pool"
connect_timeout = "3s"
banner_timeout = 20
client_timeout = "400s"
server_timeout = "15m"
`,
		plb: `listen_ip 192.0.2.10
protocol SMTP
servers_ip 10.0.0.1 10.0.0.2
check smtp
timeout_header_client_read 40
timeout_header_client_write 50
timeout_header_server_read 20
timeout_header_server_write 3
timeout_forward_client_read 400
timeout_forward_client_write 30
timeout_forward_server_read 900
timeout_forward_server_write 700
`,
		role: RoleSMTPProxy, client: 400 * time.Second, server: 15 * time.Minute, bann: 20 * time.Second,
	}, {
		name: "tcp",
		perlbal: `CREATE POOL plb_pool
  POOL plb_pool ADD 10.0.0.1:6432
  SET plb_pool.balance_method = least_conn
CREATE SERVICE plb
  SET role = tcp_proxy
  SET listen = 0.0.0.0:5432
  SET pool = plb_pool
  SET client_timeout = 40
ENABLE plb
`,
		toml: `[pool.plb_pool]
nodes = ["10.0.0.1:6432"]
balance_method = "least_conn"

[service.plb]
role = "tcp_proxy"
listen = "0.0.0.0:5432"
pool = "plb_pool"
client_timeout = 40
`,
		plb: `listen_port 5432
protocol tcp
servers_ip 10.0.0.1
servers_port 6432
timeout_header_server_read 20
timeout_header_client_read 40
`,
		role: RoleTCPProxy, client: 40 * time.Second, server: 10 * time.Minute,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var models []*Config
			for _, in := range []struct{ file, src string }{{"a.conf", tc.perlbal}, {"a.toml", tc.toml}, {"plb.conf", tc.plb}} {
				c, err := Parse(in.file, []byte(in.src), nil)
				if err != nil {
					t.Fatalf("%s: %v", in.file, err)
				}
				models = append(models, comparable(c))
			}
			for i, syntax := range []string{"TOML", "PLB"} {
				if a, b := models[0], models[i+1]; !reflect.DeepEqual(a, b) {
					t.Errorf("%s differs from Perlbal:\n%s---\n%s\n%#v\n%#v", syntax, a.MarshalTOML(), b.MarshalTOML(), a.Services[0], b.Services[0])
				}
			}
			s := models[0].Service("plb")
			if s.Role != tc.role || s.Pool != "plb_pool" || !s.Enabled || s.ClientTimeout != tc.client ||
				s.ServerTimeout != tc.server || s.BannerTimeout != tc.bann || s.ClientIPForwarding != ForwardNone {
				t.Errorf("service: %+v", s)
			}
		})
	}
}

// TestRelayDefaults checks the defaults of the new roles, whatever the
// syntax: RFC 5321's minutes, not PLB's sample 30 s.
func TestRelayDefaults(t *testing.T) {
	for _, src := range []struct{ file, text string }{
		{"a.conf", "CREATE POOL p\nCREATE SERVICE smtp\nSET smtp.role = smtp_proxy\nSET smtp.pool = p\n" +
			"CREATE SERVICE tcp\nSET tcp.role = tcp_proxy\nSET tcp.pool = p\n"},
		{"a.toml", "[pool.p]\n[service.smtp]\nrole = \"smtp_proxy\"\npool = \"p\"\n[service.tcp]\nrole = \"tcp_proxy\"\npool = \"p\"\n"},
		{"smtp.conf", "protocol SMTP\nservers_ip 10.0.0.1\n"},
		{"tcp.conf", "protocol TCP\nlisten_port 1\nservers_port 1\nservers_ip 10.0.0.1\n"},
	} {
		c, err := Parse(src.file, []byte(src.text), nil)
		if err != nil {
			t.Fatalf("%s: %v", src.file, err)
		}
		for _, s := range c.Services {
			banner := 30 * time.Second
			if s.Role == RoleTCPProxy {
				banner = 0
			}
			if s.ClientIPForwarding != ForwardNone || s.ClientTimeout != 5*time.Minute || s.ServerTimeout != 10*time.Minute ||
				s.BannerTimeout != banner || s.SMTPHostname != "" || s.SMTPRejectEarlyTalkers || s.ConnectTimeout != 5*time.Second ||
				s.BackendTimeout != 0 || s.BufferSize != 0 || s.PersistBackend {
				t.Errorf("%s: %s defaults: %+v", src.file, s.Role, s)
			}
			if s.Pool == "" {
				t.Errorf("%s: %s lost its pool", src.file, s.Role)
			}
		}
	}
	c, err := Parse("a.conf", []byte("CREATE SERVICE rp\nSET rp.role = reverse_proxy\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Service("rp"); s.ClientIPForwarding != "" || s.ClientTimeout != 0 || s.ServerTimeout != 0 || s.BannerTimeout != 0 {
		t.Errorf("reverse_proxy has relay values: %+v", s)
	}
	// PLB's balancing: round-robin for HTTP, least_conn for the new roles.
	for proto, want := range map[string]string{"HTTP": BalanceRoundRobin, "SMTP": BalanceLeastConn} {
		c, err := Parse("plb.conf", []byte("protocol "+proto+"\nservers_ip 10.0.0.1\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Pool("plb_pool").BalanceMethod; got != want {
			t.Errorf("protocol %s: balance %s, want %s", proto, got, want)
		}
	}
}

// TestRelayErrors checks each bad value's message and place, in Perlbal
// and TOML.
func TestRelayErrors(t *testing.T) {
	perlbal := func(role, key, val string) string {
		return "CREATE POOL p\nCREATE SERVICE s\nSET s.role = " + role + "\nSET s." + key + " = " + val + "\n"
	}
	toml := func(role, key, val string) string {
		return "[pool.p]\n\n[service.s]\nrole = \"" + role + "\"\npool = \"p\"\n" + key + " = " + val + "\n"
	}
	for _, tc := range []struct{ file, src, want string }{
		{"a.conf", perlbal("smtp_proxy", "client_ip_forwarding", "proxy"),
			"a.conf:4: Value of 'client_ip_forwarding' must be one of: none, proxy_v1, proxy_v2, xclient"},
		{"a.conf", perlbal("tcp_proxy", "client_ip_forwarding", "xclient"),
			"a.conf:4: client_ip_forwarding xclient needs an smtp_proxy (XCLIENT is an SMTP command); service 's' is a tcp_proxy: use proxy_v1 or proxy_v2"},
		{"a.conf", perlbal("smtp_proxy", "client_timeout", "x"), "a.conf:4: parameter 'client_timeout' takes seconds (300) or a duration (\"5m\", \"1h30m\", \"1.5s\", \"10 minutes\")"},
		{"a.conf", perlbal("tcp_proxy", "server_timeout", "-1"), "a.conf:4: parameter 'server_timeout' takes seconds (300) or a duration (\"5m\", \"1h30m\", \"1.5s\", \"10 minutes\")"},
		{"a.conf", perlbal("smtp_proxy", "banner_timeout", "1x"), "a.conf:4: parameter 'banner_timeout' takes seconds (300) or a duration (\"5m\", \"1h30m\", \"1.5s\", \"10 minutes\")"},
		{"a.conf", perlbal("tcp_proxy", "connect_timeout", "soon"), "a.conf:4: parameter 'connect_timeout' takes seconds (300) or a duration (\"5m\", \"1h30m\", \"1.5s\", \"10 minutes\")"},
		{"a.conf", perlbal("smtp_proxy", "smtp_reject_early_talkers", "2"), "a.conf:4: Expecting boolean value for parameter 'smtp_reject_early_talkers'"},
		{"a.conf", perlbal("smtp_proxy", "smtp_hostname", "[]"), "a.conf:4: smtp_hostname must be a domain name or an address literal such as [192.0.2.1]"},
		{"a.conf", perlbal("smtp_proxy", "pool", "nope"), "a.conf:4: Pool 'nope' not found"},
		{"a.conf", perlbal("tcp_proxy", "banner_timeout", "5"), "a.conf:4: The 'banner_timeout' option can only be set on a 'smtp_proxy' service"},
		{"a.conf", perlbal("tcp_proxy", "smtp_hostname", "mx"), "a.conf:4: The 'smtp_hostname' option can only be set on a 'smtp_proxy' service"},
		{"a.conf", perlbal("reverse_proxy", "server_timeout", "5"), "a.conf:4: The 'server_timeout' option can only be set on a 'smtp_proxy' or 'tcp_proxy' service"},
		{"a.conf", perlbal("web_server", "connect_timeout", "5"), "a.conf:4: The 'connect_timeout' option can only be set on a 'reverse_proxy', 'smtp_proxy' or 'tcp_proxy' service"},
		{"a.conf", perlbal("smtp_proxy", "persist_backend", "on"), "a.conf:4: The 'persist_backend' option can only be set on a 'reverse_proxy' service"},
		{"a.conf", "CREATE POOL p\nSET p.check = smtpx\n", "a.conf:2: Unknown check 'smtpx' (tcp, http or smtp)"},
		{"a.toml", toml("tcp_proxy", "client_ip_forwarding", `"xclient"`),
			"a.toml:6: client_ip_forwarding xclient needs an smtp_proxy (XCLIENT is an SMTP command); service 's' is a tcp_proxy: use proxy_v1 or proxy_v2"},
		{"a.toml", toml("smtp_proxy", "client_ip_forwarding", `"proxy_v3"`),
			"a.toml:6: Value of 'client_ip_forwarding' must be one of: none, proxy_v1, proxy_v2, xclient"},
		{"a.toml", toml("smtp_proxy", "client_timeout", `[1]`), "a.toml:6: parameter 'client_timeout' takes seconds (300) or a duration (\"5m\", \"1h30m\", \"1.5s\", \"10 minutes\")"},
		{"a.toml", toml("smtp_proxy", "banner_timeout", `"30 parsecs"`), "a.toml:6: parameter 'banner_timeout' takes seconds (300) or a duration (\"5m\", \"1h30m\", \"1.5s\", \"10 minutes\")"},
		{"a.toml", toml("smtp_proxy", "smtp_reject_early_talkers", `"sometimes"`), "a.toml:6: Expecting boolean value for parameter 'smtp_reject_early_talkers'"},
		{"a.toml", toml("smtp_proxy", "smtp_hostname", `"mx example"`), "a.toml:6: smtp_hostname must be a domain name or an address literal such as [192.0.2.1]"},
		{"a.toml", toml("tcp_proxy", "banner_timeout", `5`), "a.toml:6: The 'banner_timeout' option can only be set on a 'smtp_proxy' service"},
		{"a.toml", "[pool.p]\ncheck = \"pop3\"\n", "a.toml:2: Unknown check 'pop3' (tcp, http or smtp)"},
		{"a.toml", "[service.s]\nrole = \"tcp_proxy\"\n", "a.toml:1: service 's': a tcp_proxy needs a pool"},
		{"plb.conf", "protocol SMTP\nservers_ip 10.0.0.1\ntimeout_forward_server_write ten\n",
			"plb.conf:3: timeout_forward_server_write: expecting seconds (300) or a duration (\"5m\")"},
		{"plb.conf", "protocol TCP\nservers_ip 10.0.0.1\nlisten_port 99\n", "plb.conf:1: protocol TCP needs servers_port (it has no default port)"},
		{"plb.conf", "servers_ip 10.0.0.1\nprotocol UDP\n", "plb.conf:2: unknown protocol 'UDP' (HTTP, SMTP or TCP)"},
	} {
		_, err := ParseWith(tc.file, []byte(tc.src), fakeOptions())
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s:\n%s\ngot  %v\nwant %s", tc.file, tc.src, err, tc.want)
		}
	}
}

// TestRelayRoleErrorMessage keeps Perlbal's message for a parameter of one
// role and lists the roles of a parameter of several.
func TestRelayRoleErrorMessage(t *testing.T) {
	for key, want := range map[string]string{
		"docroot":              "The 'docroot' option can only be set on a 'web_server' service",
		"pool":                 "The 'pool' option can only be set on a 'reverse_proxy', 'smtp_proxy' or 'tcp_proxy' service",
		"client_ip_forwarding": "The 'client_ip_forwarding' option can only be set on a 'smtp_proxy' or 'tcp_proxy' service",
	} {
		p, _ := lookupParam(key)
		if got := p.roleError().Error(); got != want {
			t.Errorf("%s: got %q, want %q", key, got, want)
		}
	}
	roles := map[string]string{}
	for _, p := range ServiceParams() {
		roles[p.Name] = p.Role
	}
	if roles["pool"] != "reverse_proxy,smtp_proxy,tcp_proxy" || roles["connect_timeout"] != "reverse_proxy,smtp_proxy,tcp_proxy" ||
		roles["client_timeout"] != "smtp_proxy,tcp_proxy" || roles["banner_timeout"] != "smtp_proxy" || roles["persist_client"] != "*" {
		t.Errorf("ServiceParams roles: %v", roles)
	}
}

// TestRelayXClientDefault: a DEFAULT of xclient serves smtp_proxy
// services; a tcp_proxy refuses it when its role applies it.
func TestRelayXClientDefault(t *testing.T) {
	in := NewInterp(New(), fakeOptions())
	execAll(t, in, "DEFAULT client_ip_forwarding = xclient", "CREATE SERVICE smtp", "SET role = smtp_proxy", "CREATE SERVICE pg")
	if got := in.Config().Service("smtp").ClientIPForwarding; got != ForwardXClient {
		t.Errorf("smtp_proxy: %q", got)
	}
	if _, err := in.Exec("SET role = tcp_proxy"); err == nil || !strings.Contains(err.Error(), "xclient needs an smtp_proxy") {
		t.Errorf("tcp_proxy: %v", err)
	}
	execAll(t, in, "DEFAULT client_ip_forwarding = proxy_v2", "SET role = tcp_proxy")
	if got := in.Config().Service("pg").ClientIPForwarding; got != ForwardProxyV2 {
		t.Errorf("tcp_proxy: %q", got)
	}
}

// TestValidateRelay checks what Validate refuses in a model built without
// the parsers (the console and the runtime edit models too).
func TestValidateRelay(t *testing.T) {
	base := func() *Config {
		c := New()
		c.File = "m.toml"
		c.Pools = []*Pool{newPool("p")}
		c.Services = []*Service{{Name: "s", Role: RoleTCPProxy, Pool: "p", Enabled: true, Line: 7}}
		return c
	}
	if err := base().Validate(); err != nil {
		t.Fatalf("valid model: %v", err)
	}
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Services[0].ClientIPForwarding = ForwardXClient },
			"m.toml:7: client_ip_forwarding xclient needs an smtp_proxy (XCLIENT is an SMTP command); service 's' is a tcp_proxy: use proxy_v1 or proxy_v2"},
		{func(c *Config) { c.Services[0].Enabled = false; c.Services[0].ClientIPForwarding = ForwardXClient },
			"m.toml:7: client_ip_forwarding xclient needs an smtp_proxy (XCLIENT is an SMTP command); service 's' is a tcp_proxy: use proxy_v1 or proxy_v2"},
		{func(c *Config) { c.Services[0].ClientIPForwarding = "proxy" },
			"m.toml:7: service 's': Value of 'client_ip_forwarding' must be one of: none, proxy_v1, proxy_v2, xclient"},
		{func(c *Config) { c.Services[0].Pool = "" }, "m.toml:7: service 's': a tcp_proxy needs a pool"},
		{func(c *Config) { c.Services[0].Role, c.Services[0].Pool = RoleSMTPProxy, "" }, "m.toml:7: service 's': an smtp_proxy needs a pool"},
		{func(c *Config) { c.Pools[0].Check = "imap" }, "m.toml: pool 'p': unknown check 'imap'"},
	} {
		c := base()
		tc.edit(c)
		if err := c.Validate(); err == nil || err.Error() != tc.want {
			t.Errorf("got %v, want %s", err, tc.want)
		}
	}
	for _, ok := range []func(*Config){
		func(c *Config) { c.Services[0].Role, c.Services[0].ClientIPForwarding = RoleSMTPProxy, ForwardXClient },
		func(c *Config) { c.Pools[0].Check = CheckSMTP },
		func(c *Config) { c.Services[0].Enabled, c.Services[0].Pool = false, "" },
	} {
		c := base()
		ok(c)
		if err := c.Validate(); err != nil {
			t.Errorf("refused: %v", err)
		}
	}
}

// TestDumpPerlbalRelay checks dumpconfig of the new roles: the pool line,
// the keys set, and that running it gives the same model.
func TestDumpPerlbalRelay(t *testing.T) {
	src := `CREATE POOL mx
  POOL mx ADD 10.0.0.1:25
  SET mx.check = smtp
CREATE SERVICE smtp
  SET role = smtp_proxy
  SET listen = 127.0.0.1:2525
  SET pool = mx
  SET client_ip_forwarding = proxy_v1
  SET smtp_hostname = [192.0.2.1]
  SET smtp_reject_early_talkers = yes
  SET banner_timeout = 1500ms
ENABLE smtp
CREATE SERVICE pg
  SET role = tcp_proxy
  SET pool = mx
  SET server_timeout = 0
`
	c, err := Parse("a.conf", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `CREATE POOL mx
  POOL ADD mx 10.0.0.1:25
  SET check = smtp

CREATE SERVICE smtp
  SET role = smtp_proxy
  SET listen = 127.0.0.1:2525
  SET pool = mx
  SET banner_timeout = 1.5s
  SET client_ip_forwarding = proxy_v1
  SET smtp_hostname = [192.0.2.1]
  SET smtp_reject_early_talkers = on
ENABLE smtp

CREATE SERVICE pg
  SET role = tcp_proxy
  SET pool = mx
  SET server_timeout = 0

`
	dump := strings.Join(c.DumpPerlbal(), "\n") + "\n"
	if dump != want {
		t.Errorf("got:\n%s\nwant:\n%s", dump, want)
	}
	c2, err := Parse("dump.conf", []byte("# perlbal\n"+dump), nil)
	if err != nil {
		t.Fatalf("dump does not parse: %v", err)
	}
	if !reflect.DeepEqual(comparable(c), comparable(c2)) {
		t.Errorf("model changed through dumpconfig:\n%s---\n%s", c.MarshalTOML(), c2.MarshalTOML())
	}
	assertRoundTrip(t, c)
	if toml := string(c.MarshalTOML()); !strings.Contains(toml, "banner_timeout = \"1.5s\"\n") ||
		!strings.Contains(toml, "client_ip_forwarding = \"proxy_v1\"\n") || !strings.Contains(toml, "check = \"smtp\"\n") {
		t.Errorf("TOML dump:\n%s", toml)
	}
	if vals := paramValues("client_ip_forwarding"); !slices.Equal(vals, []string{"none", "proxy_v1", "proxy_v2", "xclient"}) {
		t.Errorf("client_ip_forwarding values: %v", vals)
	}
}

func paramValues(name string) []string {
	for _, p := range ServiceParams() {
		if p.Name == name {
			return p.Values
		}
	}
	return nil
}
