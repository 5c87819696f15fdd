package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/plb/plb/pool"
)

// editor applies changes to a Config with Perlbal's semantics and messages.
// The Perlbal interpreter, the TOML loader and the PLB loader all edit the
// model through it, so validation and defaults live in one place.
type editor struct {
	cfg     *Config
	fs      FS
	plugins func(string) (Plugin, bool)
	names   func() []string // the plugins' names, for error messages
	warn    func(error)     // what is accepted but reported (nil: dropped)
}

// newEditor returns an editor of c with o's file system, plugins and
// warnings; o must be filled.
func newEditor(c *Config, o Options) editor {
	return editor{cfg: c, fs: o.FS, plugins: o.Plugins, names: func() []string { return pluginNames(&o) }, warn: o.Warn}
}

// pluginNames lists the plugins LOAD can find.
func (e *editor) pluginNames() []string {
	if e.names == nil {
		return nil
	}
	return e.names()
}

func (e *editor) setCtx() *setCtx { return &setCtx{cfg: e.cfg, fs: e.fs} }

func (e *editor) createService(name, file string, line int) (*Service, error) {
	if err := e.cfg.nameTaken(name); err != nil {
		return nil, err
	}
	s := &Service{Name: name, File: file, Line: line}
	e.cfg.Services = append(e.cfg.Services, s)
	return s, nil
}

func (e *editor) createPool(name, file string, line int) (*Pool, error) {
	if e.cfg.Pool(name) != nil {
		return nil, errorf("pool '%s' already exists", name)
	}
	if e.cfg.Service(name) != nil {
		return nil, errorf("service '%s' already exists", name)
	}
	p := newPool(name)
	p.File, p.Line = file, line
	e.cfg.Pools = append(e.cfg.Pools, p)
	return p, nil
}

// validRole reports whether role is a built-in role or one a LOADed
// plugin adds.
func (c *Config) validRole(role string) bool {
	switch role {
	case RoleReverseProxy, RoleWebServer, RoleManagement, RoleSelector, RoleSMTPProxy, RoleTCPProxy:
		return true
	}
	_, ok := c.PluginRole(role)
	return ok
}

// setRole sets the role and re-applies every default for it (DEFAULT values
// first, else the built-in ones): parameters set before are reset, except
// listen, and pool or docroot when the new role uses them.
func (e *editor) setRole(s *Service, role string) error {
	if !e.cfg.validRole(role) {
		return e.roleError(s.Name, role)
	}
	s.Role = role
	s.resetParams()
	// Perlbal keeps a pool or docroot the new role cannot use; plb drops it,
	// so that the model holds only what applies.
	if !usesPool(role) {
		s.Pool = ""
		delete(s.Set, "pool")
	}
	if role != RoleWebServer {
		s.Docroot = ""
		delete(s.Set, "docroot")
	}
	if role != RoleSelector {
		s.Vhosts, s.Vpaths = nil, nil
	}
	var kept []string
	for _, name := range s.Plugins {
		if pl, ok := e.plugins(name); !ok || pl.Role == "" || pl.Role == role {
			kept = append(kept, name)
		}
	}
	s.Plugins = kept
	for k := range s.Set {
		if p, ok := lookupParam(k); !ok || !p.head {
			delete(s.Set, k)
		}
	}
	s.markSet("role")
	c := e.setCtx()
	for p := range params {
		if !p.applies(role) {
			continue
		}
		if v, ok := e.cfg.Defaults[p.name]; ok {
			if err := p.assign(c, s, v); err != nil {
				return err
			}
		} else if p.def != "" {
			if err := p.assign(c, s, p.def); err != nil {
				return err
			}
		}
	}
	for _, pp := range e.loadedParams() {
		if !pp.applies(role) {
			continue
		}
		delete(s.Extra, pp.name)
		if v, ok := e.cfg.Defaults[pp.name]; ok {
			n, err := pp.normalizeExtra(pp.name, v)
			if err != nil {
				return err
			}
			s.setExtra(pp.name, n)
		}
	}
	return nil
}

