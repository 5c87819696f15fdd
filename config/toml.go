package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/plb/plb/pool"
)

// The TOML syntax:
//
//	[global]            workers, log_level, log_file, pidfile, user, group,
//	                    chroot_dir, max_clients, backlog, max_connections, shutdown_grace,
//	                    aio_mode, other SERVER keys; load = ["Include", ...]
//	[defaults]          key = value: Perlbal's DEFAULT
//	[pool.NAME]         nodes = ["ip:port [weight=N]", ...], nodefile, balance_method,
//	                    server_retry, timeout_cleanup, check (tcp, http or
//	                    smtp), check_path, check_interval, rise, fall
//	[service.NAME]      role (reverse_proxy, web_server, management,
//	                    selector, smtp_proxy, tcp_proxy or a plugin's),
//	                    listen, enabled (default true), plugins = [...],
//	                    every SET key of Perlbal with a TOML value, and
//	                    headers = ["insert Name: value", "remove Name"]
//	                    vhosts = ["*.example.com = site"]   (selector)
//	                    vpaths = ["^/static/ = files"]      (selector)
//	                    access_policy = "deny"
//	                    access = ["allow ip 10.0.0.1", "deny netmask 10.0.0.0/8",
//	                              "queue_low ip 10.0.0.2"]
//	                    redirects = ["example.com www.example.com"]
//	                    "extra.key" = "...", "<plugin>.<key>" = ...
//
// Durations are integer seconds (latency: milliseconds) or Go durations
// ("30s", "500ms"); sizes are integer bytes or "256k"; lists are arrays of
// strings. A service's role applies first, then its plugins, then the other
// keys in file order. Plugins named in a service's plugins list are LOADed
// implicitly. Names of pools and services are letters, digits and "_".

func parseTOML(name string, data []byte, o Options) (*Config, error) {
	idx, line, ok := indexTOML(string(data))
	if !ok {
		return nil, &Error{File: name, Line: line, Err: errorf("too deeply nested for a plb configuration")}
	}
	var m map[string]any
	md, err := toml.Decode(string(data), &m)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			msg := pe.Error()
			if p := fmt.Sprintf("toml: line %d", pe.Position.Line); strings.HasPrefix(msg, p) {
				msg = "toml" + msg[len(p):]
			}
			return nil, &Error{File: name, Line: pe.Position.Line, Err: errors.New(msg)}
		}
		return nil, &Error{File: name, Err: err}
	}
	c := New()
	c.File = name
	t := &tomlLoader{
		ed:   newEditor(c, o),
		file: name,
		idx:  idx,
		keys: md.Keys(),
		root: m,
	}
	if err := t.load(); err != nil {
		return nil, err
	}
	return c, nil
}

type tomlLoader struct {
	ed       editor
	file     string
	idx      tomlIndex
	keys     []toml.Key
	root     map[string]any
	deferred []deferredKey
}

// deferredKey is a service key applied once every service exists.
type deferredKey struct {
	svc *Service
	key string
	val any
}

func (t *tomlLoader) errAt(err error, path ...string) error {
	return at(t.file, t.idx.line(path...), err)
}

// order returns the keys of the table at prefix in file order.
func (t *tomlLoader) order(table map[string]any, prefix ...string) []string {
	var out []string
	seen := map[string]bool{}
	for _, k := range t.keys {
		if len(k) <= len(prefix) || !slices.Equal(k[:len(prefix)], prefix) {
			continue
		}
		n := k[len(prefix)]
		if _, ok := table[n]; ok && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(table)) {
		if !seen[n] {
			out = append(out, n)
		}
	}
	return out
}

func (t *tomlLoader) table(v any, path ...string) (map[string]any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, t.errAt(errorf("%s must be a table", strings.Join(path, ".")), path...)
	}
	return m, nil
}

