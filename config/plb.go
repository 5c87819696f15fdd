package config

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/plb/plb/pool"
)

// PLB 0.3's plb.conf: one "key value" per line, "#" comments, list values
// separated by spaces (reference/plb-smtp.md §1.3). It maps to one pool
// "plb_pool" (servers_ip × servers_port; services and pools share one
// namespace, as in Perlbal, so the pool cannot be "plb" too) and one enabled
// service "plb" whose role follows protocol. With protocol HTTP (the
// default) it is a reverse_proxy with client and backend keep-alive and
// round-robin balancing:
//
//	PLB key                        model
//	listen_ip, listen_port         service plb listen (default 0.0.0.0:80)
//	bind_ipv6 1                    listen on [::] when listen_ip is 0.0.0.0
//	protocol HTTP                  role reverse_proxy
//	servers_ip, servers_port       pool plb_pool nodes (port default 80)
//	server_retry, timeout_cleanup  pool plb_pool
//	check, check_path,             pool plb_pool (plb's extension: health
//	check_interval, rise, fall       checks, see the health package)
//	servers_weight                 plb's extension: a weight per servers_ip,
//	                                 in order (node weight=N)
//	balance_method, hash_key,      pool plb_pool (plb's extension; the
//	hash_balance_factor,             default stays round_robin for HTTP,
//	slow_start                       least_conn for SMTP and TCP)
//	sticky_cookie, sticky_cookie_* service plb (plb's extension; HTTP only)
//	user, group, chroot_dir        Global.User, Group, Chroot
//	log_level, log_file            Global.LogLevel, LogFile
//	max_clients, backlog           Global.MaxClients, Backlog
//	timeout_header_client_read     header_timeout
//	timeout_header_server_write    connect_timeout (connect and send the head)
//	timeout_header_server_read     backend_timeout (wait for the response head)
//	timeout_forward_client_read    idle_timeout: the larger of the two
//	timeout_forward_client_write     client forwarding timeouts
//	timeout_header_client_write    accepted, no effect (idle_timeout bounds it)
//	timeout_forward_server_read    accepted, no effect (backend_timeout and
//	timeout_forward_server_write     the client's idle_timeout bound them)
//
// PLB never implemented protocol SMTP; plb makes it an smtp_proxy, and adds
// protocol TCP, a tcp_proxy. Both balance least_conn (sessions of very
// different lengths) and keep the other keys above; their timeouts default
// to RFC 5321's minutes (§4.5.3.2), not to the sample file's 30 s:
//
//	PLB key                        model (SMTP and TCP)
//	protocol SMTP | TCP            role smtp_proxy | tcp_proxy
//	listen_port, servers_port      SMTP: default 25; TCP: required
//	timeout_header_server_write    connect_timeout (default 5)
//	timeout_header_server_read     SMTP: banner_timeout, the wait for the
//	                                 backend's greeting (default 30);
//	                                 TCP: accepted, no effect
//	timeout_header_client_read     client_timeout: the largest of the four
//	timeout_header_client_write      client timeouts (default 300)
//	timeout_forward_client_read
//	timeout_forward_client_write
//	timeout_forward_server_read    server_timeout: the larger of the two
//	timeout_forward_server_write     (default 600)
//
// Every timeout is integer seconds, whether it has an effect or not.

// isPLBKey reports whether k is a key of PLB's plb.conf.
func isPLBKey(k string) bool {
	switch k {
	case "listen_ip", "listen_port", "bind_ipv6", "protocol", "servers_ip", "servers_port",
		"user", "group", "chroot_dir",
		"timeout_header_client_read", "timeout_header_client_write",
		"timeout_header_server_read", "timeout_header_server_write",
		"timeout_forward_client_read", "timeout_forward_client_write",
		"timeout_forward_server_read", "timeout_forward_server_write",
		"timeout_cleanup", "server_retry", "max_clients", "backlog", "log_level", "log_file",
		"check", "check_path", "check_interval", "rise", "fall":
		return true
	}
	return slices.Contains(plbPoolKeys[:], k) || slices.Contains(plbServiceKeys[:], k)
}

// plbPoolKeys are plb's balancing keys in a PLB file, set on pool
// plb_pool as Perlbal's SET sets them; servers_weight gives its nodes
// their weights.
var plbPoolKeys = [...]string{"servers_weight", "balance_method", "hash_key", "hash_balance_factor", "slow_start"}

// plbServiceKeys are plb's service keys in a PLB file, set on service plb
// (a reverse_proxy's only: an SMTP or TCP service refuses them as
// Perlbal's SET does).
var plbServiceKeys = [...]string{"sticky_cookie", "sticky_cookie_path", "sticky_cookie_max_age",
	"sticky_cookie_httponly", "sticky_cookie_secure", "sticky_cookie_samesite"}