// usesPool reports whether a service of role has a pool (reverse_proxy,
// smtp_proxy, tcp_proxy).
func usesPool(role string) bool {
	p := param{role: proxies} // the roles of the pool parameter
	return p.applies(role)
}

// loadedParams are the parameters added by the LOADed plugins.
func (e *editor) loadedParams() []param {
	var out []param
	for _, name := range e.cfg.Loaded {
		if pl, ok := e.plugins(name); ok {
			for _, p := range pl.Params {
				out = append(out, pluginParam(p))
			}
		}
	}
	return out
}

func (e *editor) loadedParam(key string) (param, bool) {
	for _, name := range e.cfg.Loaded {
		if pl, ok := e.plugins(name); ok {
			for _, p := range pl.Params {
				if p.Name == key {
					return pluginParam(p), true
				}
			}
		}
	}
	return param{}, false
}

// isPoolKey reports whether key is a pool parameter a service forwards to
// its pool (Perlbal forwards nodefile and balance_method).
func isPoolKey(key string) bool {
	switch key {
	case "nodefile", "balance_method", "server_retry", "timeout_cleanup",
		"check", "check_path", "check_interval", "rise", "fall",
		"hash_key", "hash_balance_factor", "slow_start", "nodes_from", "dns_server",
		"etcd_username", "etcd_password", "etcd_ca_file", "etcd_cert_file", "etcd_key_file":
		return true
	}
	return false
}

// setService is Perlbal's SET on a service, in Perlbal's order: pool keys,
// tunables, plugins, extra.*, plugin setters.
func (e *editor) setService(s *Service, key, val string) error {
	if isPoolKey(key) {
		return e.forwardToPool(s, key, val)
	}
	if key == "role" {
		return e.setRole(s, val)
	}
	if p, ok := lookupParam(key); ok {
		if !p.applies(s.Role) {
			return p.roleError()
		}
		if err := p.assign(e.setCtx(), s, val); err != nil {
			return err
		}
		switch {
		case p.noDump:
		case p.value(s) == nil:
			delete(s.Set, key) // a value the dump omits (sticky_cookie none): as if never set
		default:
			s.markSet(key)
		}
		for _, k := range p.also {
			s.markSet(k)
		}
		return nil
	}
	if p, ok := e.loadedParam(key); ok {
		if !p.applies(s.Role) {
			return p.roleError()
		}
		n, err := p.normalizeExtra(key, val)
		if err != nil {
			return err
		}
		s.setExtra(key, n)
		s.markSet(key)
		return nil
	}
	if key == "plugins" {
		return e.setPlugins(s, val)
	}
	if strings.HasPrefix(key, "extra.") && len(key) > len("extra.") {
		s.setExtra(key, val)
		s.markSet(key)
		return nil
	}
	if i := strings.LastIndexByte(key, '.'); i > 0 && i < len(key)-1 {
		if p, ok := e.pluginSetter(s, key[:i], key[i+1:]); ok {
			key = toLowerASCII(key[:i]) + key[i:]
			pp := pluginParam(p)
			n, err := pp.normalizeExtra(key, val)
			if err != nil {
				return err
			}
			s.setExtra(key, n)
			s.markSet(key)
			return nil
		}
	}
	return errorf("Unknown service parameter '%s'", key)
}

// pluginSetter finds setter key of plugin (any case) registered on s.
func (e *editor) pluginSetter(s *Service, plugin, key string) (Param, bool) {
	for _, name := range s.Plugins {
		if !equalFold(name, plugin) {
			continue
		}
		if pl, ok := e.plugins(name); ok {
			for _, p := range pl.Setters {
				if p.Name == key {
					return p, true
				}
			}
		}
	}
	return Param{}, false
}

