package config

import (
	"fmt"
	"slices"
	"strings"
)

// Validate checks what the runtime needs and the parsers cannot see one
// line at a time: enabled services have a role, a reverse_proxy,
// smtp_proxy or tcp_proxy a pool, a web_server a docroot; only an
// smtp_proxy forwards the client's address with XCLIENT; references resolve; listen addresses parse and no
// two enabled services listen on the same one. It does not touch the file
// system. Errors name the file and line where the pool or service was
// created.
func (c *Config) Validate() error {
	if err := c.CheckBalancing(); err != nil {
		return err
	}
	for _, p := range c.Pools {
		place := func(err error) error { return c.at(p.File, p.Line, err) }
		if !knownBalanceMethod(p.BalanceMethod) {
			return place(fmt.Errorf("pool '%s': %w", p.Name, errBalanceMethod(p.BalanceMethod)))
		}
		for _, n := range p.Nodes {
			if _, ok := parseNodeSpec(n); !ok {
				return place(errorf("pool '%s': invalid node '%s'", p.Name, n))
			}
		}
		if p.ServerRetry < 1 || p.TimeoutCleanup <= 0 {
			return place(errorf("pool '%s': server_retry and timeout_cleanup must be positive", p.Name))
		}
		if !slices.Contains(CheckNames(), p.Check) {
			return place(errorf("pool '%s': unknown check '%s'", p.Name, p.Check))
		}
		if p.Rise < 1 || p.Fall < 1 || p.CheckInterval < 0 {
			return place(errorf("pool '%s': rise and fall must be positive, check_interval not negative", p.Name))
		}
	}
	var listeners []*Service
	for _, s := range c.Services {
		place := func(err error) error { return c.at(s.File, s.Line, err) }
		if s.Role != "" && !c.validRole(s.Role) {
			ed := editor{cfg: c}
			return place(ed.roleError(s.Name, s.Role))
		}
		if s.Pool != "" && c.Pool(s.Pool) == nil {
			return place(errorf("service '%s': Pool '%s' not found", s.Name, s.Pool))
		}
		if s.DefaultService != "" && c.Service(s.DefaultService) == nil {
			return place(errorf("service '%s': Service '%s' not found", s.Name, s.DefaultService))
		}
		if s.Listen != "" {
			if l, ok := parseListen(s.Listen); !ok || l != s.Listen {
				return place(errorf("service '%s': Listen argument must be ip:port or port. e.g. 192.168.0.1:80 or 81", s.Name))
			}
		}
		if s.Role == RoleSMTPProxy || s.Role == RoleTCPProxy {
			switch s.ClientIPForwarding {
			case "", ForwardNone, ForwardProxyV1, ForwardProxyV2:
			case ForwardXClient:
				if s.Role == RoleTCPProxy {
					return place(errXClientTCP(s.Name))
				}
			default:
				return place(errorf("service '%s': Value of 'client_ip_forwarding' must be one of: %s", s.Name, strings.Join(forwardings(), ", ")))
			}
		}
		if !s.Enabled {
			continue
		}
		if err := s.CheckManagementAccess(); err != nil {
			return place(err)
		}
		switch s.Role {
		case "":
			return place(errorf("service '%s' has no role", s.Name))
		case RoleReverseProxy:
			if s.Pool == "" {
				return place(errorf("service '%s': a reverse_proxy needs a pool", s.Name))
			}
		case RoleSMTPProxy:
			if s.Pool == "" {
				return place(errorf("service '%s': an smtp_proxy needs a pool", s.Name))
			}
		case RoleTCPProxy:
			if s.Pool == "" {
				return place(errorf("service '%s': a tcp_proxy needs a pool", s.Name))
			}
		case RoleWebServer:
			// Without plugins (Redirect, say) to answer its requests, a
			// web server without docroot could only fail them all.
			if s.Docroot == "" && len(s.Plugins) == 0 {
				return place(errorf("service '%s': a web_server needs a docroot", s.Name))
			}
		}
		if s.Listen == "" || strings.HasSuffix(s.Listen, ":0") {
			continue
		}
		for _, o := range listeners {
			if listenOverlap(o.Listen, s.Listen) {
				return place(errorf("services '%s' and '%s' both listen on %s", o.Name, s.Name, s.Listen))
			}
		}
		listeners = append(listeners, s)
	}
	return nil
}