type plbLine struct {
	val  string
	line int
}

// parsePLB reads a PLB "key value" file into the model. It is long
// because PLB's keys map onto the model one by one (a flat table of
// cases, each with its own check and message), not because of logic.
func parsePLB(name string, data []byte, o Options) (*Config, error) {
	keys := map[string]plbLine{}
	n := 0
	for line := range strings.SplitSeq(string(data), "\n") {
		n++
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := fields(line)
		if len(f) == 0 {
			continue
		}
		if !isPLBKey(f[0]) {
			return nil, &Error{File: name, Line: n, Err: errorf("unknown key '%s'", f[0])}
		}
		if len(f) == 1 {
			return nil, &Error{File: name, Line: n, Err: errorf("missing value for '%s'", f[0])}
		}
		if f[0] != "servers_ip" && f[0] != "servers_weight" && len(f) > 2 {
			return nil, &Error{File: name, Line: n, Err: errorf("'%s' takes one value", f[0])}
		}
		keys[f[0]] = plbLine{strings.Join(f[1:], " "), n}
	}
	c := New()
	c.File = name
	c.vivifyOff = true
	ed := newEditor(c, o)
	fail := func(k string, err error) error { return &Error{File: name, Line: keys[k].line, Err: err} }
	get := func(k, def string) string {
		if v, ok := keys[k]; ok {
			return v.val
		}
		return def
	}

	role, ok := plbRole(get("protocol", "HTTP"))
	if !ok {
		return nil, fail("protocol", errorf("unknown protocol '%s' (HTTP, SMTP or TCP)", get("protocol", "")))
	}
	defPort := "80"
	switch role {
	case RoleSMTPProxy:
		defPort = "25"
	case RoleTCPProxy:
		// No port is the natural one: a TCP balancer must say.
		for _, k := range []string{"listen_port", "servers_port"} {
			if _, ok := keys[k]; !ok {
				return nil, fail("protocol", errorf("protocol TCP needs %s (it has no default port)", k))
			}
		}
	}
	// Every timeout is seconds (PLB's integers) or a duration ("30s"),
	// used or not.
	for _, k := range plbTimeouts {
		if v, ok := keys[k]; ok {
			if _, ok := parseDuration(v.val, time.Second); !ok {
				return nil, fail(k, errorf("%s: expecting seconds (300) or a duration (\"5m\")", k))
			}
		}
	}

	// The pool's place, for the errors that concern its keys together
	// (hash and hash_key): the line that chose its method, else 1.
	poolLine := 1
	for _, k := range []string{"hash_key", "balance_method"} {
		if v, ok := keys[k]; ok {
			poolLine = v.line
		}
	}
	pool, _ := ed.createPool("plb_pool", name, poolLine)
	port := get("servers_port", defPort)
	if n, ok := parsePort(port); !ok || n == 0 {
		return nil, fail("servers_port", errorf("invalid port '%s'", port))
	}
	ips := fields(get("servers_ip", ""))
	weights, err := plbWeights(get("servers_weight", ""), len(ips))
	if err != nil {
		return nil, fail("servers_weight", err)
	}
	for i, ip := range ips {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return nil, fail("servers_ip", errorf("invalid server address '%s'", ip))
		}
		node := netip.AddrPortFrom(a, uint16(atoiPort(port))).String()
		if weights != nil && weights[i] != "1" {
			node += " weight=" + weights[i]
		}
		pool.addNode(node)
	}
	pool.BalanceMethod, pool.BalanceMethodSet = BalanceRoundRobin, true
	if role != RoleReverseProxy {
		// Sessions of very different lengths (HAProxy's advice for SMTP).
		pool.BalanceMethod = BalanceLeastConn
	}
	for _, k := range append([]string{"server_retry", "timeout_cleanup", "check", "check_path", "check_interval", "rise", "fall"}, plbPoolKeys[1:]...) {
		if v, ok := keys[k]; ok {
			if err := ed.setPool(pool, k, v.val); err != nil {
				return nil, fail(k, err)
			}
		}
	}

	g := &c.Global
	for _, k := range []string{"user", "group", "chroot_dir", "log_level", "log_file", "max_clients", "backlog"} {
		if v, ok := keys[k]; ok {
			if err := setGlobal(g, k, v.val); err != nil {
				return nil, fail(k, err)
			}
			g.setPlace(k, name, v.line)
		}
	}

	// The service's place, for the errors that concern its keys together
	// (the sticky cookie's): the line of the cookie's name, or of its
	// SameSite, else 1.
	svcLine := 1
	for _, k := range []string{"sticky_cookie", "sticky_cookie_samesite"} {
		if v, ok := keys[k]; ok {
			svcLine = v.line
		}
	}
	s, _ := ed.createService("plb", name, svcLine)
	s.Enabled = true
	if err := ed.setRole(s, role); err != nil {
		return nil, err
	}
	listen, key, err := plbListen(get("listen_ip", "0.0.0.0"), get("listen_port", defPort), get("bind_ipv6", "0"))
	if err != nil {
		return nil, fail(key, err)
	}
	s.Listen = listen
	s.markSet("listen")
	if err := ed.setService(s, "pool", "plb_pool"); err != nil {
		return nil, err
	}
	var timeouts [][2]string // plb key, PLB key
	if role == RoleReverseProxy {
		for _, k := range []string{"persist_client", "persist_backend"} {
			if err := ed.setService(s, k, "on"); err != nil {
				return nil, err
			}
		}
		timeouts = [][2]string{
			{"header_timeout", "timeout_header_client_read"},
			{"connect_timeout", "timeout_header_server_write"},
			{"backend_timeout", "timeout_header_server_read"},
			{"idle_timeout", largest(keys, "timeout_forward_client_read", "timeout_forward_client_write")},
		}
	} else {
		timeouts = [][2]string{
			{"connect_timeout", "timeout_header_server_write"},
			{"client_timeout", largest(keys, "timeout_header_client_read", "timeout_header_client_write",
				"timeout_forward_client_read", "timeout_forward_client_write")},
			{"server_timeout", largest(keys, "timeout_forward_server_read", "timeout_forward_server_write")},
		}
		if role == RoleSMTPProxy {
			timeouts = append(timeouts, [2]string{"banner_timeout", "timeout_header_server_read"})
		}
	}
	for _, t := range timeouts {
		if v, ok := keys[t[1]]; ok {
			if err := ed.setService(s, t[0], v.val); err != nil {
				return nil, fail(t[1], err)
			}
		}
	}
	for _, k := range plbServiceKeys {
		if v, ok := keys[k]; ok {
			if err := ed.setService(s, k, v.val); err != nil {
				return nil, fail(k, err)
			}
		}
	}
	return c, nil
}