func (t *tomlLoader) load() error {
	sections := map[string]map[string]any{}
	for _, k := range t.order(t.root) {
		switch k {
		case "global", "defaults", "pool", "service":
			m, err := t.table(t.root[k], k)
			if err != nil {
				return err
			}
			sections[k] = m
		default:
			return t.errAt(errorf("unknown key '%s'", k), k)
		}
	}
	if err := t.global(sections["global"]); err != nil {
		return err
	}
	if err := t.implicitLoads(sections["service"]); err != nil {
		return err
	}
	if err := t.defaults(sections["defaults"]); err != nil {
		return err
	}
	for _, name := range t.order(sections["pool"], "pool") {
		if err := t.pool(name, sections["pool"][name]); err != nil {
			return err
		}
	}
	for _, name := range t.order(sections["service"], "service") {
		if err := t.service(name, sections["service"][name]); err != nil {
			return err
		}
	}
	// default_service may name a service defined further down.
	for _, d := range t.deferred {
		if err := t.serviceKey(d.svc, d.key, d.val); err != nil {
			return t.errAt(err, "service", d.svc.Name, d.key)
		}
	}
	return nil
}

func isGlobalKey(k string) bool {
	switch k {
	case "workers", "log_level", "log_file", "pidfile", "user", "group", "chroot_dir",
		"max_clients", "backlog", "max_connections", "shutdown_grace", "aio_mode", "aio_threads",
		"nice_level", "track_obj", "crash_backtrace":
		return true
	}
	return isReproxyKey(k)
}

func (t *tomlLoader) global(m map[string]any) error {
	for _, k := range t.order(m, "global") {
		path := []string{"global", k}
		if k == "load" {
			names, err := stringList(m[k])
			if err != nil {
				return t.errAt(errorf("load must be an array of plugin names"), path...)
			}
			for _, n := range names {
				if err := t.ed.loadPlugin(n); err != nil {
					return t.errAt(err, path...)
				}
			}
			continue
		}
		if !isGlobalKey(k) {
			return t.errAt(errorf("unknown key 'global.%s'", k), path...)
		}
		v, ok := scalarString(m[k])
		if !ok {
			return t.errAt(errorf("global.%s must be a string or a number", k), path...)
		}
		if err := setGlobal(&t.ed.cfg.Global, k, v); err != nil {
			return t.errAt(err, path...)
		}
		t.ed.cfg.Global.setPlace(k, t.file, t.idx.line(path...))
	}
	return nil
}

// implicitLoads LOADs the plugins that services register, so that their
// parameters are known before defaults and services are read.
func (t *tomlLoader) implicitLoads(services map[string]any) error {
	for _, name := range t.order(services, "service") {
		m, ok := services[name].(map[string]any)
		if !ok {
			continue
		}
		if v, ok := m["plugins"]; ok {
			names, err := stringList(v)
			if err != nil {
				return t.errAt(errorf("plugins must be an array of plugin names"), "service", name, "plugins")
			}
			for _, n := range names {
				if n == "none" || t.ed.cfg.loadedName(n) != "" {
					continue
				}
				if err := t.ed.loadPlugin(n); err != nil {
					return t.errAt(err, "service", name, "plugins")
				}
			}
		}
	}
	return nil
}

func (t *tomlLoader) defaults(m map[string]any) error {
	for _, k := range t.order(m, "defaults") {
		path := []string{"defaults", k}
		kd, ok := t.paramKind(k)
		if !ok {
			return t.errAt(errorf("Unknown service parameter '%s'", k), path...)
		}
		v, err := tomlString(kd, k, m[k])
		if err == nil {
			err = t.ed.setDefault(k, v)
		}
		if err != nil {
			return t.errAt(err, path...)
		}
	}
	return nil
}

// paramKind is the kind of a built-in or LOADed plugin parameter.
func (t *tomlLoader) paramKind(k string) (kind, bool) {
	if p, ok := lookupParam(k); ok {
		return p.kind, true
	}
	if p, ok := t.ed.loadedParam(k); ok {
		return p.kind, true
	}
	return 0, false
}