// forwardToPool passes a pool key set on a service to its pool, creating
// "<service>_pool" when no pool was created explicitly yet (Perlbal's legacy
// auto-vivification).
func (e *editor) forwardToPool(s *Service, key, val string) error {
	if s.Pool == "" {
		if e.cfg.vivifyOff {
			return errorf("Attempt to vivify pool %s_pool but one or more pools have already been created manually.  Please set %s on a previously created pool.", s.Name, key)
		}
		name := s.Name + "_pool"
		if e.cfg.Pool(name) == nil && e.cfg.Service(name) == nil {
			if _, err := e.createPool(name, s.File, s.Line); err != nil {
				return err
			}
		}
		if e.cfg.Pool(name) != nil && usesPool(s.Role) {
			s.Pool = name
			s.markSet("pool")
		}
		if s.Pool == "" {
			return errorf("No pool defined for service")
		}
	}
	return e.setPool(e.cfg.Pool(s.Pool), key, val)
}

// setPool is SET on a pool: nodefile and balance_method as Perlbal, plus
// plb's health keys (server_retry, timeout_cleanup, check, check_path,
// check_interval, rise and fall), hash's (hash_key,
// hash_balance_factor) and slow_start.
func (e *editor) setPool(p *Pool, key, val string) error {
	switch key {
	case "slow_start":
		d, ok := parseDuration(val, time.Second)
		if !ok || d < 0 || d > 24*time.Hour {
			return errorf("slow_start takes a duration from 0 (off) to 24h, as \"30s\" or 30")
		}
		p.SlowStart = d
		return nil
	case "hash_key":
		if val == "none" || val == "" {
			p.HashKey = ""
			return nil
		}
		k, err := pool.ParseHashKey(val)
		if err != nil {
			return errorf("%s", err)
		}
		p.HashKey = k.String()
		return nil
	case "hash_balance_factor":
		n, ok := parseInt(val)
		if !ok {
			return kindError(kindInt, key)
		}
		if n != 0 && (n < 100 || n > 1000) {
			return errorf("hash_balance_factor must be 0 (unbounded) or 100 to 1000 (percent of a node's share)")
		}
		p.BalanceFactor = n
		return nil
	case "nodes_from":
		if val == "none" || val == "" {
			p.NodesFrom = ""
			return nil
		}
		if _, err := ParseNodesFrom(val); err != nil {
			return err
		}
		if p.NodeFile != "" {
			return errorf("pool '%s' has a nodefile: nodes_from and nodefile are two sources of the same nodes", p.Name)
		}
		p.NodesFrom = val
		return nil
	case "etcd_username", "etcd_password":
		v := val
		if v == "none" {
			v = ""
		}
		if key == "etcd_username" {
			p.EtcdUsername = v
		} else {
			p.EtcdPassword = v
		}
		return nil
	case "etcd_ca_file", "etcd_cert_file", "etcd_key_file":
		dst := map[string]*string{"etcd_ca_file": &p.EtcdCAFile, "etcd_cert_file": &p.EtcdCertFile, "etcd_key_file": &p.EtcdKeyFile}[key]
		if val == "none" || val == "" {
			*dst = ""
			return nil
		}
		if e.fs != nil {
			if _, err := e.fs.Stat(val); err != nil {
				return errorf("File '%s' not found for '%s'", val, key)
			}
		}
		*dst = val
		return nil
	case "dns_server":
		if val == "none" || val == "" {
			p.DNSServer = ""
			return nil
		}
		ap, ok := parseAddrPort(val)
		if !ok {
			a, err := netip.ParseAddr(strings.Trim(val, "[]"))
			if err != nil {
				return errorf("dns_server '%s': want ip or ip:port", val)
			}
			ap = netip.AddrPortFrom(a, 53)
		}
		p.DNSServer = ap.String()
		return nil
	case "nodefile":
		if p.NodesFrom != "" && val != "none" && val != "" {
			return errorf("pool '%s' has nodes_from: nodes_from and nodefile are two sources of the same nodes", p.Name)
		}
		switch val {
		case "none", "undef", "null", `""`, "''":
			p.NodeFile = "" // stop watching, keep the nodes
			return nil
		}
		if e.fs == nil {
			return errNodefileMissing(val, nil)
		}
		if _, err := e.fs.Stat(val); err != nil {
			return errNodefileMissing(val, err)
		}
		data, err := e.fs.ReadFile(val)
		if err != nil {
			return errorf("Can't read nodefile %s: %s", val, errnoText(err))
		}
		p.NodeFile = val
		var bad []error
		p.Nodes, bad = ParseNodeFile(val, data)
		if e.warn != nil {
			for _, err := range bad {
				if ce, ok := err.(*Error); ok {
					err = &Error{File: ce.File, Line: ce.Line, Err: fmt.Errorf("pool '%s': %w", p.Name, ce.Err)}
				}
				e.warn(err)
			}
		}
		return nil
	case "balance_method":
		if !knownBalanceMethod(val) {
			return errBalanceMethod(val)
		}
		p.BalanceMethod = val
		p.BalanceMethodSet = true
		return nil
	case "server_retry":
		n, ok := parseInt(val)
		if !ok {
			return kindError(kindInt, key)
		}
		if n < 1 {
			return errorf("server_retry must be at least 1")
		}
		p.ServerRetry = n
		return nil
	case "timeout_cleanup":
		d, ok := parseDuration(val, time.Second)
		if !ok {
			return kindError(kindSeconds, key)
		}
		if d <= 0 {
			return errorf("timeout_cleanup must be more than 0")
		}
		p.TimeoutCleanup = d
		return nil
	case "check":
		if v := toLowerASCII(val); slices.Contains(CheckNames(), v) {
			p.Check = v
			return nil
		}
		return errorf("Unknown check '%s' (%s)", val, orList(CheckNames()))
	case "check_path":
		switch val {
		case "none", "undef", "null", `""`, "''", "":
			p.CheckPath = ""
			return nil
		}
		if val[0] != '/' || strings.ContainsAny(val, " \t\r\n") {
			return errorf("check_path must be a path starting with '/'")
		}
		p.CheckPath = val
		return nil
	case "check_interval":
		d, ok := parseDuration(val, time.Second)
		if !ok {
			return kindError(kindSeconds, key)
		}
		p.CheckInterval = d
		return nil
	case "rise", "fall":
		n, ok := parseInt(val)
		if !ok {
			return kindError(kindInt, key)
		}
		if n < 1 {
			return errorf("%s must be at least 1", key)
		}
		if key == "rise" {
			p.Rise = n
		} else {
			p.Fall = n
		}
		return nil
	}
	return errorf("Unknown pool parameter '%s'", key)
}

