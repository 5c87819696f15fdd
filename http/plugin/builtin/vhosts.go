package builtin

import (
	"fmt"
	"regexp"

	"github.com/plb/plb/config"
	"github.com/plb/plb/http/plugin"
)

// vhosts is Perlbal's Vhosts: a selector plugin choosing the target by the
// Host field (VHOST [<selector>] <pattern> = <service>). Patterns are
// tried in plugin.EachHostPattern's order; a pattern whose service does not
// exist is skipped. /__using/<alt>/x selects the rule "<host>;using:<alt>"
// and sends the request on with Host: <alt>.
type vhosts struct{}

func (*vhosts) Describe() config.Plugin { return describe("Vhosts") }

func (*vhosts) Register(svc *config.Service) (any, error) {
	if svc.Role != config.RoleSelector {
		return nil, fmt.Errorf("You can't load the vhost plugin on a service not of role selector.")
	}
	m := make(map[string]string, len(svc.Vhosts))
	for _, v := range svc.Vhosts {
		m[v.Pattern] = v.Service
	}
	return &vhostSelector{maps: m}, nil
}

type vhostSelector struct{ maps map[string]string }

// usingRE is Perlbal's m!^/__using/([\w\.]+)(?:/\w+)(?:\?.*)?$!.
var usingRE = regexp.MustCompile(`^/__using/([\w.]+)(?:/\w+)(?:\?.*)?$`)

func (v *vhostSelector) Select(r *plugin.Request) bool {
	exists := func(name string) bool { return r.Exists == nil || r.Exists(name) }
	host := plugin.LowerASCII(r.Host())
	if n := len(host); n > 0 && host[n-1] == '.' {
		host = host[:n-1] // "www.example.com." is "www.example.com"
	}
	if host != "" {
		if m := usingRE.FindSubmatch(r.URI()); m != nil {
			name := v.maps[host+";using:"+string(m[1])]
			if name == "" || !exists(name) {
				r.Respond(404, "Vhost twiddling not configured for requested pair.")
				return true
			}
			r.SetHost(m[1])
			r.SetTarget(name)
			return true
		}
	}
	p := plugin.EachHostPattern(host, func(p string) bool {
		name, ok := v.maps[p]
		return ok && exists(name)
	})
	if p == "" {
		r.Respond(404, "Not Found (no configured vhost)")
		return true
	}
	r.SetTarget(v.maps[p])
	return true
}

// vpaths is Perlbal's Vpaths: a selector plugin choosing the target by the
// first URI regular expression that matches (VPATH [<selector>] <regex> =
// <service>); none matching declines, so default_service applies.
type vpaths struct{}

func (*vpaths) Describe() config.Plugin { return describe("Vpaths") }

func (*vpaths) Register(svc *config.Service) (any, error) {
	if svc.Role != config.RoleSelector {
		return nil, fmt.Errorf("You can't load the vpath plugin on a service not of role selector.")
	}
	sel := &vpathSelector{}
	for _, v := range svc.Vpaths {
		re, err := regexp.Compile(v.Regex)
		if err != nil {
			return nil, fmt.Errorf("invalid regular expression: '%s'", v.Regex)
		}
		sel.rules = append(sel.rules, vpathRule{re, v.Service})
	}
	return sel, nil
}

type vpathRule struct {
	re      *regexp.Regexp
	service string
}

type vpathSelector struct{ rules []vpathRule }

func (v *vpathSelector) Select(r *plugin.Request) bool {
	uri := r.URI()
	for _, rule := range v.rules {
		if !rule.re.Match(uri) {
			continue
		}
		if r.Exists != nil && !r.Exists(rule.service) {
			r.Respond(404, "Not Found ("+rule.service+" not a defined service)")
			return true
		}
		r.SetTarget(rule.service)
		return true
	}
	return false
}