func (t *tomlLoader) pool(name string, v any) error {
	base := []string{"pool", name}
	m, err := t.table(v, base...)
	if err != nil {
		return err
	}
	if !isWordString(name) {
		return t.errAt(errorf("invalid pool name '%s' (letters, digits and _ only)", name), base...)
	}
	p, err := t.ed.createPool(name, t.file, t.idx.line(base...))
	if err != nil {
		return t.errAt(err, base...)
	}
	t.ed.cfg.vivifyOff = true
	if nv, ok := m["nodes"]; ok {
		nodes, err := stringList(nv)
		if err != nil {
			return t.errAt(errorf("nodes must be an array of \"ip:port\" strings"), "pool", name, "nodes")
		}
		for _, n := range nodes {
			node, ok := parseNodeSpec(n)
			if !ok {
				return t.errAt(errorf("invalid node '%s' (expected ip[:port], optionally weight=0 to %d)", n, pool.MaxWeight), "pool", name, "nodes")
			}
			p.addNode(node)
		}
	}
	for _, k := range t.order(m, base...) {
		if k == "nodes" {
			continue
		}
		kd := kindString
		switch k {
		case "server_retry", "rise", "fall", "hash_balance_factor":
			kd = kindInt
		case "timeout_cleanup", "check_interval", "slow_start":
			kd = kindSeconds
		}
		s, err := tomlString(kd, k, m[k])
		if err == nil {
			err = t.ed.setPool(p, k, s)
		}
		if err != nil {
			return t.errAt(err, "pool", name, k)
		}
	}
	return nil
}

func (t *tomlLoader) service(name string, v any) error {
	base := []string{"service", name}
	m, err := t.table(v, base...)
	if err != nil {
		return err
	}
	if !isWordString(name) {
		return t.errAt(errorf("invalid service name '%s' (letters, digits and _ only)", name), base...)
	}
	s, err := t.ed.createService(name, t.file, t.idx.line(base...))
	if err != nil {
		return t.errAt(err, base...)
	}
	s.Enabled = true
	if rv, ok := m["role"]; ok {
		role, ok := rv.(string)
		if !ok {
			return t.errAt(errorf("role must be a string"), "service", name, "role")
		}
		if err := t.ed.setService(s, "role", role); err != nil {
			return t.errAt(err, "service", name, "role")
		}
	}
	if pv, ok := m["plugins"]; ok {
		names, _ := stringList(pv)
		if err := t.ed.setPlugins(s, strings.Join(names, ", ")); err != nil {
			return t.errAt(err, "service", name, "plugins")
		}
	}
	for _, k := range t.order(m, base...) {
		if k == "role" || k == "plugins" {
			continue
		}
		if k == "default_service" {
			t.deferred = append(t.deferred, deferredKey{s, k, m[k]})
			continue
		}
		path := append(slices.Clone(base), k)
		if err := t.serviceKey(s, k, m[k]); err != nil {
			return t.errAt(err, path...)
		}
	}
	return nil
}

func (t *tomlLoader) serviceKey(s *Service, k string, v any) error {
	switch k {
	case "enabled":
		str, err := tomlString(kindBool, k, v)
		if err != nil {
			return err
		}
		b, ok := parseBool(str)
		if !ok {
			return kindError(kindBool, k)
		}
		s.Enabled = b
		return nil
	case "access_policy":
		str, ok := v.(string)
		if !ok {
			return errorf("access_policy must be \"allow\" or \"deny\"")
		}
		return accessRule(s, []string{"policy", str})
	case "headers", "vhosts", "vpaths", "access", "redirects":
		list, err := stringList(v)
		if err != nil {
			return errorf("%s must be an array of strings", k)
		}
		for _, r := range list {
			if err := rule(s, k, r); err != nil {
				return err
			}
		}
		return nil
	}
	if sub, ok := v.(map[string]any); ok {
		for _, sk := range slices.Sorted(maps.Keys(sub)) {
			if err := t.serviceKey(s, k+"."+sk, sub[sk]); err != nil {
				return err
			}
		}
		return nil
	}
	str, err := tomlString(t.serviceKind(s, k), k, v)
	if err != nil {
		return err
	}
	return t.ed.setService(s, k, str)
}

