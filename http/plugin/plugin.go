// Package plugin is plb's plugin framework: the Go form of Perlbal's
// plugins. A Plugin describes what it adds to the configuration language
// (commands, service parameters, setters, roles) and makes one instance per
// service it is registered on (SET plugins = A, B, or TOML plugins = [...]);
// an instance takes part in request handling by implementing any of the hook
// interfaces below, which the roles call at Perlbal's hook points.
//
// Plugins are compiled in: a Registry, built by NewRegistry from a list of
// plugins and passed to the server, is the set LOAD can find (package
// plugin/builtin builds the one with Perlbal's plugins). There is no
// package-level state: what a plugin must keep across configuration changes
// (counters, say) lives in its Plugin value, which the Registry holds.
//
// Every hook runs on the event loop that owns the connection and must not
// block. Instances are rebuilt (Register is called again) whenever the
// service's configuration changes; the old instance may still serve the
// requests in flight, so an instance must not be modified after Register
// returns, except through atomics.
package plugin

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
)

// Plugin is a compiled-in plugin.
type Plugin interface {
	// Describe says what the plugin adds to the configuration language
	// once LOADed. Its Name is the canonical name; LOAD and SET plugins
	// match it without regard to case.
	Describe() config.Plugin
	// Register makes the plugin's instance for svc, a service the plugin
	// is registered on, from svc's configuration (its Extra values,
	// rules, and so on). The instance implements the hook interfaces it
	// needs; it may be nil when the plugin has no per-request work. An
	// error refuses the configuration.
	Register(svc *config.Service) (any, error)
}

// The hook interfaces an instance may implement. A hook that returns true
// has handled the request (answered it, or taken the connection): the
// hooks after it do not run, nor does the role's own handling. The names
// are Perlbal's hook names.
type (
	// HTTPRequestStarter is start_http_request: every request head, in
	// every HTTP role (after StartProxyRequest or StartWebRequest).
	HTTPRequestStarter interface{ StartHTTPRequest(r *Request) bool }
	// ProxyRequestStarter is start_proxy_request (reverse_proxy).
	ProxyRequestStarter interface{ StartProxyRequest(r *Request) bool }
	// WebRequestStarter is start_web_request (web_server).
	WebRequestStarter interface{ StartWebRequest(r *Request) bool }
	// ServeRequestStarter is start_serve_request (web_server): it may
	// return a new URI for the file to serve (nil: unchanged).
	ServeRequestStarter interface {
		StartServeRequest(r *Request, uri []byte) []byte
	}
	// Selector is a selector service's choice of target (Vhosts, Vpaths):
	// it calls r.SetTarget or answers the request and returns true, or
	// declines with false (the selector's default_service applies).
	Selector interface{ Select(r *Request) bool }
	// BackendClientAssigner is backend_client_assigned (reverse_proxy):
	// edits to the request headers sent to the backend.
	BackendClientAssigner interface {
		BackendClientAssigned(r *Request, h *HeaderEdits)
	}
	// BackendResponseReceiver is backend_response_received (reverse_proxy):
	// the backend's response head arrived.
	BackendResponseReceiver interface {
		BackendResponseReceived(r *Request, status int)
	}
	// ResponseHeaderModifier is modify_response_headers (reverse_proxy):
	// edits to the response headers sent to the client.
	ResponseHeaderModifier interface {
		ModifyResponseHeaders(r *Request, status int, h *HeaderEdits)
	}
	// HighPrioritizer is make_high_priority (reverse_proxy).
	HighPrioritizer interface{ MakeHighPriority(r *Request) bool }
	// LowPrioritizer is make_low_priority (reverse_proxy).
	LowPrioritizer interface{ MakeLowPriority(r *Request) bool }
	// BaseReturner is return_to_base (selector): a response is done and
	// the connection goes back to the selector. Returning true means the
	// plugin took the connection itself.
	BaseReturner interface{ ReturnToBase(c *engine.Conn) bool }
	// ProxyRequestEnder is end_proxy_request (reverse_proxy), a general
	// hook: every instance's runs, once per request that ran
	// start_proxy_request, when the request is over (its response queued
	// in full, an answer given, or the connection closed). r.Head is nil;
	// what Keep stored is there.
	ProxyRequestEnder interface{ EndProxyRequest(r *Request) }
	// StaticFileMissing is static_get_poststat_file_missing and
	// concat_get_poststat_file_missing (web_server): a GET or HEAD found
	// no file (the web server would answer 404). Returning true means the
	// hook took the request: it answered it (r.Respond) or named a service
	// to hand it to (r.SetTarget).
	StaticFileMissing interface{ StaticFileMissing(r *Request) bool }
	// StaticPreSender is static_get_poststat_pre_send and
	// concat_get_poststat_pre_send (web_server): a GET or HEAD is about to
	// be answered 200 with a file (or files, for a concatenated GET) last
	// modified at mtime, whole seconds. Returning true as for
	// StaticFileMissing.
	StaticPreSender interface {
		StaticPreSend(r *Request, mtime time.Time) bool
	}
)

