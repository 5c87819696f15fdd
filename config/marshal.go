package config

import (
	"bytes"
	"maps"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/plb/plb/pool"
)

// MarshalTOML returns the model as normalized TOML in a stable order: the
// global settings that differ from their defaults, [defaults], the pools,
// then the services with role, listen, enabled, pool and docroot first and
// the parameters set explicitly after. Parsing the output gives an equal
// model (plb -n prints it). It is long because it writes every section
// in one fixed order, which the golden tests compare byte for byte.
func (c *Config) MarshalTOML() []byte {
	var w tomlWriter
	if g := globalValues(&c.Global); len(g) > 0 || len(c.Loaded) > 0 {
		w.table("global")
		for _, e := range g {
			w.kv(e.key, e.val)
		}
		if len(c.Loaded) > 0 {
			w.kv("load", c.Loaded)
		}
	}
	if len(c.Defaults) > 0 {
		w.table("defaults")
		for _, k := range slices.Sorted(maps.Keys(c.Defaults)) {
			w.kv(k, c.Defaults[k])
		}
	}
	for _, p := range c.Pools {
		w.table("pool." + tomlKey(p.Name))
		if p.NodeFile != "" {
			w.kv("nodefile", p.NodeFile)
			w.comment("nodes read from the nodefile: ", p.Nodes)
		} else {
			w.kv("nodes", p.Nodes)
		}
		if p.NodesFrom != "" {
			w.kv("nodes_from", p.NodesFrom)
		}
		if p.DNSServer != "" {
			w.kv("dns_server", p.DNSServer)
		}
		for _, kv := range [][2]string{{"etcd_username", p.EtcdUsername}, {"etcd_password", p.EtcdPassword}, {"etcd_ca_file", p.EtcdCAFile}, {"etcd_cert_file", p.EtcdCertFile}, {"etcd_key_file", p.EtcdKeyFile}} {
			if kv[1] != "" {
				w.kv(kv[0], kv[1])
			}
		}
		if p.BalanceMethod != BalanceIdleFirst || p.BalanceMethodSet {
			w.kv("balance_method", p.BalanceMethod)
		}
		if p.ServerRetry != 5 {
			w.kv("server_retry", int64(p.ServerRetry))
		}
		if p.TimeoutCleanup != 15e9 {
			w.kv("timeout_cleanup", formatDuration(p.TimeoutCleanup, 1e9))
		}
		if p.Check != CheckTCP {
			w.kv("check", p.Check)
		}
		if p.CheckPath != "" {
			w.kv("check_path", p.CheckPath)
		}
		if p.CheckInterval != 0 {
			w.kv("check_interval", formatDuration(p.CheckInterval, 1e9))
		}
		if p.Rise != 1 {
			w.kv("rise", int64(p.Rise))
		}
		if p.Fall != 3 {
			w.kv("fall", int64(p.Fall))
		}
		if p.HashKey != "" {
			w.kv("hash_key", p.HashKey)
		}
		if p.BalanceFactor != pool.DefaultBalanceFactor {
			w.kv("hash_balance_factor", int64(p.BalanceFactor))
		}
		if p.SlowStart != 0 {
			w.kv("slow_start", formatDuration(p.SlowStart, 1e9))
		}
	}
	for _, s := range c.Services {
		w.table("service." + tomlKey(s.Name))
		if s.Role != "" {
			w.kv("role", s.Role)
		}
		if s.Listen != "" {
			w.kv("listen", s.Listen)
		}
		w.kv("enabled", s.Enabled)
		if s.Pool != "" {
			w.kv("pool", s.Pool)
		}
		if s.Docroot != "" {
			w.kv("docroot", s.Docroot)
		}
		if len(s.Plugins) > 0 {
			w.kv("plugins", s.Plugins)
		}
		for p := range params {
			if p.head || p.noDump || !s.Set[p.name] {
				continue
			}
			if v := p.value(s); v != nil {
				w.kv(p.name, v)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(s.Extra)) {
			if s.Set[k] {
				w.kv(k, s.Extra[k])
			}
		}
		if len(s.Headers) > 0 {
			var l []string
			for _, h := range s.Headers {
				if h.Insert {
					l = append(l, "insert "+h.Name+": "+h.Value)
				} else {
					l = append(l, "remove "+h.Name)
				}
			}
			w.kv("headers", l)
		}
		if len(s.Vhosts) > 0 {
			var l []string
			for _, r := range s.Vhosts {
				l = append(l, r.Pattern+" = "+r.Service)
			}
			w.kv("vhosts", l)
		}
		if len(s.Vpaths) > 0 {
			var l []string
			for _, r := range s.Vpaths {
				l = append(l, r.Regex+" = "+r.Service)
			}
			w.kv("vpaths", l)
		}
		if s.AccessPolicy != "" {
			w.kv("access_policy", s.AccessPolicy)
		}
		if len(s.Access) > 0 {
			var l []string
			for _, r := range s.Access {
				l = append(l, r.Action+" "+r.Kind+" "+r.Value)
			}
			w.kv("access", l)
		}
		if len(s.Redirects) > 0 {
			var l []string
			for _, r := range s.Redirects {
				l = append(l, r.Host+" "+r.Target)
			}
			w.kv("redirects", l)
		}
	}
	return w.b.Bytes()
}

type tomlWriter struct{ b bytes.Buffer }

func (w *tomlWriter) table(name string) {
	if w.b.Len() > 0 {
		w.b.WriteByte('\n')
	}
	w.b.WriteString("[" + name + "]\n")
}

func (w *tomlWriter) kv(key string, v any) {
	w.b.WriteString(tomlKey(key))
	w.b.WriteString(" = ")
	switch x := v.(type) {
	case bool:
		w.b.WriteString(strconv.FormatBool(x))
	case int64:
		w.b.WriteString(strconv.FormatInt(x, 10))
	case string:
		w.b.WriteString(tomlQuote(x))
	case []string:
		w.b.WriteByte('[')
		for i, s := range x {
			if i > 0 {
				w.b.WriteString(", ")
			}
			w.b.WriteString(tomlQuote(s))
		}
		w.b.WriteByte(']')
	}
	w.b.WriteByte('\n')
}

func (w *tomlWriter) comment(prefix string, list []string) {
	w.b.WriteString("# " + prefix)
	for i, s := range list {
		if i > 0 {
			w.b.WriteString(", ")
		}
		w.b.WriteString(s)
	}
	w.b.WriteByte('\n')
}

// tomlKey writes a bare key when it can, else a quoted one.
func tomlKey(k string) string {
	if k == "" {
		return `""`
	}
	for i := 0; i < len(k); i++ {
		if !isBareKey(k[i]) {
			return tomlQuote(k)
		}
	}
	return k
}

// tomlQuote writes a TOML basic string. Invalid UTF-8 becomes U+FFFD.
func tomlQuote(s string) string {
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\t':
			b = append(b, `\t`...)
		case r == '\n':
			b = append(b, `\n`...)
		case r == '\r':
			b = append(b, `\r`...)
		case r < 0x20 || r == 0x7f:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[r>>4], "0123456789abcdef"[r&15])
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return string(append(b, '"'))
}
