package config

import (
	"net/netip"
	"strings"
)

// The configuration commands LOADed plugins add: VHOST (Vhosts), VPATH
// (Vpaths), ACCESS (AccessControl), REDIRECT HOST (Redirect), INCLUDE
// (Include) and THROTTLE RELOAD (Throttle).

// vhost: VHOST|VPATH [<selector>] <pattern> = <service>.
func (in *Interp) vhost(base, cmd string) error {
	u := "usage: VHOST [<service>] <host_or_pattern> = <dest_service>"
	if base == "vpath" {
		u = "usage: VPATH [<service>] <path regex> = <dest_service>"
	}
	sel, pattern, target, ok := splitVhost(cmd[len(base):])
	if !ok {
		return usage(u, base)
	}
	if sel == "" {
		sel = in.context
	}
	if sel == "" {
		return errorf("omitted service name not implied from context")
	}
	s := in.ed.cfg.Service(sel)
	if s == nil || s.Role != RoleSelector {
		return errorf("Service '%s' is not a selector service", sel)
	}
	if base == "vpath" {
		return addVpath(s, pattern, target)
	}
	return addVhost(s, pattern, target)
}

// splitVhost matches \s+(?:(\w+)\s+)?(\S+)\s*=\s*(\w+)$.
func splitVhost(rest string) (sel, pattern, target string, ok bool) {
	if rest == "" || !isSpace(rest[0]) {
		return "", "", "", false
	}
	eq := strings.LastIndexByte(rest, '=')
	if eq < 0 {
		return "", "", "", false
	}
	target = trimSpace(rest[eq+1:])
	lhs := fields(rest[:eq])
	if !isWordString(target) {
		return "", "", "", false
	}
	switch len(lhs) {
	case 1:
		return "", lhs[0], target, true
	case 2:
		if isWordString(lhs[0]) {
			return lhs[0], lhs[1], target, true
		}
	}
	return "", "", "", false
}

// addVhost adds or replaces a Host pattern (lower-cased).
func addVhost(s *Service, pattern, target string) error {
	pattern = toLowerASCII(pattern)
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		if !isWord(c) && c != '-' && c != '.' && c != '*' && c != ';' && c != ':' {
			return errorf("invalid host pattern: '%s'", pattern)
		}
	}
	if pattern == "" {
		return errorf("invalid host pattern: '%s'", pattern)
	}
	for i := range s.Vhosts {
		if s.Vhosts[i].Pattern == pattern {
			s.Vhosts[i].Service = target
			return nil
		}
	}
	s.Vhosts = append(s.Vhosts, VhostRule{Pattern: pattern, Service: target})
	return nil
}

// addVpath appends a URI regex rule.
func addVpath(s *Service, regex, target string) error {
	if !validRegex(regex) {
		return errorf("invalid regular expression: '%s'", regex)
	}
	s.Vpaths = append(s.Vpaths, VpathRule{Regex: regex, Service: target})
	return nil
}

// contextService is the USE/CREATE context as a service, for the commands
// that take no service name (ACCESS, REDIRECT).
func (in *Interp) contextService() (*Service, error) {
	if in.context == "" {
		return nil, errorf("No service name in context from CREATE SERVICE <name> or USE <service_name>")
	}
	s := in.ed.cfg.Service(in.context)
	if s == nil {
		return nil, errorf("Non-existent service '%s'", in.context)
	}
	return s, nil
}

// access: ACCESS POLICY allow|deny, ACCESS ALLOW|DENY|QUEUE_LOW ip|netmask
// <value>, ACCESS RESET, on the context service.
func (in *Interp) access(cmd string) error {
	f := fields(cmd)
	if len(f) < 2 || len(f) > 4 || f[0] != "access" {
		return usage("usage: ACCESS <cmd> <arg1> [<arg2>]", "access")
	}
	switch f[1] {
	case "policy", "allow", "deny", "reset", "queue_low":
	default:
		return usage("usage: ACCESS <cmd> <arg1> [<arg2>]", "access")
	}
	s, err := in.contextService()
	if err != nil {
		return err
	}
	return accessRule(s, f[1:])
}