// serviceKind is the kind of a service key, for converting its TOML value.
func (t *tomlLoader) serviceKind(s *Service, k string) kind {
	switch k {
	case "server_retry", "rise", "fall":
		return kindInt
	case "timeout_cleanup", "check_interval":
		return kindSeconds
	}
	if kd, ok := t.paramKind(k); ok {
		return kd
	}
	if i := strings.LastIndexByte(k, '.'); i > 0 && !strings.HasPrefix(k, "extra.") {
		if p, ok := t.ed.pluginSetter(s, k[:i], k[i+1:]); ok {
			return kindOf(p.Type)
		}
	}
	return kindString
}

// rule applies one string of a TOML rule list.
func rule(s *Service, list, r string) error {
	switch list {
	case "headers":
		verb, rest, _ := strings.Cut(trimSpace(r), " ")
		rest = trimSpace(rest)
		switch {
		case equalFold(verb, "insert"):
			name, val, has := splitHeader(rest)
			return addHeader(s, true, name, val, has)
		case equalFold(verb, "remove") && rest != "":
			return addHeader(s, false, rest, "", false)
		}
		return errorf("header rule must read \"insert Name: value\" or \"remove Name\": %q", r)
	case "vhosts", "vpaths":
		pattern, target, ok := vhostFields(r)
		if !ok || pattern == "" || !isWordString(target) || strings.ContainsAny(pattern, " \t") {
			return errorf("%s rule must read \"pattern = service\": %q", list, r)
		}
		if s.Role != RoleSelector {
			return errorf("Service '%s' is not a selector service", s.Name)
		}
		if list == "vpaths" {
			return addVpath(s, pattern, target)
		}
		return addVhost(s, pattern, target)
	case "access":
		f := fields(r)
		if len(f) == 0 || len(f) > 3 || f[0] == "reset" || f[0] == "policy" {
			return errorf("access rule must read \"allow|deny|queue_low ip|netmask <value>\": %q", r)
		}
		return accessRule(s, f)
	case "redirects":
		f := fields(r)
		if len(f) != 2 {
			return errorf("redirect rule must read \"host target\": %q", r)
		}
		addRedirect(s, f[0], f[1])
	}
	return nil
}

// vhostFields splits "pattern = service" at the last "=".
func vhostFields(r string) (string, string, bool) {
	i := strings.LastIndexByte(r, '=')
	if i < 0 {
		return "", "", false
	}
	return trimSpace(r[:i]), trimSpace(r[i+1:]), true
}

// tomlString converts a TOML value to the Perlbal-syntax string the setters
// take, checking its TOML type against the parameter's kind.
func tomlString(k kind, key string, v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		if k == kindBool || k == kindString {
			if x {
				return "1", nil
			}
			return "0", nil
		}
	case int64:
		switch k {
		case kindInt, kindSize, kindSeconds, kindMillis, kindString, kindList:
			return strconv.FormatInt(x, 10), nil
		case kindBool:
			if x == 0 || x == 1 {
				return strconv.FormatInt(x, 10), nil
			}
		}
	case float64:
		if k == kindSeconds || k == kindMillis {
			return strconv.FormatFloat(x, 'f', -1, 64), nil // 1.5: seconds
		}
	case []any:
		if k == kindList {
			parts := make([]string, 0, len(x))
			for _, e := range x {
				s, ok := scalarString(e)
				if !ok {
					return "", kindError(k, key)
				}
				parts = append(parts, s)
			}
			return strings.Join(parts, ", "), nil
		}
	}
	return "", kindError(k, key)
}

// scalarString formats a TOML string, integer, float or bool.
func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case int64:
		return strconv.FormatInt(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		if x {
			return "1", true
		}
		return "0", true
	}
	return "", false
}

// stringList accepts an array of strings or one string.
func stringList(v any) ([]string, error) {
	switch x := v.(type) {
	case string:
		return []string{x}, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, errorf("expected strings")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, errorf("expected an array of strings")
}
