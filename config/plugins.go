package config

import (
	"regexp"
	"slices"
	"strings"
)

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
// redirect xffextras maxcontentlength autoremoveleadingdir echoservice
// throttle lazycdn flvstreaming.
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
	case "throttle":
		return Plugin{Name: "Throttle", Commands: []string{"throttle"}, Params: throttleParams()}, true
	case "lazycdn":
		return Plugin{Name: "LazyCDN", Params: []Param{
			{Name: "fallback_service", Role: RoleWebServer, Type: "string", Doc: "service a request goes to when its file is missing, or older than its ?v=<unix time>"},
			{Name: "fallback_udp_ping_addr", Role: RoleWebServer, Type: "string", Doc: "a.b.c.d:port sent a UDP datagram with the URI of each request handed to fallback_service",
				Match: `^\d+\.\d+\.\d+\.\d+:\d+$`, MatchMsg: "Expecting IP:port of form a.b.c.d:port."},
		}}, true
	case "flvstreaming":
		return Plugin{Name: "FlvStreaming", Role: RoleReverseProxy}, true
	case "maxcontentlength":
		return Plugin{Name: "MaxContentLength", Params: []Param{
			{Name: "max_content_length", Role: "*", Type: "int", Default: "0", Doc: "largest Content-Length allowed, 413 above (0: no limit)"},
		}}, true
	}
	return Plugin{}, false
}

// throttleParams are Throttle's tunables, as Perlbal's Throttle 1.20
// declares them (plus default_action = deny).
func throttleParams() []Param {
	return []Param{
		{Name: "whitelist_file", Role: "*", Type: "string", Doc: "file of CIDRs never throttled"},
		{Name: "blacklist_file", Role: "*", Type: "string", Doc: "file of CIDRs always denied (or throttled: blacklist_action)"},
		{Name: "default_action", Role: "*", Type: "string", Default: "throttle", Values: []string{"allow", "throttle", "deny"},
			Doc: "what happens to clients on neither list: throttle, allow or deny"},
		{Name: "blacklist_action", Role: "*", Type: "string", Default: "deny", Values: []string{"deny", "throttle"},
			Doc: "what happens to blacklisted clients: deny or throttle"},
		{Name: "path_regex", Role: "*", Type: "regex", Doc: "only URIs matching this are throttled"},
		{Name: "method_regex", Role: "*", Type: "regex", Doc: "only methods matching this are throttled"},
		{Name: "log_events", Role: "*", Type: "string", Default: "all",
			Match:    `^(ban|unban|whitelisted|blacklisted|concurrent|throttled|banned|all|none| |,)+$`,
			MatchMsg: "log_events is a comma-separated list of loggable events",
			Doc:      "events logged: ban, unban, whitelisted, blacklisted, concurrent, throttled, banned; all; none"},
		{Name: "log_only", Role: "*", Type: "bool", Default: "0", Doc: "decide and log, but neither delay nor deny"},
		{Name: "throttle_threshold_seconds", Role: "*", Type: "int", Default: "60", Doc: "a client's requests closer than this are throttled"},
		{Name: "initial_delay", Role: "*", Type: "int", Default: "3", Doc: "seconds the first throttled request waits; doubled for each further one"},
		{Name: "max_delay", Role: "*", Type: "int", Default: "300", Doc: "longest delay, in seconds"},
		{Name: "max_concurrent", Role: "*", Type: "int", Default: "2", Doc: "requests in progress allowed per client address; more get 403"},
		{Name: "ban_threshold", Role: "*", Type: "int", Default: "0", Doc: "violations that ban an address (0: no bans)"},
		{Name: "ban_expiration", Role: "*", Type: "int", Default: "60", Doc: "seconds a ban lasts"},
		{Name: "memcached_servers", Role: "*", Type: "string",
			Doc: "memcached servers (host:port, comma-separated) sharing each address's state with the other plb nodes (default: the process only)"},
		{Name: "memcached_async_clients", Role: "*", Type: "int", Default: "10", Doc: "memcached calls in flight at once, off the event loops"},
		{Name: "instance_name", Role: "*", Type: "string", Default: "Throttle", Doc: "prefix of the state's keys in memcached: services sharing it share the state"},
	}
}

// pluginParam turns a plugin's Param into a table row storing into Extra.
func pluginParam(p Param) param {
	role := p.Role
	if role == "" {
		role = all
	}
	return param{name: p.Name, role: role, kind: kindOf(p.Type), def: p.Default, doc: p.Doc,
		values: p.Values, match: p.Match, matchMsg: p.MatchMsg}
}

// normalizeExtra checks v for the plugin parameter p (its type, then its
// Values or Match) and returns the stored form.
func (p *param) normalizeExtra(key, v string) (string, error) {
	n, err := normalizeExtra(p.kind, key, v)
	if err != nil {
		return "", err
	}
	if len(p.values) > 0 && !slices.Contains(p.values, n) {
		return "", errorf("Value of '%s' must be one of: %s", key, strings.Join(p.values, ", "))
	}
	if p.match != "" {
		if ok, _ := regexp.MatchString(p.match, n); !ok {
			return "", errorf("%s", p.matchMsg)
		}
	}
	return n, nil
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