// addNode is POOL ADD: de-duplicate, then append.
// addNode adds node (a spec: parseNodeSpec) at the end; a node of the
// same address, whatever its weight, goes first (Perlbal moves a node
// added again to the end).
func (p *Pool) addNode(node string) {
	p.removeNode(node)
	p.Nodes = append(p.Nodes, node)
}

// removeNode removes the node of node's address, whatever its weight.
func (p *Pool) removeNode(node string) {
	for i, n := range p.Nodes {
		if nodeAddr(n) == nodeAddr(node) {
			p.Nodes = append(p.Nodes[:i:i], p.Nodes[i+1:]...)
			if len(p.Nodes) == 0 {
				p.Nodes = nil
			}
			return
		}
	}
}

// loadPlugin is LOAD: the name must be known to the registry.
func (e *editor) loadPlugin(name string) error {
	pl, ok := e.plugins(name)
	if !ok {
		return errUnknownPlugin(name, e.pluginNames())
	}
	if e.cfg.loadedName(name) == "" {
		e.cfg.Loaded = append(e.cfg.Loaded, name)
		for _, r := range pl.Roles {
			e.cfg.roles = append(e.cfg.roles, pluginRole{role: r, plugin: name})
		}
	}
	return nil
}

// setPlugins is SET plugins = A, B (or none): the registered list is
// replaced. Unlike Perlbal, which reports and skips a plugin not loaded, the
// whole command fails.
func (e *editor) setPlugins(s *Service, val string) error {
	var list []string
	for _, name := range splitList(val) {
		if name == "none" {
			continue
		}
		loaded := e.cfg.loadedName(name)
		if loaded == "" {
			// Perlbal's message, then what to do: LOAD a plugin plb has,
			// or pick one of those it has.
			hint := "LOAD " + name + " first"
			if names := e.pluginNames(); !containsFold(names, name) {
				hint = "plb has " + andList(names)
			}
			return errorf("Plugin %s not loaded; not registered for %s. (%s)", toLowerASCII(name), s.Name, hint)
		}
		if containsFold(list, loaded) {
			continue
		}
		if pl, ok := e.plugins(loaded); ok && pl.Role != "" && s.Role != pl.Role {
			short := strings.TrimSuffix(toLowerASCII(pl.Name), "s")
			return errorf("You can't load the %s plugin on a service not of role %s.", short, pl.Role)
		}
		list = append(list, loaded)
	}
	s.Plugins = list
	return nil
}

