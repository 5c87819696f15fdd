package config

import (
	"slices"
	"strings"

	"github.com/plb/plb/pool"
)

// The open sets of names the configuration checks against: roles, balance
// methods, checks and plugins. Each has one list here, which both the check and
// its error message read, so that an error names every valid choice.

// builtinRoles are the roles plb has without plugins, in the order errors
// list them.
func builtinRoles() []string {
	return []string{RoleReverseProxy, RoleWebServer, RoleSelector, RoleManagement, RoleSMTPProxy, RoleTCPProxy}
}

// BalanceMethods lists the pool balance methods, the default first: the
// names of pool's table (pool.MethodNames), so that a method added there
// is valid here and named in errBalanceMethod.
func BalanceMethods() []string { return pool.MethodNames() }

// CheckNames lists the pools' check names, the default first: the names
// of the probe table the server builds (health's probes and the SMTP
// one; TestProbeTableIsCheckNames in package server holds the two lists
// equal, as config cannot import the packages that make probes).
func CheckNames() []string { return []string{CheckTCP, CheckHTTP, CheckSMTP} }

// DefaultPluginNames lists, sorted, the canonical names of the plugins
// DefaultPlugins knows: Perlbal's plugins that plb has compiled in.
func DefaultPluginNames() []string {
	return []string{"AccessControl", "AutoRemoveLeadingDir", "EchoService", "FlvStreaming", "Highpri",
		"Include", "LazyCDN", "MaxContentLength", "NotModified", "Queues", "Redirect", "Stats",
		"Throttle", "Vhosts", "Vpaths", "XFFExtras"}
}

// pluginNames lists the plugins a lookup finds: o.PluginNames when set,
// else those of DefaultPluginNames that lookup knows.
func pluginNames(o *Options) []string {
	if o.PluginNames != nil {
		return o.PluginNames()
	}
	var out []string
	for _, n := range DefaultPluginNames() {
		if pl, ok := o.Plugins(n); ok {
			out = append(out, pl.Name)
		}
	}
	return out
}

// orList joins names as "a, b or c".
func orList(names []string) string { return joinList(names, " or ") }

// andList joins names as "a, b and c".
func andList(names []string) string { return joinList(names, " and ") }

func joinList(names []string, last string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + last + names[len(names)-1]
}

// errUnknownPlugin is LOAD's error for a plugin plb does not have. Perlbal
// answered with Perl's "Can't locate Perlbal/Plugin/<name>.pm in @INC (...)";
// plb's plugins are compiled in, so the useful answer is their list.
func errUnknownPlugin(name string, known []string) error {
	if len(known) == 0 {
		return errorf("unknown plugin '%s' (plugins are compiled into plb, and this build has none)", name)
	}
	return errorf("unknown plugin '%s': plb has %s (compiled in; Perl plugins cannot be loaded)", name, andList(known))
}

// errBalanceMethod is the error for an unknown balance_method; Perlbal's
// message, "Unknown balance method", comes first.
func errBalanceMethod(method string) error {
	return errorf("Unknown balance method '%s' (use %s)", method, orList(BalanceMethods()))
}

// roleError is the error for a role that is not valid: Perlbal's message,
// then the valid roles, and the plugin to LOAD when a compiled-in plugin
// adds the role asked for.
func (e *editor) roleError(service, role string) error {
	roles := builtinRoles()
	for _, r := range e.cfg.roles {
		if e.cfg.IsLoaded(r.plugin) && !slices.Contains(roles, r.role) {
			roles = append(roles, r.role)
		}
	}
	for _, n := range e.pluginNames() {
		if pl, ok := e.plugins(n); ok && slices.Contains(pl.Roles, role) {
			return errorf("Role not valid for service %s (role '%s' comes with a plugin: LOAD %s first)", service, role, pl.Name)
		}
	}
	if role == "" {
		return errorf("Role not valid for service %s (no role given; use %s)", service, orList(roles))
	}
	return errorf("Role not valid for service %s ('%s' is not a role; use %s)", service, role, orList(roles))
}
