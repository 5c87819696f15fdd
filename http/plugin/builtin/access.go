package builtin

import (
	"fmt"
	"net/netip"

	"github.com/plb/plb/config"
	"github.com/plb/plb/http/plugin"
)

// accessControl is Perlbal's AccessControl: the first ACCESS ALLOW|DENY|
// QUEUE_LOW rule that matches the client decides (deny: 403 "Access
// denied."; queue_low: low priority, then on), else ACCESS POLICY (allow by
// default). With SET <svc>.AccessControl.use_observed_ip = 1 the address
// checked is the first X-Forwarded-For entry of a trusted peer, when there
// is one.
type accessControl struct{}

func (*accessControl) Describe() config.Plugin { return describe("AccessControl") }

func (*accessControl) Register(svc *config.Service) (any, error) {
	a := &accessCheck{deny: svc.AccessPolicy == "deny", observed: svc.Extra["accesscontrol.use_observed_ip"] == "1"}
	for _, r := range svc.Access {
		var p netip.Prefix
		switch r.Kind {
		case "ip":
			ip, err := netip.ParseAddr(r.Value)
			if err != nil {
				return nil, fmt.Errorf("Error parsing ip address")
			}
			ip = ip.Unmap()
			p = netip.PrefixFrom(ip, ip.BitLen())
		case "netmask":
			var err error
			if p, err = netip.ParsePrefix(r.Value); err != nil {
				return nil, fmt.Errorf("Error parsing netmask")
			}
			p = p.Masked()
		default:
			return nil, fmt.Errorf("Unknown item to %s: '%s'", r.Action, r.Kind)
		}
		a.rules = append(a.rules, accessRule{action: r.Action, prefix: p})
	}
	return a, nil
}

type accessRule struct {
	action string // allow, deny, queue_low
	prefix netip.Prefix
}

type accessCheck struct {
	rules    []accessRule
	deny     bool // ACCESS POLICY deny
	observed bool // use_observed_ip
}

func (a *accessCheck) StartHTTPRequest(r *plugin.Request) bool {
	var ip netip.Addr
	if a.observed {
		ip = r.ObservedIP()
	}
	if !ip.IsValid() {
		ip = r.Peer()
	}
	for _, rule := range a.rules {
		if !rule.prefix.Contains(ip) {
			continue
		}
		switch rule.action {
		case "deny":
			r.Respond(403, "Access denied.")
			return true
		case "queue_low":
			r.SetQueueLow()
		}
		return false
	}
	if a.deny {
		r.Respond(403, "Access denied.")
		return true
	}
	return false
}