func containsFold(list []string, s string) bool {
	for _, l := range list {
		if equalFold(l, s) {
			return true
		}
	}
	return false
}

// addHeader is HEADER <svc> INSERT|REMOVE.
func addHeader(s *Service, insert bool, name, val string, hasVal bool) error {
	if name == "" {
		return errorf("no header provided")
	}
	if insert && (!hasVal || val == "") {
		return errorf("no value provided")
	}
	if !insert {
		val = ""
	}
	s.Headers = append(s.Headers, HeaderRule{Insert: insert, Name: name, Value: val})
	return nil
}

// errnoText is the system error text of err, capitalized as Perl's $!.
func errnoText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	t := err.Error()
	if t != "" && 'a' <= t[0] && t[0] <= 'z' {
		t = string(t[0]-'a'+'A') + t[1:]
	}
	return t
}

// unloadPlugin is UNLOAD: the plugin leaves the LOADed list and every
// service's registered list (Perlbal's plugins unregister themselves).
func (e *editor) unloadPlugin(name string) {
	c := e.cfg
	c.Loaded = removeFold(c.Loaded, name)
	c.roles = slices.DeleteFunc(c.roles, func(r pluginRole) bool { return equalFold(r.plugin, name) })
	if len(c.roles) == 0 {
		c.roles = nil
	}
	for _, s := range c.Services {
		s.Plugins = removeFold(s.Plugins, name)
	}
}

func removeFold(list []string, name string) []string {
	out := list[:0:0]
	for _, l := range list {
		if !equalFold(l, name) {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// setDefault is DEFAULT key = value. Unlike Perlbal, which ignores a
// DEFAULT for a key it does not know, the key must be a service parameter
// (built in, or of a LOADed plugin) other than listen, pool and docroot, and
// the value is checked at once. Services configured earlier keep
// their values: those that now differ from the defaults are marked set, so
// that dumps keep them.
func (e *editor) setDefault(key, val string) error {
	p, ok := lookupParam(key)
	plugin := false
	if !ok {
		if p, ok = e.loadedParam(key); !ok {
			return errorf("Unknown service parameter '%s'", key)
		}
		plugin = true
	}
	if p.head {
		return errorf("DEFAULT is not supported for '%s'", key)
	}
	// Perlbal checks the value only when a role applies it (and crashes on
	// a bad one); plb checks it now.
	if plugin {
		if _, err := p.normalizeExtra(key, val); err != nil {
			return err
		}
	} else if err := p.assign(e.setCtx(), &Service{Name: "DEFAULT"}, val); err != nil {
		return err
	}
	c := e.cfg
	if c.Defaults == nil {
		c.Defaults = make(map[string]string)
	}
	c.Defaults[key] = val
	for _, s := range c.Services {
		if s.Role == "" || !p.applies(s.Role) {
			continue
		}
		if plugin {
			cur, ok := s.Extra[key]
			if !ok {
				cur = p.def
			}
			if n, err := p.normalizeExtra(key, val); err == nil && n != cur && !s.Set[key] {
				s.setExtra(key, cur)
				s.markSet(key)
			}
			continue
		}
		// What a re-parse would give this service: the new default.
		x := *s
		if p.assign(e.setCtx(), &x, val) != nil {
			continue // reported when a role applies it
		}
		keys := []string{key}
		if p.noDump {
			keys = p.also
		}
		for _, k := range keys {
			q, _ := lookupParam(k)
			if !s.Set[k] && !reflect.DeepEqual(q.value(s), q.value(&x)) {
				s.markSet(k)
			}
		}
	}
	return nil
}
