package config

// Plugin describes what a compiled-in plugin adds to the configuration
// language. The runtime's plugin registry provides one per plugin (see
// Options.Plugins); DefaultPlugins describes Perlbal's plugins that plb has.
type Plugin struct {
	// Name is the canonical name, e.g. "AccessControl".
	Name string
	// Role is the role a service must have to register the plugin with
	// SET plugins ("" for any).
	Role string
	// Params are service parameters the plugin adds once LOADed:
	// SET <name> = v, stored in Service.Extra[<name>] (normalized).
	Params []Param
	// Setters are per-service keys accepted once the plugin is registered on
	// a service: SET <svc>.<plugin>.<key> = v, stored in
	// Service.Extra["<plugin lower-case>.<key>"].
	Setters []Param
	// Commands are the configuration commands the plugin adds once LOADed.
	// The interpreter implements these: "vhost", "vpath", "access",
	// "redirect", "include".
	Commands []string
	// Roles are the service roles the plugin adds once LOADed (EchoService:
	// "echo"). The runtime's plugin registry provides their handlers.
	Roles []string
}

// DefaultPlugins looks up Perlbal's plugins plb implements, by name in any
// case: vhosts vpaths accesscontrol highpri notmodified queues stats include
// redirect xffextras maxcontentlength autoremoveleadingdir echoservice.
func DefaultPlugins(name string) (Plugin, bool) {
	switch toLowerASCII(name) {
	case "vhosts":
		return Plugin{Name: "Vhosts", Role: RoleSelector, Commands: []string{"vhost"}}, true
	case "vpaths":
		return Plugin{Name: "Vpaths", Role: RoleSelector, Commands: []string{"vpath"}}, true
	case "accesscontrol":
		return Plugin{Name: "AccessControl", Commands: []string{"access"},
			Setters: []Param{{Name: "use_observed_ip", Type: "bool", Doc: "check the first X-Forwarded-For address of trusted peers"}}}, true
	case "highpri":
		return Plugin{Name: "Highpri", Setters: []Param{
			{Name: "uri_pattern", Type: "regex", Doc: "URIs that get high priority (none disables)"},
			{Name: "host_pattern", Type: "regex", Doc: "hosts that get high priority (none disables)"},
		}}, true
	case "notmodified":
		return Plugin{Name: "NotModified", Setters: []Param{
			{Name: "host_pattern", Type: "regex", Doc: "hosts answered 304 to any If-Modified-Since"},
		}}, true
	case "queues":
		return Plugin{Name: "Queues"}, true
	case "stats":
		return Plugin{Name: "Stats"}, true
	case "include":
		return Plugin{Name: "Include", Commands: []string{"include"}}, true
	case "redirect":
		return Plugin{Name: "Redirect", Commands: []string{"redirect"}}, true
	case "xffextras":
		return Plugin{Name: "XFFExtras", Params: []Param{
			{Name: "send_backend_port", Role: RoleReverseProxy, Type: "bool", Default: "0", Doc: "send X-Forwarded-Port"},
			{Name: "send_backend_proto", Role: RoleReverseProxy, Type: "bool", Default: "0", Doc: "send X-Forwarded-Proto"},
		}}, true
	case "autoremoveleadingdir":
		return Plugin{Name: "AutoRemoveLeadingDir"}, true
	case "echoservice":
		return Plugin{Name: "EchoService", Roles: []string{RoleEcho}, Params: []Param{
			{Name: "echo_delay", Role: RoleEcho, Type: "int", Default: "0", Doc: "seconds to wait before echoing a line"},
		}}, true
	case "maxcontentlength":
		return Plugin{Name: "MaxContentLength", Params: []Param{
			{Name: "max_content_length", Role: "*", Type: "int", Default: "0", Doc: "largest Content-Length allowed, 413 above (0: no limit)"},
		}}, true
	}
	return Plugin{}, false
}

// pluginParam turns a plugin's Param into a table row storing into Extra.
func pluginParam(p Param) param {
	role := p.Role
	if role == "" {
		role = all
	}
	return param{name: p.Name, role: role, kind: kindOf(p.Type), def: p.Default, doc: p.Doc}
}

// normalizeExtra checks v against kind and returns the stored form.
func normalizeExtra(k kind, key, v string) (string, error) {
	switch k {
	case kindBool:
		b, ok := parseBool(v)
		if !ok {
			return "", kindError(k, key)
		}
		if b {
			return "1", nil
		}
		return "0", nil
	case kindInt:
		n, ok := parseUint(v)
		if !ok {
			return "", kindError(k, key)
		}
		return formatInt(n), nil
	case kindSize:
		n, ok := parseSize(v)
		if !ok {
			return "", kindError(k, key)
		}
		return formatInt(n), nil
	case kindSeconds, kindMillis:
		unit := int64(1e9)
		if k == kindMillis {
			unit = 1e6
		}
		d, ok := parseDuration(v, timeUnit(unit))
		if !ok {
			return "", kindError(k, key)
		}
		if int64(d)%unit == 0 {
			return formatInt(int64(d) / unit), nil
		}
		return d.String(), nil
	case kindRegex:
		if v == "undef" || v == "none" || v == "null" {
			return v, nil
		}
		if !validRegex(v) {
			return "", kindError(k, key)
		}
	}
	return v, nil
}