// plbWeights checks servers_weight (v; "" none) against the n servers_ip:
// one weight each, 0 to pool.MaxWeight. It returns nil when v is "".
func plbWeights(v string, n int) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	ws := fields(v)
	if len(ws) != n {
		return nil, errorf("servers_weight gives %d weights for %d servers_ip: one each, in order", len(ws), n)
	}
	for i, w := range ws {
		k, ok := parseInt(w)
		if !ok || k > pool.MaxWeight {
			return nil, errorf("invalid weight '%s' (0 to %d)", w, pool.MaxWeight)
		}
		ws[i] = strconv.Itoa(k)
	}
	return ws, nil
}

// plbRole is the role of PLB's protocol key.
func plbRole(protocol string) (string, bool) {
	switch {
	case equalFold(protocol, "HTTP"):
		return RoleReverseProxy, true
	case equalFold(protocol, "SMTP"):
		return RoleSMTPProxy, true
	case equalFold(protocol, "TCP"):
		return RoleTCPProxy, true
	}
	return "", false
}

// plbTimeouts are PLB's eight timeout keys.
var plbTimeouts = [...]string{
	"timeout_header_client_read", "timeout_header_client_write",
	"timeout_header_server_read", "timeout_header_server_write",
	"timeout_forward_client_read", "timeout_forward_client_write",
	"timeout_forward_server_read", "timeout_forward_server_write",
}

// largest returns the one of the PLB keys given with the largest value
// (a duration, checked before), or "" when none is given.
func largest(keys map[string]plbLine, names ...string) string {
	best, most := "", time.Duration(-1)
	for _, k := range names {
		if v, ok := keys[k]; ok {
			if d, ok := parseDuration(v.val, time.Second); ok && d > most {
				best, most = k, d
			}
		}
	}
	return best
}

func atoiPort(p string) int {
	n, _ := parseInt(p)
	return n
}

// plbListen builds the listen address; bind_ipv6 1 turns the IPv4 wildcard
// into the IPv6 one.
// The key returned names the line of an error.
func plbListen(ip, port, v6 string) (string, string, error) {
	if _, ok := parsePort(port); !ok {
		return "", "listen_port", errorf("invalid port '%s'", port)
	}
	if v6 != "0" && v6 != "1" {
		return "", "bind_ipv6", errorf("bind_ipv6 must be 0 or 1")
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "", "listen_ip", errorf("invalid listen address '%s'", ip)
	}
	if v6 == "1" && a == netip.IPv4Unspecified() {
		a = netip.IPv6Unspecified()
	}
	if v6 == "0" && a.Is6() && !a.Is4In6() {
		return "", "listen_ip", errorf("listen_ip %s is IPv6 but bind_ipv6 is 0", ip)
	}
	return netip.AddrPortFrom(a, uint16(atoiPort(port))).String(), "", nil
}
