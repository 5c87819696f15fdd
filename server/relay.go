package server

import (
	"fmt"
	"github.com/plb/plb/config"
	"github.com/plb/plb/health"
	"github.com/plb/plb/http/h2cli"
	"github.com/plb/plb/pool"
	"github.com/plb/plb/smtp"
	"maps"
)

// relaySettings builds an smtp_proxy's or tcp_proxy's snapshot.
func (s *Server) relaySettings(c *config.Config, sc *config.Service, pools map[string]*pool.Pool) (*smtp.Settings, error) {
	st := &smtp.Settings{Svc: sc, Hostname: s.smtpHostname(sc)}
	if sc.Pool != "" {
		st.Pool = pools[sc.Pool]
		if pc := c.Pool(sc.Pool); pc != nil {
			st.ServerRetry = pc.ServerRetry
		}
	}
	if sc.Role == config.RoleSMTPProxy && sc.SMTPStartTLS {
		if err := s.startTLSSettings(c, sc, st); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// startTLSSettings gives an smtp_proxy with smtp_starttls the TLS
// configuration plb answers STARTTLS with: the service's certificates, as
// enable_ssl would use them (tls.go), kept from the running settings when
// nothing they are made of changed. A certificate that does not load is
// refused as enable_ssl's is: the start fails, a reload leaves the running
// configuration (a relay without a certificate refuses STARTTLS, 454,
// never letting it through to a backend that trusts plb for XCLIENT).
func (s *Server) startTLSSettings(c *config.Config, sc *config.Service, st *smtp.Settings) error {
	var old *tlsBuild
	if sv := s.services[sc.Name]; sv != nil {
		if r, ok := sv.run.(relayRun); ok {
			old, _ = r.Settings().TLSBuild.(*tlsBuild)
		}
	}
	b, err := serverTLS(c, sc, old)
	if err != nil {
		return fmt.Errorf("Can't start service '%s': smtp_starttls: %w", sc.Name, err)
	}
	if b != old {
		s.log.Info("STARTTLS certificates loaded", "service", sc.Name, "names", tlsNames(b))
	}
	st.StartTLS, st.TLSBuild = b.cfg, b
	return nil
}

// balanceMethod is a pool's balancing method: its own, else least_conn when
// only smtp_proxy and tcp_proxy services use it (their sessions last: the
// count of open ones is what matters), else the default (random).
func balanceMethod(c *config.Config, pc *config.Pool) string {
	if pc.BalanceMethodSet {
		return pc.BalanceMethod
	}
	used := false
	for _, sc := range c.Services {
		if sc.Pool != pc.Name {
			continue
		}
		if !roleOf(sc.Role).uses(sc).relays() {
			return pc.BalanceMethod
		}
		used = true
	}
	if used {
		return config.BalanceLeastConn
	}
	return pc.BalanceMethod
}

// policyFor is a pool's health policy: for a pool an smtp_proxy uses, its
// probe is the SMTP check (greeting, EHLO with the service's name, QUIT,
// after the PROXY header the service sends), unless the pool asks for
// http.
//
// Suspect nodes (health.Failed, RequestFailed) are confirmed, and down
// nodes brought back, by the policy's probe, except for a pool that only
// reverse proxies, one way (plain HTTP, h2c, or over TLS: backend_ssl or
// h2), and checks with a TCP connect: there a connect proves too little
// (a node that accepts and then resets or never answers passes it, and
// would come back only to fail again), so those are an OPTIONS * request
// that any HTTP answer but 502-504 passes, the verify_backend criterion,
// spoken the way the proxy speaks to the nodes. Active checks of up nodes
// keep the pool's, spoken that way too.
func (s *Server) policyFor(c *config.Config, pc *config.Pool) (health.Policy, error) {
	probes := s.probes
	// What the HTTP services using the pool speak to it: plain HTTP/1.1,
	// h2c, or over TLS (backend_ssl, or h2) with one service's keys.
	plainHTTP, h2c, other := false, false, false
	var h2, https *config.Service
	for _, sc := range c.Services {
		if sc.Pool != pc.Name {
			continue
		}
		switch roleOf(sc.Role).uses(sc) {
		case useSMTP:
			return smtp.PolicyFor(pc, probes, s.smtpHostname(sc), sc.ClientIPForwarding)
		case usePlainHTTP:
			if sc.BackendProtocol == "h2c" {
				h2c = true
			} else {
				plainHTTP = true
			}
		case useOther:
			switch {
			case sc.BackendProtocol == "h2" && h2 == nil:
				h2 = sc
			case !sc.BackendH2() && https == nil:
				https = sc
			default:
				other = true
			}
		default:
			other = true
		}
	}
	kinds := 0
	for _, k := range []bool{plainHTTP, h2c, h2 != nil, https != nil, other} {
		if k {
			kinds++
		}
	}
	// Nodes spoken to one way only are probed that way: the http check,
	// and the OPTIONS that confirms a suspect node (a TCP connect proves
	// too little). Nodes spoken to several ways keep the pool's check.
	var probe func(path string) health.Probe
	if kinds == 1 {
		switch {
		case plainHTTP:
			probe = func(path string) health.Probe { return health.HTTP{Path: path} }
		case h2c:
			probe = func(path string) health.Probe { return h2cli.Probe{HTTP: health.HTTP{Path: path}} }
		case h2 != nil || https != nil:
			sc := h2
			if sc == nil {
				sc = https
			}
			b, err := backendTLS(c, sc, nil)
			if err != nil {
				return health.Policy{}, err
			}
			if h2 != nil {
				probe = func(path string) health.Probe { return h2cli.Probe{HTTP: health.HTTP{Path: path}, TLS: b.cfg} }
			} else {
				probe = func(path string) health.Probe { return health.HTTP{Path: path, TLS: b.cfg} }
			}
		}
	}
	if probe != nil {
		t := health.Probes{}
		maps.Copy(t, probes)
		t[config.CheckHTTP] = func(pc *config.Pool) (health.Probe, error) { return probe(pc.CheckPath), nil }
		probes = t
	}
	p, err := health.PolicyFor(pc, probes)
	if err == nil && probe != nil && (pc.Check == "" || pc.Check == health.CheckTCP) {
		p.Confirm = probe("")
	}
	return p, err
}

// probeTable is the name table of the probes a pool's check key may name:
// health's own (tcp, http) and those protocol packages supply (smtp).
// A new one each time: nothing changes it after.
func probeTable() health.Probes {
	t := health.NewProbes()
	t[config.CheckSMTP] = smtp.NewProbe
	return t
}

// smtpHostname is the name an smtp_proxy gives itself (its 421, the
// probe's EHLO): smtp_hostname, else the host's name.
func (s *Server) smtpHostname(sc *config.Service) string {
	if sc.SMTPHostname != "" {
		return sc.SMTPHostname
	}
	return s.hostname
}
