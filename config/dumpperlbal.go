package config

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/plb/plb/pool"
)

// DumpPerlbal returns the model as Perlbal commands, the lines of the
// console's dumpconfig (Perlbal's layout: per pool "CREATE POOL" and its
// nodes, per service "CREATE SERVICE", role, listen, pool or docroot, the
// other parameters set explicitly, sorted, then ENABLE or DISABLE; a blank
// line after each). Lines that Perlbal would not print come only from what
// it lacks: LOAD and SERVER lines first, pool health keys, HEADER and
// plugin rules. Running the lines gives an equal model.
func (c *Config) DumpPerlbal() []string {
	var out []string
	for _, l := range c.Loaded {
		out = append(out, "LOAD "+l)
	}
	for _, e := range globalValues(&c.Global) {
		out = append(out, "SERVER "+e.key+" = "+perlbalValue(e.val))
	}
	for _, k := range slices.Sorted(maps.Keys(c.Defaults)) {
		out = append(out, "DEFAULT "+k+" = "+c.Defaults[k])
	}
	if len(out) > 0 {
		out = append(out, "")
	}
	for _, p := range c.Pools {
		out = append(out, "CREATE POOL "+p.Name)
		if p.NodesFrom != "" {
			out = append(out, "  SET nodes_from = "+p.NodesFrom)
		}
		if p.DNSServer != "" {
			out = append(out, "  SET dns_server = "+p.DNSServer)
		}
		for _, kv := range [][2]string{{"etcd_username", p.EtcdUsername}, {"etcd_password", p.EtcdPassword}, {"etcd_ca_file", p.EtcdCAFile}, {"etcd_cert_file", p.EtcdCertFile}, {"etcd_key_file", p.EtcdKeyFile}} {
			if kv[1] != "" {
				out = append(out, "  SET "+kv[0]+" = "+kv[1])
			}
		}
		if p.NodeFile != "" {
			out = append(out, "  SET nodefile = "+p.NodeFile)
		} else {
			for _, n := range p.Nodes {
				out = append(out, "  POOL ADD "+p.Name+" "+n)
			}
		}
		if p.BalanceMethod != "" && (p.BalanceMethod != BalanceIdleFirst || p.BalanceMethodSet) {
			out = append(out, "  SET balance_method = "+p.BalanceMethod)
		}
		if p.ServerRetry != 5 {
			out = append(out, "  SET server_retry = "+strconv.Itoa(p.ServerRetry))
		}
		if p.TimeoutCleanup != 15*time.Second {
			out = append(out, "  SET timeout_cleanup = "+perlbalValue(formatDuration(p.TimeoutCleanup, time.Second)))
		}
		if p.Check != "" && p.Check != CheckTCP {
			out = append(out, "  SET check = "+p.Check)
		}
		if p.CheckPath != "" {
			out = append(out, "  SET check_path = "+p.CheckPath)
		}
		if p.CheckInterval != 0 {
			out = append(out, "  SET check_interval = "+perlbalValue(formatDuration(p.CheckInterval, time.Second)))
		}
		if p.Rise != 1 {
			out = append(out, "  SET rise = "+strconv.Itoa(p.Rise))
		}
		if p.Fall != 3 {
			out = append(out, "  SET fall = "+strconv.Itoa(p.Fall))
		}
		if p.HashKey != "" {
			out = append(out, "  SET hash_key = "+p.HashKey)
		}
		if p.BalanceFactor != pool.DefaultBalanceFactor {
			out = append(out, "  SET hash_balance_factor = "+strconv.Itoa(p.BalanceFactor))
		}
		if p.SlowStart != 0 {
			out = append(out, "  SET slow_start = "+perlbalValue(formatDuration(p.SlowStart, time.Second)))
		}
		out = append(out, "")
	}
	for _, s := range c.Services {
		out = append(out, "CREATE SERVICE "+s.Name)
		out = append(out, s.dumpPerlbal()...)
		// Perlbal prints DISABLE for a disabled service, a line that fails
		// when the dump is run ("already disabled"): a service is
		// disabled until enabled, so say nothing.
		if s.Enabled {
			out = append(out, "ENABLE "+s.Name)
		}
		out = append(out, "")
	}
	return out
}

// dumpPerlbal returns a service's SET and rule lines, indented.
func (s *Service) dumpPerlbal() []string {
	var out []string
	set := func(k, v string) { out = append(out, "  SET "+k+" = "+v) }
	if s.Role != "" {
		set("role", s.Role)
	}
	if s.Listen != "" {
		set("listen", s.Listen)
	}
	if s.Pool != "" && usesPool(s.Role) {
		set("pool", s.Pool)
	}
	if s.Docroot != "" && s.Role == RoleWebServer {
		set("docroot", s.Docroot)
	}
	if len(s.Plugins) > 0 { // before the plugins' own keys
		set("plugins", strings.Join(s.Plugins, ", "))
	}
	var rows []string
	for p := range params {
		if p.head || p.noDump || !p.applies(s.Role) {
			continue
		}
		if !s.Set[p.name] {
			continue
		}
		if v := p.value(s); v != nil {
			rows = append(rows, p.name+" = "+perlbalValue(v))
		}
	}
	for k, v := range s.Extra {
		if s.Set[k] {
			rows = append(rows, k+" = "+v)
		}
	}
	slices.Sort(rows)
	for _, r := range rows {
		if k, _, _ := strings.Cut(r, " = "); strings.Contains(k, ".") {
			// "SET a.b = v" names service a: plugin and extra keys need
			// the service named.
			r = s.Name + "." + r
		}
		out = append(out, "  SET "+r)
	}
	for _, h := range s.Headers {
		if h.Insert {
			out = append(out, "  HEADER "+s.Name+" INSERT "+h.Name+": "+h.Value)
		} else {
			out = append(out, "  HEADER "+s.Name+" REMOVE "+h.Name)
		}
	}
	for _, r := range s.Vhosts {
		out = append(out, "  VHOST "+s.Name+" "+r.Pattern+" = "+r.Service)
	}
	for _, r := range s.Vpaths {
		out = append(out, "  VPATH "+s.Name+" "+r.Regex+" = "+r.Service)
	}
	if s.AccessPolicy != "" || len(s.Access) > 0 || len(s.Redirects) > 0 {
		// ACCESS and REDIRECT act on the context.
		out = append(out, "  USE "+s.Name)
	}
	if s.AccessPolicy != "" || len(s.Access) > 0 {
		if s.AccessPolicy != "" {
			out = append(out, "  ACCESS POLICY "+s.AccessPolicy)
		}
		for _, r := range s.Access {
			out = append(out, "  ACCESS "+strings.ToUpper(r.Action)+" "+r.Kind+" "+r.Value)
		}
	}
	for _, r := range s.Redirects {
		out = append(out, "  REDIRECT HOST "+r.Host+" "+r.Target)
	}
	return out
}

// perlbalValue writes a dump value in Perlbal's syntax: true as "on",
// false as "0" (Perlbal prints a false boolean as its value, 0), lists
// joined with ", ".
func perlbalValue(v any) string {
	switch v := v.(type) {
	case bool:
		if v {
			return "on"
		}
		return "0"
	case int64:
		return strconv.FormatInt(v, 10)
	case int:
		return strconv.Itoa(v)
	case []string:
		return strings.Join(v, ", ")
	case string:
		return v
	}
	return ""
}
