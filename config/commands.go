package config

import (
	"strings"

	"github.com/plb/plb/pool"
)

// The configuration commands of reference/perlbal.md §1.2. Each parses the
// processed line the way Perlbal's regex does and answers with Perlbal's
// messages.

// create: CREATE SERVICE|POOL <name>.
func (in *Interp) create(cmd string) error {
	w := words(cmd)
	if len(w) != 3 || (w[1] != "service" && w[1] != "pool") || !isWordString(w[2]) {
		return usage("usage: CREATE {service|pool} <name>", "create")
	}
	var err error
	if w[1] == "service" {
		_, err = in.ed.createService(w[2], in.file, in.lineNo)
	} else {
		_, err = in.ed.createPool(w[2], in.file, in.lineNo)
		if err == nil {
			in.ed.cfg.vivifyOff = true
		}
	}
	if err != nil {
		return err
	}
	in.context = w[2]
	return nil
}

// use: USE <name>.
func (in *Interp) use(cmd string) error {
	w := words(cmd)
	if len(w) != 2 || !isWordString(w[1]) {
		return usage("usage: USE <service_or_pool_name>", "use")
	}
	if in.ed.cfg.Service(w[1]) == nil && in.ed.cfg.Pool(w[1]) == nil {
		return errorf("Non-existent pool or service '%s'", w[1])
	}
	in.context = w[1]
	return nil
}

// splitAssign splits "<lhs> ?= ?<value>" at the first "=".
func splitAssign(rest string) (lhs, val string, ok bool) {
	eq := strings.IndexByte(rest, '=')
	if eq < 0 {
		return "", "", false
	}
	lhs, val = rest[:eq], rest[eq+1:]
	lhs = strings.TrimSuffix(lhs, " ")
	val = strings.TrimPrefix(val, " ")
	return lhs, val, lhs != "" && val != ""
}

// set: SET [<name>(.| )]<key> = <value>.
func (in *Interp) set(cmd string) error {
	const u = "usage: SET [<service>] <param> = <value>"
	rest, ok := strings.CutPrefix(cmd, "set ")
	if !ok {
		return usage(u, "set")
	}
	lhs, val, ok := splitAssign(rest)
	if !ok {
		return usage(u, "set")
	}
	name, key, ok := splitSetTarget(lhs)
	if !ok {
		return usage(u, "set")
	}
	if name == "" {
		name = in.context
	}
	if name == "" {
		return errorf("omitted service/pool name not implied from context")
	}
	if s := in.ed.cfg.Service(name); s != nil {
		return in.ed.setService(s, key, val)
	}
	if p := in.ed.cfg.Pool(name); p != nil {
		return in.ed.setPool(p, key, val)
	}
	return errorf("service/pool '%s' does not exist", name)
}

// splitSetTarget matches (?:(\w+)[. ])?([\w.]+) against lhs.
func splitSetTarget(lhs string) (name, key string, ok bool) {
	if i := strings.IndexByte(lhs, ' '); i >= 0 {
		name, key = lhs[:i], lhs[i+1:]
		return name, key, isWordString(name) && isKey(key)
	}
	if !isKey(lhs) {
		return "", "", false
	}
	for i := 0; i < len(lhs); i++ {
		if !isWord(lhs[i]) {
			if i > 0 && i+1 < len(lhs) {
				return lhs[:i], lhs[i+1:], true
			}
			break
		}
	}
	return "", lhs, true
}

// isKey matches [\w.]+.
func isKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isWord(s[i]) && s[i] != '.' {
			return false
		}
	}
	return true
}

// defaultCmd: DEFAULT <key> = <value>, applied when a role is set later.
func (in *Interp) defaultCmd(cmd string) error {
	const u = "usage: DEFAULT <param> = <value>"
	rest, ok := strings.CutPrefix(cmd, "default ")
	if !ok {
		return usage(u, "default")
	}
	key, val, ok := splitAssign(rest)
	if !ok || !isWordString(key) {
		return usage(u, "default")
	}
	return in.ed.setDefault(key, val)
}

// pool: POOL <name> ADD|REMOVE <ip>[:port] [weight=N], either word
// order (the weight is plb's; ADD of a node already there sets its
// weight).
func (in *Interp) pool(cmd string) error {
	w := words(cmd)
	if len(w) != 4 && len(w) != 5 || !isWordString(w[1]) || !isWordString(w[2]) {
		return usage("", "pool")
	}
	node, ok := parseNodeSpec(strings.Join(w[3:], " "))
	if !ok {
		if _, addrOK := parseNode(w[3]); addrOK && len(w) == 5 {
			return errorf("Invalid node weight '%s' (weight=0 to %d; 0 drains the node)", w[4], pool.MaxWeight)
		}
		return usage("", "pool")
	}
	verb, name := w[1], w[2]
	if name == "add" || name == "remove" {
		verb, name = name, verb
	}
	if verb != "add" && verb != "remove" {
		return errorf("Invalid command:  must be 'add' or 'remove'")
	}
	p := in.ed.cfg.Pool(name)
	if p == nil {
		return errorf("Pool '%s' not found", name)
	}
	if verb == "add" {
		p.addNode(node)
	} else {
		p.removeNode(node)
	}
	return nil
}