// listenOverlap reports whether two listen addresses take the same port:
// the same address, or a wildcard (":p", "0.0.0.0:p", "[::]:p") and any
// address. With SO_REUSEPORT both would bind, and share the connections.
func listenOverlap(a, b string) bool {
	ha, pa := splitListen(a)
	hb, pb := splitListen(b)
	return pa == pb && (ha == hb || wildcard(ha) || wildcard(hb))
}

func splitListen(l string) (host, port string) {
	i := strings.LastIndexByte(l, ':')
	return l[:i], l[i+1:]
}

func wildcard(host string) bool { return host == "" || host == "0.0.0.0" || host == "[::]" }

func (c *Config) at(file string, line int, err error) error {
	if file == "" {
		file = c.File
	}
	return at(file, line, err)
}

// checkSticky checks what browsers require of a reverse_proxy's sticky
// cookie, which they would otherwise drop without a word: Secure for
// SameSite=None and for a name prefixed __Secure- or __Host-, and Path=/
// for __Host- (RFC 6265bis 4.1.3). Secure is always there with enable_ssl
// or sticky_cookie_secure; a plain service behind a TLS selector needs
// the second.
func checkSticky(s *Service) error {
	if s.Role != RoleReverseProxy || s.StickyCookie == "" {
		return nil
	}
	secure := s.StickyCookieSecure || s.EnableSSL
	host := strings.HasPrefix(s.StickyCookie, "__Host-")
	switch {
	case s.StickyCookieSameSite == "None" && !secure:
		return errorf("service '%s': sticky_cookie_samesite None needs Secure, which browsers require of it: enable_ssl, or sticky_cookie_secure = true when TLS ends in front of plb", s.Name)
	case (host || strings.HasPrefix(s.StickyCookie, "__Secure-")) && !secure:
		return errorf("service '%s': a sticky_cookie named %s needs Secure, which browsers require of the prefix: enable_ssl, or sticky_cookie_secure = true when TLS ends in front of plb", s.Name, s.StickyCookie)
	case host && s.StickyCookiePath != "/":
		return errorf("service '%s': a sticky_cookie named %s needs sticky_cookie_path /, which browsers require of the prefix", s.Name, s.StickyCookie)
	}
	return nil
}

// CheckBalancing checks the pools' hash settings against their method and
// users, and the services' sticky cookies: hash needs a hash_key, a
// hash_key needs hash, a pool an smtp_proxy or tcp_proxy uses hashes by
// source_ip only (a relayed session has no URI, header or cookie), and a
// sticky cookie is one browsers keep (checkSticky). Validate runs it; the
// runtime runs it on every Apply too, as the console's SET reaches the
// model without Validate.
func (c *Config) CheckBalancing() error {
	for _, p := range c.Pools {
		place := func(err error) error { return c.at(p.File, p.Line, err) }
		switch {
		case p.BalanceMethod == BalanceHash && p.HashKey == "":
			return place(errorf("pool '%s': balance_method hash needs hash_key (source_ip, uri, header:NAME or cookie:NAME)", p.Name))
		case p.HashKey != "" && p.BalanceMethod != BalanceHash:
			return place(errorf("pool '%s': hash_key is for balance_method hash, not %s", p.Name, p.BalanceMethod))
		}
	}
	for _, s := range c.Services {
		if err := checkSticky(s); err != nil {
			return c.at(s.File, s.Line, err)
		}
		if s.Role != RoleSMTPProxy && s.Role != RoleTCPProxy {
			continue
		}
		if p := c.Pool(s.Pool); p != nil && p.HashKey != "" && p.HashKey != "source_ip" {
			return c.at(s.File, s.Line, errorf("service '%s': a %s hashes by source_ip only (pool '%s' has hash_key %s: a relayed session has no URI, header or cookie)", s.Name, s.Role, p.Name, p.HashKey))
		}
	}
	return nil
}