// accessRule applies ACCESS arguments (also TOML's access strings).
func accessRule(s *Service, f []string) error {
	arg := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	switch f[0] {
	case "reset":
		s.AccessPolicy, s.Access = "", nil
		return nil
	case "policy":
		if a := arg(1); a == "allow" || a == "deny" {
			s.AccessPolicy = a
			return nil
		}
		return errorf("policy must be 'allow' or 'deny'")
	case "allow", "deny", "queue_low":
		what, val := arg(1), arg(2)
		switch what {
		case "ip":
			a, err := netip.ParseAddr(val)
			if err != nil {
				return errorf("Error parsing ip address")
			}
			val = a.String()
		case "netmask":
			p, ok := parsePrefix(val)
			if !ok {
				return errorf("Error parsing netmask")
			}
			val = p.String()
		default:
			return errorf("Unknown item to %s: '%s'", f[0], what)
		}
		s.Access = append(s.Access, AccessRule{Action: f[0], Kind: what, Value: val})
		return nil
	}
	return errorf("usage: ACCESS <cmd> <arg1> [<arg2>]")
}

// redirect: REDIRECT HOST <match> <target>, on the context service.
func (in *Interp) redirect(cmd string) error {
	f := fields(cmd)
	if len(f) != 4 || f[0] != "redirect" || f[1] != "host" {
		return usage("usage: REDIRECT HOST <match_host> <target_host>", "redirect")
	}
	s, err := in.contextService()
	if err != nil {
		return err
	}
	addRedirect(s, f[2], f[3])
	return nil
}

func addRedirect(s *Service, host, target string) {
	host, target = toLowerASCII(host), toLowerASCII(target)
	for i := range s.Redirects {
		if s.Redirects[i].Host == host {
			s.Redirects[i].Target = target
			return
		}
	}
	s.Redirects = append(s.Redirects, RedirectRule{Host: host, Target: target})
}

// include: INCLUDE = <glob>...; each file runs with a fresh context, as
// Perlbal's load_config. Unlike Perlbal, which reports a failing line of an
// included file and goes on, the error stops the INCLUDE (with the
// included file's name and line).
func (in *Interp) include(cmd string) ([]string, error) {
	const u = "usage: INCLUDE = <config files>"
	rest, _ := strings.CutPrefix(cmd, "include")
	if rest == "" || !isSpace(rest[0]) {
		return nil, usage(u, "include")
	}
	rest = strings.TrimLeft(rest, " \t\r\n\f\v")
	if !strings.HasPrefix(rest, "=") || len(rest) < 3 || !isSpace(rest[1]) {
		return nil, usage(u, "include")
	}
	globs := trimSpace(rest[1:])
	if globs == "" {
		return nil, usage(u, "include")
	}
	if in.depth >= maxIncludeDepth {
		return nil, errorf("INCLUDE nested too deeply")
	}
	var out []string
	for _, g := range fields(globs) {
		files := []string{g}
		if strings.ContainsAny(g, "*?[") {
			m, err := in.opts.FS.Glob(g)
			if err != nil {
				return out, errorf("Bad INCLUDE pattern '%s'", g)
			}
			files = m
		}
		for _, f := range files {
			data, err := in.opts.FS.ReadFile(f)
			if err != nil {
				return out, errorf("Error opening config file (%s): %s", f, errnoText(err))
			}
			child := &Interp{ed: in.ed, opts: in.opts, depth: in.depth + 1, file: f}
			o, err := child.run(data)
			out = append(out, o...)
			if err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// throttle: THROTTLE RELOAD config|whitelist|blacklist, on the context
// service. The runtime registers its plugins afresh whenever a
// configuration is applied, reading the lists again, so the command only
// checks that there is something to reload; a list that fails to load is
// reported when the configuration is applied.
func (in *Interp) throttle(cmd string) error {
	const u = "usage: throttle reload <config|whitelist|blacklist>"
	f := fields(cmd)
	if len(f) != 3 || f[0] != "throttle" || f[1] != "reload" {
		return usage(u, "throttle")
	}
	what := f[2]
	switch what {
	case "config", "whitelist", "blacklist":
	default:
		return usage(u, "throttle")
	}
	if in.context == "" {
		return errorf("No service name set. This command must be used after CREATE SERVICE <name> or USE <service_name>")
	}
	s := in.ed.cfg.Service(in.context)
	if s == nil {
		return errorf("Non-existent service '%s'", in.context)
	}
	if what != "config" && s.Extra[what+"_file"] == "" {
		return errorf("no %s file configured", what)
	}
	return nil
}