// Commander is a Plugin that adds console commands once LOADed (Stats'
// stats and recent, Highpri's patterns). They print a listing ending with a
// "." line.
type Commander interface {
	// Commands lists the command words, lower-case.
	Commands() []string
	// Command runs the console line (processed: lower-case before "=",
	// single spaces) whose first word is one of Commands, against the live
	// model, and returns its output lines (the closing "." included).
	Command(cfg *config.Config, line string) ([]string, error)
}

// RoleMaker is a Plugin that adds service roles (EchoService's echo).
type RoleMaker interface {
	// NewRole makes a running service of one of the plugin's roles (see
	// config.Plugin.Roles).
	NewRole(role, name string, log *slog.Logger) (Role, error)
}

// Role is a running service of a role a plugin adds.
type Role interface {
	// Update publishes the service's configuration. Safe from any
	// goroutine.
	Update(svc *config.Service)
	// Accept returns the handler of a new connection (nil refuses it).
	// Runs on the loop.
	Accept(c *engine.Conn) engine.Handler
}

// Registry is a set of compiled-in plugins. It is read-only once built and
// safe from any goroutine.
type Registry struct {
	plugins []Plugin
	byName  map[string]Plugin // lower-case name
}

// NewRegistry builds a registry; two plugins with the same name (in any
// case) are an error.
func NewRegistry(plugins ...Plugin) (*Registry, error) {
	r := &Registry{byName: make(map[string]Plugin, len(plugins))}
	for _, p := range plugins {
		name := strings.ToLower(p.Describe().Name)
		if name == "" {
			return nil, fmt.Errorf("plugin: a plugin has no name")
		}
		if _, dup := r.byName[name]; dup {
			return nil, fmt.Errorf("plugin: %s registered twice", p.Describe().Name)
		}
		r.byName[name] = p
		r.plugins = append(r.plugins, p)
	}
	return r, nil
}

// Plugin returns the plugin called name (any case).
func (r *Registry) Plugin(name string) (Plugin, bool) {
	if r == nil {
		return nil, false
	}
	p, ok := r.byName[strings.ToLower(name)]
	return p, ok
}

// Lookup describes the plugin called name; it is what config.Options.Plugins
// wants.
func (r *Registry) Lookup(name string) (config.Plugin, bool) {
	p, ok := r.Plugin(name)
	if !ok {
		return config.Plugin{}, false
	}
	return p.Describe(), true
}

// Names lists the plugins' canonical names in registration order.
func (r *Registry) Names() []string {
	out := make([]string, len(r.plugins))
	for i, p := range r.plugins {
		out[i] = p.Describe().Name
	}
	return out
}

// Command runs a console command added by a plugin LOADed in cfg. ok is
// false when no LOADed plugin has the command word.
func (r *Registry) Command(cfg *config.Config, line string) (out []string, ok bool, err error) {
	word, _, _ := strings.Cut(line, " ")
	for _, name := range cfg.Loaded {
		p, found := r.Plugin(name)
		if !found {
			continue
		}
		c, isCmd := p.(Commander)
		if !isCmd {
			continue
		}
		for _, w := range c.Commands() {
			if w == word {
				out, err = c.Command(cfg, line)
				return out, true, err
			}
		}
	}
	return nil, false, nil
}

// NewRole makes a running service for a role a LOADed plugin of cfg adds.
func (r *Registry) NewRole(cfg *config.Config, role, name string, log *slog.Logger) (Role, error) {
	pname, ok := cfg.PluginRole(role)
	if !ok {
		return nil, fmt.Errorf("Role not valid for service %s", name)
	}
	p, ok := r.Plugin(pname)
	if !ok {
		return nil, fmt.Errorf("plugin %s is not compiled in", pname)
	}
	rm, ok := p.(RoleMaker)
	if !ok {
		return nil, fmt.Errorf("plugin %s adds no role %s", pname, role)
	}
	return rm.NewRole(role, name, log)
}