// enable: ENABLE|DISABLE <service>. Only the model changes; the runtime
// starts or stops the listener.
func (in *Interp) enable(cmd string) error {
	w := words(cmd)
	if len(w) != 2 || !isWordString(w[1]) {
		return usage("Usage: {ENABLE|DISABLE} <service>", w[0])
	}
	s := in.ed.cfg.Service(w[1])
	if s == nil {
		return in.ed.cfg.noService(w[1])
	}
	if w[0] == "enable" {
		if s.Enabled {
			return errorf("service %s is already enabled", s.Name)
		}
		s.Enabled = true
		return nil
	}
	if !s.Enabled {
		return errorf("service %s is already disabled", s.Name)
	}
	if s.Role == RoleManagement {
		return errorf("can't disable management service")
	}
	s.Enabled = false
	return nil
}

// header: HEADER <svc> INSERT|REMOVE <name>[: <value>].
func (in *Interp) header(cmd string) error {
	const u = "Usage: HEADER <service> {INSERT|REMOVE} <header>[: <value>]"
	f := fields(cmd)
	if len(f) < 4 || !equalFold(f[0], "header") || !isWordString(f[1]) {
		return usage(u, "header")
	}
	insert := equalFold(f[2], "insert")
	if !insert && !equalFold(f[2], "remove") {
		return usage(u, "header")
	}
	// The rest of the line after the action word, spacing kept.
	rest := cmd
	for range 3 {
		rest = strings.TrimLeftFunc(rest, func(r rune) bool { return r < 0x80 && isSpace(byte(r)) })
		i := strings.IndexFunc(rest, func(r rune) bool { return r < 0x80 && isSpace(byte(r)) })
		rest = rest[i:]
	}
	rest = trimSpace(rest)
	name, val, hasVal := splitHeader(rest)
	s := in.ed.cfg.Service(f[1])
	if s == nil {
		return errorf("service '%s' does not exist", f[1])
	}
	return addHeader(s, insert, name, val, hasVal)
}

// splitHeader matches (.+?)(?:\s*:\s*(.+))?$: the name is the shortest
// prefix followed by a colon and a non-empty value.
func splitHeader(rest string) (name, val string, hasVal bool) {
	for c := 1; c < len(rest); c++ {
		if rest[c] != ':' {
			continue
		}
		v := strings.TrimLeftFunc(rest[c+1:], func(r rune) bool { return r < 0x80 && isSpace(byte(r)) })
		if v == "" {
			continue
		}
		l := c
		for l > 1 && isSpace(rest[l-1]) {
			l--
		}
		return rest[:l], v, true
	}
	return rest, "", false
}

// load: LOAD <plugin>; the name comes from the original text (not
// lower-cased).
func (in *Interp) load(cmd, orig string) error {
	w := words(cmd)
	if len(w) != 2 || !isWordString(w[1]) {
		return usage("", "load")
	}
	name := w[1]
	if ow := words(orig); len(ow) == 2 && equalFold(ow[0], "load") && isWordString(ow[1]) {
		name = ow[1]
	}
	return in.ed.loadPlugin(name)
}

// unload: UNLOAD <plugin>; always succeeds.
func (in *Interp) unload(cmd string) error {
	w := words(cmd)
	if len(w) != 2 || !isWordString(w[1]) {
		return usage("", "unload")
	}
	in.ed.unloadPlugin(w[1])
	return nil
}

// reload: RELOAD <plugin>; no plb plugin supports reloading.
func (in *Interp) reload(cmd string) error {
	w := words(cmd)
	if len(w) != 2 || !isWordString(w[1]) {
		return usage("", "reload")
	}
	name := in.ed.cfg.loadedName(w[1])
	if name == "" {
		return errorf("Unknown/unloaded plugin '%s'", w[1])
	}
	if pl, ok := in.ed.plugins(name); ok {
		name = pl.Name
	}
	return errorf("Plugin Perlbal::Plugin::%s doesn't support reloading", name)
}

// server: SERVER <key> = <value>.
func (in *Interp) server(cmd string) error {
	rest, ok := strings.CutPrefix(cmd, "server ")
	if !ok {
		return usage("", "server")
	}
	key, val, ok := splitServer(rest)
	if !ok {
		return usage("", "server")
	}
	if key == "pidfile" && in.opts.Running {
		return errorf("pidfile must be configured at startup, before Perlbal::run is called")
	}
	if err := setGlobal(&in.ed.cfg.Global, key, val); err != nil {
		return err
	}
	in.ed.cfg.Global.setPlace(key, in.file, in.lineNo)
	return nil
}

// splitServer matches (\S+) ?= ?(.+)$ with a greedy key.
func splitServer(rest string) (key, val string, ok bool) {
	end := strings.IndexByte(rest, ' ')
	if end < 0 {
		end = len(rest)
	}
	for k := end; k >= 1; k-- {
		r := strings.TrimPrefix(rest[k:], " ")
		if !strings.HasPrefix(r, "=") {
			continue
		}
		r = strings.TrimPrefix(r[1:], " ")
		if r != "" {
			return rest[:k], r, true
		}
	}
	return "", "", false
}

// verboseCmd: VERBOSE on|off.
func (in *Interp) verboseCmd(cmd string) error {
	switch cmd {
	case "verbose on":
		in.verbose = true
	case "verbose off":
		in.verbose = false
	default:
		return usage("usage: VERBOSE {on|off}", "verbose")
	}
	return nil
}
