package config

import (
	"io/fs"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/plb/plb/pool"
)

// kind is a parameter's value type; it decides parsing, the TOML form and
// the dump form.
type kind uint8

const (
	kindBool    kind = iota // Perlbal bool words; TOML bool
	kindInt                 // ^\d+$; TOML integer
	kindSize                // digits with b/k/m; TOML integer (bytes) or string
	kindSeconds             // integer seconds or Go duration; TOML integer or string
	kindMillis              // integer milliseconds or Go duration
	kindString              // any text
	kindList                // list of words; TOML array of strings
	kindRegex               // a regular expression (plugin setters)
)

func (k kind) String() string {
	switch k {
	case kindBool:
		return "bool"
	case kindInt:
		return "int"
	case kindSize:
		return "size"
	case kindSeconds:
		return "duration"
	case kindMillis:
		return "duration_ms"
	case kindList:
		return "list"
	case kindRegex:
		return "regex"
	}
	return "string"
}

func kindOf(name string) kind {
	for k := kindBool; k <= kindRegex; k++ {
		if k.String() == name {
			return k
		}
	}
	return kindString
}

// Param describes one service parameter: its SET/TOML key, the roles it
// applies to ("*" for all), its type, its default in Perlbal syntax ("" for
// none) and a one-line description.
type Param struct {
	Name string
	// Role is "*" (every role), one role, or several separated by commas
	// ("reverse_proxy,smtp_proxy,tcp_proxy").
	Role string

	Type    string // bool, int, size, duration, duration_ms, string, list, regex
	Default string
	Doc     string
	// Values, when set, are the only values allowed (Perlbal's enum
	// check: "Value of '<key>' must be one of: a, b").
	Values []string
	// Match, when set, is a regular expression a value must match
	// (Perlbal's regexp check), else the error MatchMsg.
	Match, MatchMsg string
}

// ServiceParams returns the built-in service parameters in dump order.
func ServiceParams() []Param {
	var out []Param
	for p := range params {
		out = append(out, Param{Name: p.name, Role: p.role, Type: p.kind.String(), Default: p.def, Doc: p.doc,
			Values: p.values})
	}
	return out
}

// setCtx is what a parameter setter may consult.
type setCtx struct {
	cfg *Config
	fs  FS
}

// param is one row of the service parameter table. Simple parameters give a
// field accessor for their kind; the others a custom set and get.
type param struct {
	name string
	role string // "*", one role, or roles separated by commas
	kind kind
	def  string
	doc  string

	b func(*Service) *bool
	i func(*Service) *int
	z func(*Service) *int64
	d func(*Service) *time.Duration
	s func(*Service) *string
	l func(*Service) *[]string

	// values, match and matchMsg check a plugin's values (Param).
	values          []string
	match, matchMsg string

	set    func(c *setCtx, s *Service, v string) error
	get    func(s *Service) any // dump value: bool, int64, string or []string; nil = omit
	noDump bool                 // deprecated alias: never dumped
	head   bool                 // listen, pool, docroot: kept across role changes, dumped first
	also   []string             // other keys it sets (marked as set too)
}

// applies reports whether the parameter may be set on a service of role.
func (p *param) applies(role string) bool {
	if p.role == all {
		return true
	}
	for r := range strings.SplitSeq(p.role, ",") {
		if r == role {
			return true
		}
	}
	return false
}

// roleError is the error for setting the parameter on a service of another
// role: Perlbal's message, which names one role; a parameter of several
// roles lists them ("on a 'reverse_proxy', 'smtp_proxy' or 'tcp_proxy'
// service").
func (p *param) roleError() error {
	roles := strings.Split(p.role, ",")
	names := "'" + roles[len(roles)-1] + "'"
	if len(roles) > 1 {
		names = "'" + strings.Join(roles[:len(roles)-1], "', '") + "' or " + names
	}
	return errorf("The '%s' option can only be set on a %s service", p.name, names)
}

// assign parses v for the parameter and stores it in s. The error is
// Perlbal's message for the type.
func (p *param) assign(c *setCtx, s *Service, v string) error {
	if p.set != nil {
		return p.set(c, s, v)
	}
	switch p.kind {
	case kindBool:
		b, ok := parseBool(v)
		if !ok {
			return kindError(p.kind, p.name)
		}
		*p.b(s) = b
	case kindInt:
		if p.z != nil { // an int64 field
			n, ok := parseUint(v)
			if !ok {
				return kindError(p.kind, p.name)
			}
			*p.z(s) = n
			break
		}
		n, ok := parseInt(v)
		if !ok {
			return kindError(p.kind, p.name)
		}
		*p.i(s) = n
	case kindSize:
		n, ok := parseSize(v)
		if !ok {
			return kindError(p.kind, p.name)
		}
		*p.z(s) = n
	case kindSeconds, kindMillis:
		d, ok := parseDuration(v, p.unit())
		if !ok {
			return kindError(p.kind, p.name)
		}
		*p.d(s) = d
	case kindList:
		*p.l(s) = splitList(v)
	default:
		*p.s(s) = v
	}
	return nil
}

func (p *param) unit() time.Duration {
	if p.kind == kindMillis {
		return time.Millisecond
	}
	return time.Second
}

// value is the parameter's dump value.
func (p *param) value(s *Service) any {
	if p.get != nil {
		return p.get(s)
	}
	switch p.kind {
	case kindBool:
		return *p.b(s)
	case kindInt:
		if p.z != nil {
			return *p.z(s)
		}
		return int64(*p.i(s))
	case kindSize:
		return *p.z(s)
	case kindSeconds, kindMillis:
		return formatDuration(*p.d(s), p.unit())
	case kindList:
		return *p.l(s)
	}
	return *p.s(s)
}

// kindError is Perlbal's message for a value of the wrong type.
func kindError(k kind, key string) error {
	switch k {
	case kindBool:
		return errorf("Expecting boolean value for parameter '%s'", key)
	case kindInt:
		return errorf("Expecting integer value for parameter '%s'", key)
	case kindSeconds:
		// Perlbal: "Expecting integer value for parameter '...'".
		return errorf("parameter '%s' takes seconds (300) or a duration (\"5m\", \"1h30m\", \"1.5s\", \"10 minutes\")", key)
	case kindMillis:
		return errorf("parameter '%s' takes milliseconds (500) or a duration (\"2s\", \"500ms\")", key)
	case kindSize:
		return errorf("Expecting size unit value for parameter '%s' in bytes, or suffixed with 'K' or 'M'", key)
	case kindList:
		return errorf("Expecting a list of values for parameter '%s'", key)
	case kindRegex:
		return errorf("Invalid regular expression")
	}
	return errorf("Expecting string value for parameter '%s'", key)
}

// lookupParam returns the built-in parameter called name.
func lookupParam(name string) (param, bool) {
	for p := range params {
		if p.name == name {
			return p, true
		}
	}
	return param{}, false
}

const (
	all  = "*"
	rp   = RoleReverseProxy
	ws   = RoleWebServer
	mg   = RoleManagement
	sel  = RoleSelector
	smtp = RoleSMTPProxy
	// relays are the roles that balance connections, not requests.
	relays = RoleSMTPProxy + "," + RoleTCPProxy
	// proxies are the roles with a backend pool.
	proxies = RoleReverseProxy + "," + relays
)

// params yields the service parameter table (reference/perlbal.md §1.3 plus
// plb's additions) in dump order. It is the single definition of names,
// roles, types and defaults: the Perlbal interpreter, the TOML loader, the
// PLB loader and the dump all go through it.
func params(yield func(param) bool) {
	b := func(name, role, def, doc string, f func(*Service) *bool) param {
		return param{name: name, role: role, kind: kindBool, def: def, doc: doc, b: f}
	}
	i := func(name, role, def, doc string, f func(*Service) *int) param {
		return param{name: name, role: role, kind: kindInt, def: def, doc: doc, i: f}
	}
	z := func(name, role, def, doc string, f func(*Service) *int64) param {
		return param{name: name, role: role, kind: kindSize, def: def, doc: doc, z: f}
	}
	d := func(name, role, def, doc string, f func(*Service) *time.Duration) param {
		return param{name: name, role: role, kind: kindSeconds, def: def, doc: doc, d: f}
	}
	s := func(name, role, def, doc string, f func(*Service) *string) param {
		return param{name: name, role: role, kind: kindString, def: def, doc: doc, s: f}
	}
	table := []param{
		// Written first in dumps (head).
		{name: "listen", role: all, kind: kindString, doc: "ip:port, [ipv6]:port, :port or port to listen on", head: true,
			set: func(_ *setCtx, s *Service, v string) error {
				l, ok := parseListen(v)
				if !ok {
					return errorf("Listen argument must be ip:port or port. e.g. 192.168.0.1:80 or 81")
				}
				s.Listen = l
				return nil
			},
			get: func(s *Service) any { return s.Listen }},
		{name: "pool", role: proxies, kind: kindString, doc: "pool of backend nodes", head: true,
			set: func(c *setCtx, s *Service, v string) error {
				if c.cfg.Pool(v) == nil {
					return errorf("Pool '%s' not found", v)
				}
				s.Pool = v
				return nil
			},
			get: func(s *Service) any { return s.Pool }},
		{name: "docroot", role: ws, kind: kindString, doc: "document root", head: true,
			set: func(c *setCtx, s *Service, v string) error {
				if !c.isDir(v) || v == "0" {
					return errorf("Directory not found for service %s (docroot %s)", s.Name, v)
				}
				s.Docroot = v
				return nil
			},
			get: func(s *Service) any { return s.Docroot }},

		// All roles.
		b("persist_client", all, "0", "client keep-alive", func(s *Service) *bool { return &s.PersistClient }),
		d("persist_client_idle_timeout", all, "30", "keep-alive idle limit, seconds", func(s *Service) *time.Duration { return &s.PersistClientIdleTimeout }),
		d("idle_timeout", all, "30", "idle limit in other client states, seconds", func(s *Service) *time.Duration { return &s.IdleTimeout }),
		{name: "persist_client_timeout", role: all, kind: kindSeconds, doc: "deprecated: sets both idle timeouts", noDump: true,
			also: []string{"persist_client_idle_timeout", "idle_timeout"},
			set: func(_ *setCtx, s *Service, v string) error {
				t, ok := parseDuration(v, time.Second)
				if !ok {
					return kindError(kindInt, "persist_client_timeout")
				}
				s.PersistClientIdleTimeout, s.IdleTimeout = t, t
				return nil
			}},
		b("always_trusted", all, "0", "trust X-Forwarded-For from every peer", func(s *Service) *bool { return &s.AlwaysTrusted }),
		{name: "trusted_upstream_proxies", role: all, kind: kindList, doc: "comma-separated IPs or CIDR prefixes whose X-Forwarded-For is trusted",
			set: func(_ *setCtx, s *Service, v string) error {
				p, err := parsePrefixList(v, "Error defining trusted upstream proxies: ")
				if err != nil {
					return err
				}
				s.TrustedUpstreamProxies = p
				return nil
			},
			get: func(s *Service) any { return prefixStrings(s.TrustedUpstreamProxies) }},
		b("enable_ssl", all, "0", "TLS on the listener", func(s *Service) *bool { return &s.EnableSSL }),
		{name: "ssl_key_file", role: all, kind: kindString, def: "certs/server-key.pem", doc: "private key PEM file",
			set: fileOrDefault("ssl_key_file", "certs/server-key.pem", func(s *Service) *string { return &s.SSLKeyFile }),
			get: func(s *Service) any { return s.SSLKeyFile }},
		{name: "ssl_cert_file", role: all, kind: kindString, def: "certs/server-cert.pem", doc: "certificate PEM file",
			set: fileOrDefault("ssl_cert_file", "certs/server-cert.pem", func(s *Service) *string { return &s.SSLCertFile }),
			get: func(s *Service) any { return s.SSLCertFile }},
		{name: "ssl_cipher_list", role: all, kind: kindString, def: "ALL:!LOW:!EXP", doc: "OpenSSL-style cipher list, mapped onto Go's TLS 1.2 suites (docs/tls.md)",
			set: func(_ *setCtx, s *Service, v string) error {
				if _, err := CipherSuites(v); err != nil {
					return err
				}
				s.SSLCipherList = v
				return nil
			},
			get: func(s *Service) any { return s.SSLCipherList }},
		{name: "ssl_ca_path", role: all, kind: kindString, doc: "directory of CA certificates",
			set: func(c *setCtx, s *Service, v string) error {
				if !c.isDir(v) {
					return errorf("Directory '%s' not found for 'ssl_ca_path'", v)
				}
				s.SSLCAPath = v
				return nil
			},
			get: func(s *Service) any { return s.SSLCAPath }},
		{name: "ssl_verify_mode", role: all, kind: kindInt, def: "0", doc: "client certificates: 0 none, 1 verify if sent, 3 require (OpenSSL SSL_VERIFY_* bits)",
			set: func(_ *setCtx, s *Service, v string) error {
				n, ok := parseInt(v)
				if !ok || n > 7 {
					return errorf("Expecting integer value between 0 and 7 for parameter 'ssl_verify_mode' (0 none, 1 verify if sent, 3 require)")
				}
				s.SSLVerifyMode = n
				return nil
			},
			get: func(s *Service) any { return int64(s.SSLVerifyMode) }},
		i("ssl_honor_cipher_order", all, "0", "prefer the server's cipher order (accepted; Go orders suites itself)", func(s *Service) *int { return &s.SSLHonorCipherOrder }),
		{name: "ssl_certificates", role: all, kind: kindList, doc: "more certificates, picked by SNI: cert.pem:key.pem pairs (a file holding both: its name alone)",
			set: func(c *setCtx, s *Service, v string) error {
				list := splitList(v)
				for _, e := range list {
					cert, key := SplitCertKey(e)
					for _, f := range []string{cert, key} {
						if !c.isFile(f) {
							return errorf("File '%s' not found for 'ssl_certificates'", f)
						}
					}
				}
				s.SSLCertificates = list
				return nil
			},
			get: func(s *Service) any { return s.SSLCertificates }},
		z("client_sndbuf_size", all, "0", "SO_SNDBUF on accepted sockets (0: leave it)", func(s *Service) *int64 { return &s.ClientSndbufSize }),
		b("server_tokens", all, "1", `"Server:" header on generated responses`, func(s *Service) *bool { return &s.ServerTokens }),
		z("max_chunked_request_size", all, "209715200", "chunked request body limit (0: none)", func(s *Service) *int64 { return &s.MaxChunkedRequestSize }),
		d("header_timeout", all, "30s", "time to read a client request head", func(s *Service) *time.Duration { return &s.HeaderTimeout }),
		s("access_log", rp+","+ws, "", "file of combined-format request lines (reopened on SIGUSR1)", func(s *Service) *string { return &s.AccessLog }),
		i("max_clients", all, "0", "client connections for this service (0: unlimited)", func(s *Service) *int { return &s.MaxClients }),
		b("http2", rp+","+ws+","+sel, "0", "HTTP/2 to clients: unset, a TLS listener offers it by ALPN and a plain one does not; true also takes h2c (prior knowledge) on a plain listener, false turns it off", func(s *Service) *bool { return &s.HTTP2 }),
		{name: "http2_max_concurrent_streams", role: rp + "," + ws + "," + sel, kind: kindInt, def: "100", doc: "requests in progress at once on one HTTP/2 connection (1 to 10000)",
			set: func(_ *setCtx, s *Service, v string) error {
				n, ok := parseInt(v)
				if !ok || n < 1 || n > 10000 {
					return errorf("http2_max_concurrent_streams must be 1 to 10000")
				}
				s.HTTP2MaxConcurrentStreams = n
				return nil
			},
			get: func(s *Service) any { return int64(s.HTTP2MaxConcurrentStreams) }},

		// reverse_proxy.
		b("backend_ssl", rp, "0", "TLS to the backends", func(s *Service) *bool { return &s.BackendSSL }),
		{name: "backend_protocol", role: rp, kind: kindString, def: "http/1.1", values: backendProtocols(), doc: "what the backends speak: http/1.1, h2 (HTTP/2 over TLS, with backend_ssl's keys) or h2c (HTTP/2 in the clear); HTTP/2 multiplexes requests over few connections per node, and carries gRPC",
			set: func(_ *setCtx, s *Service, v string) error {
				for _, w := range backendProtocols() {
					if strings.EqualFold(v, w) {
						s.BackendProtocol = w
						return nil
					}
				}
				return errorf("Value of 'backend_protocol' must be one of: %s", strings.Join(backendProtocols(), ", "))
			},
			get: func(s *Service) any { return s.BackendProtocol }},
		b("backend_ssl_verify", rp, "1", "verify the backends' certificates (backend_ssl)", func(s *Service) *bool { return &s.BackendSSLVerify }),
		{name: "backend_ssl_ca_file", role: rp, kind: kindString, doc: "PEM file of CAs for backend certificates (default: the system's)",
			set: func(c *setCtx, s *Service, v string) error {
				if v != "" && !c.isFile(v) {
					return errorf("File '%s' not found for 'backend_ssl_ca_file'", v)
				}
				s.BackendSSLCAFile = v
				return nil
			},
			get: func(s *Service) any { return s.BackendSSLCAFile }},
		s("backend_ssl_server_name", rp, "", "name sent (SNI) and verified in backend certificates (default: the node's IP)", func(s *Service) *string { return &s.BackendSSLServerName }),
		i("backend_persist_cache", rp, "2", "idle persistent backend connections kept", func(s *Service) *int { return &s.BackendPersistCache }),
		b("persist_backend", rp, "0", "backend keep-alive", func(s *Service) *bool { return &s.PersistBackend }),
		b("verify_backend", rp, "0", "OPTIONS probe on a new backend connection", func(s *Service) *bool { return &s.VerifyBackend }),
		s("verify_backend_path", rp, "*", "path of the verify_backend OPTIONS request", func(s *Service) *string { return &s.VerifyBackendPath }),
		i("max_backend_uses", rp, "0", "requests per backend connection (0: unlimited)", func(s *Service) *int { return &s.MaxBackendUses }),
		i("connect_ahead", rp, "0", "spare pre-connected backends", func(s *Service) *int { return &s.ConnectAhead }),
		i("retries", rp, "2", "times a request is sent again on a fresh connection when its backend connection failed before any response byte", func(s *Service) *int { return &s.Retries }),
		i("max_backend_conns", rp, "0", "backend connections per event loop; beyond, clients queue by priority (0: no cap)", func(s *Service) *int { return &s.MaxBackendConns }),
		d("client_body_timeout", rp, "60s", "time a request body gets, plus a second per client_body_min_rate bytes; past it 408 (0: none)", func(s *Service) *time.Duration { return &s.ClientBodyTimeout }),
		{name: "client_body_min_rate", role: rp, kind: kindInt, def: "500", doc: "bytes/s a request body must keep up to extend client_body_timeout (0: the timeout is the total time)",
			z: func(s *Service) *int64 { return &s.ClientBodyMinRate }},
		z("buffer_dir_size", rp, "1024m", "most bytes the service's responses keep in buffer_dir at once; past it backends are read only as fast as clients take (0: no limit)", func(s *Service) *int64 { return &s.BufferDirSize }),
		z("buffer_size", rp, "256k", "pause backend reads while the client backlog exceeds this", func(s *Service) *int64 { return &s.BufferSize }),
		z("buffer_size_reproxy_url", rp, "50k", "same, for reproxied URLs", func(s *Service) *int64 { return &s.BufferSizeReproxyURL }),
		z("buffer_backend_connect", rp, "100k", "request body bytes buffered before asking for a backend", func(s *Service) *int64 { return &s.BufferBackendConnect }),
		b("buffer_uploads", rp, "0", "spool request bodies to disk", func(s *Service) *bool { return &s.BufferUploads }),
		{name: "buffer_uploads_path", role: rp, kind: kindString, doc: "directory for spooled uploads",
			set: dirParam("buffer_uploads_path", func(s *Service) *string { return &s.BufferUploadsPath }),
			get: func(s *Service) any { return s.BufferUploadsPath }},
		z("buffer_upload_threshold_size", rp, "250k", "spool uploads at least this large (0: no check)", func(s *Service) *int64 { return &s.BufferUploadThresholdSize }),
		d("buffer_upload_threshold_time", rp, "5", "spool uploads estimated to take longer, seconds (0: no check)", func(s *Service) *time.Duration { return &s.BufferUploadThresholdTime }),
		{name: "buffer_upload_threshold_rate", role: rp, kind: kindInt, def: "0", doc: "spool uploads slower than this, bytes/s (0: no check)",
			z: func(s *Service) *int64 { return &s.BufferUploadThresholdRate }},
		i("queue_relief_size", rp, "0", "normal queue length that triggers relief", func(s *Service) *int { return &s.QueueReliefSize }),
		{name: "queue_relief_chance", role: rp, kind: kindInt, def: "0", doc: "percent chance to skip the high-priority queue under relief",
			set: func(_ *setCtx, s *Service, v string) error {
				n, ok := parseInt(v)
				if !ok || n > 100 {
					return errorf("Expecting integer value between 0 and 100, inclusive.")
				}
				s.QueueReliefChance = n
				return nil
			},
			get: func(s *Service) any { return int64(s.QueueReliefChance) }},
		s("high_priority_cookie", rp, "", "cookie that puts a client in the high-priority queue", func(s *Service) *string { return &s.HighPriorityCookie }),
		s("high_priority_cookie_contents", rp, "", "substring the cookie value must contain", func(s *Service) *string { return &s.HighPriorityCookieContents }),
		{name: "sticky_cookie", role: rp, kind: kindString, doc: "cookie that keeps a client on the node that first answered it (sticky sessions; default and \"none\": none)",
			set: func(_ *setCtx, s *Service, v string) error {
				if v == "none" {
					v = ""
				}
				// No '#': it starts a comment in Perlbal's and PLB's syntax.
				if v != "" && (!pool.IsToken(v) || strings.Contains(v, "#")) {
					return errorf("sticky_cookie must be a cookie name: letters, digits and %s", "!$%&'*+-.^_`|~")
				}
				s.StickyCookie = v
				return nil
			},
			get: func(s *Service) any {
				if s.StickyCookie == "" {
					return nil // none: SET cannot write an empty value
				}
				return s.StickyCookie
			}},
		{name: "sticky_cookie_path", role: rp, kind: kindString, def: "/", doc: "Path of the sticky cookie",
			set: func(_ *setCtx, s *Service, v string) error {
				if !validCookiePath(v) {
					return errorf("sticky_cookie_path must start with / and hold no ';', '#', space or control character")
				}
				s.StickyCookiePath = v
				return nil
			},
			get: func(s *Service) any { return s.StickyCookiePath }},
		d("sticky_cookie_max_age", rp, "0", "Max-Age of the sticky cookie, seconds (0: a session cookie)", func(s *Service) *time.Duration { return &s.StickyCookieMaxAge }),
		b("sticky_cookie_httponly", rp, "1", "HttpOnly on the sticky cookie", func(s *Service) *bool { return &s.StickyCookieHTTPOnly }),
		b("sticky_cookie_secure", rp, "0", "Secure on the sticky cookie on a plain listener too (TLS ended in front of plb); a TLS listener always sets it", func(s *Service) *bool { return &s.StickyCookieSecure }),
		{name: "sticky_cookie_samesite", role: rp, kind: kindString, def: "Lax", values: sameSites(), doc: "SameSite of the sticky cookie: Lax, Strict, None (needs Secure) or off",
			set: func(_ *setCtx, s *Service, v string) error {
				for _, w := range sameSites() {
					if strings.EqualFold(v, w) {
						s.StickyCookieSameSite = w
						return nil
					}
				}
				return errorf("Value of 'sticky_cookie_samesite' must be one of: %s", strings.Join(sameSites(), ", "))
			},
			get: func(s *Service) any { return s.StickyCookieSameSite }},
		b("blind_proxy", rp, "0", "leave X-Forwarded-For alone for trusted peers", func(s *Service) *bool { return &s.BlindProxy }),
		b("enable_reproxy", rp, "0", "honour X-REPROXY-* response headers", func(s *Service) *bool { return &s.EnableReproxy }),
		i("reproxy_cache_maxsize", rp, "0", "X-REPROXY-CACHE-FOR entries", func(s *Service) *int { return &s.ReproxyCacheMaxsize }),
		{name: "upload_status_listeners", role: rp, kind: kindList, doc: "UDP ip:port targets for upload progress",
			set: func(_ *setCtx, s *Service, v string) error {
				var out []string
				for _, f := range splitComma(v) {
					ap, ok := parseAddrPort(f)
					if !ok || !ap.Addr().Is4() {
						return errorf("Invalid UDP endpoint: \"%s\".  Must be of form a.b.c.d:port", f)
					}
					out = append(out, ap.String())
				}
				s.UploadStatusListeners = out
				return nil
			},
			get: func(s *Service) any { return s.UploadStatusListeners }},
		b("enable_error_retries", rp, "0", "retry GET/HEAD after a backend 500", func(s *Service) *bool { return &s.EnableErrorRetries }),
		{name: "error_retry_schedule", role: rp, kind: kindList, def: "0,.25,.50,1,1,1,1,1", doc: "delays before each retry, comma-separated seconds",
			set: func(_ *setCtx, s *Service, v string) error {
				ds, ok := parseSecondsList(v)
				if !ok {
					return errorf("Expecting comma-separated seconds for parameter 'error_retry_schedule'")
				}
				s.ErrorRetrySchedule = ds
				return nil
			},
			get: func(s *Service) any {
				f := make([]string, len(s.ErrorRetrySchedule))
				for i, d := range s.ErrorRetrySchedule {
					f[i] = formatSeconds(d)
				}
				return strings.Join(f, ",")
			}},
		{name: "server_process", role: rp, kind: kindString, doc: "program speaking HTTP on stdin/stdout, one per backend connection",
			set: func(c *setCtx, s *Service, v string) error {
				if !c.isExecutable(v) {
					return errorf("Server process (%s) not executable.", v)
				}
				s.ServerProcess = v
				return nil
			},
			get: func(s *Service) any { return s.ServerProcess }},
		d("connect_timeout", proxies, "5s", "backend connect limit", func(s *Service) *time.Duration { return &s.ConnectTimeout }),
		d("backend_timeout", rp, "60s", "wait for a backend response head", func(s *Service) *time.Duration { return &s.BackendTimeout }),
		{name: "buffer_dir", role: rp, kind: kindString, doc: "spool directory for spoon-feeding (default: the system temp dir)",
			set: dirParam("buffer_dir", func(s *Service) *string { return &s.BufferDir }),
			get: func(s *Service) any { return s.BufferDir }},

		// web_server.
		b("dirindexing", ws, "0", "list directories", func(s *Service) *bool { return &s.DirIndexing }),
		{name: "index_files", role: ws, kind: kindList, def: "index.html", doc: "files served for a directory, in order",
			l: func(s *Service) *[]string { return &s.IndexFiles }},
		b("enable_put", ws, "0", "allow PUT", func(s *Service) *bool { return &s.EnablePut }),
		b("enable_delete", ws, "0", "allow DELETE", func(s *Service) *bool { return &s.EnableDelete }),
		b("enable_md5", ws, "1", "check Content-MD5 on PUT", func(s *Service) *bool { return &s.EnableMD5 }),
		z("max_put_size", ws, "0", "largest PUT body (0: unlimited)", func(s *Service) *int64 { return &s.MaxPutSize }),
		i("min_put_directory", ws, "0", "directory levels that must exist for a PUT", func(s *Service) *int { return &s.MinPutDirectory }),
		b("enable_concatenate_get", ws, "0", "serve ?? concatenated files", func(s *Service) *bool { return &s.EnableConcatenateGet }),

		// smtp_proxy and tcp_proxy (with pool and connect_timeout above).
		{name: "client_ip_forwarding", role: relays, kind: kindString, def: ForwardNone, values: forwardings(),
			doc: "how a backend learns the client's address: none, proxy_v1, proxy_v2 (PROXY protocol header) or xclient (smtp_proxy: Postfix XCLIENT)",
			set: func(_ *setCtx, s *Service, v string) error {
				v = toLowerASCII(v)
				if !slices.Contains(forwardings(), v) {
					return errorf("Value of 'client_ip_forwarding' must be one of: %s", strings.Join(forwardings(), ", "))
				}
				if v == ForwardXClient && s.Role == RoleTCPProxy {
					return errXClientTCP(s.Name)
				}
				s.ClientIPForwarding = v
				return nil
			},
			get: func(s *Service) any { return s.ClientIPForwarding }},
		d("client_timeout", relays, "300", "how long the client may stay silent when it is its turn, seconds (0: no limit)", func(s *Service) *time.Duration { return &s.ClientTimeout }),
		d("server_timeout", relays, "600", "how long a backend may stay silent when it is its turn, seconds (0: no limit)", func(s *Service) *time.Duration { return &s.ServerTimeout }),
		d("banner_timeout", smtp, "30", "wait for a backend's 2xx greeting before trying the next node, seconds", func(s *Service) *time.Duration { return &s.BannerTimeout }),
		{name: "smtp_hostname", role: smtp, kind: kindString, doc: "name in plb's 421 reply and in the EHLO it sends (default: the host name)",
			set: func(_ *setCtx, s *Service, v string) error {
				if !validSMTPHostname(v) {
					return errorf("smtp_hostname must be a domain name or an address literal such as [192.0.2.1]")
				}
				s.SMTPHostname = v
				return nil
			},
			get: func(s *Service) any { return s.SMTPHostname }},
		b("smtp_reject_early_talkers", smtp, "0", "answer 554 and close a client that talks before the greeting (else its bytes wait for it)", func(s *Service) *bool { return &s.SMTPRejectEarlyTalkers }),
		b("smtp_starttls", smtp, "0", "answer STARTTLS in plb with ssl_cert_file/ssl_key_file (else it passes through; with xclient it is withheld)", func(s *Service) *bool { return &s.SMTPStartTLS }),

		// selector.
		{name: "default_service", role: sel, kind: kindString, doc: "service used when no selector rule matches",
			set: func(c *setCtx, s *Service, v string) error {
				if c.cfg.Service(v) == nil {
					return errorf("Service '%s' not found", v)
				}
				s.DefaultService = v
				return nil
			},
			get: func(s *Service) any { return s.DefaultService }},
		{name: "latency", role: sel, kind: kindMillis, def: "0", doc: "delay added before selection, milliseconds",
			d: func(s *Service) *time.Duration { return &s.Latency }},

		// management.
		{name: "allow", role: mg, kind: kindList, doc: "comma-separated IPs or CIDR prefixes allowed to connect (default: all; required when listening beyond loopback)",
			set: func(_ *setCtx, s *Service, v string) error {
				p, err := parsePrefixList(v, "Error defining allow: ")
				if err != nil {
					return err
				}
				s.Allow = p
				return nil
			},
			get: func(s *Service) any { return prefixStrings(s.Allow) }},
	}
	for _, p := range table {
		if !yield(p) {
			return
		}
	}
}

// backendProtocols are the values of backend_protocol.
func backendProtocols() []string { return []string{"http/1.1", "h2", "h2c"} }

// sameSites are the values of sticky_cookie_samesite.
func sameSites() []string { return []string{"Lax", "Strict", "None", "off"} }

// validCookiePath reports whether v may be a cookie's Path attribute: an
// absolute path (RFC 6265 5.1.4) with no byte that would end the
// attribute or the header (';', controls), no space, and no '#' (a
// comment in Perlbal's and PLB's syntax; a URL's path has none).
func validCookiePath(v string) bool {
	if !strings.HasPrefix(v, "/") {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c == ';' || c == '#' || c >= 0x7f {
			return false
		}
	}
	return true
}

// forwardings are the values of client_ip_forwarding.
func forwardings() []string {
	return []string{ForwardNone, ForwardProxyV1, ForwardProxyV2, ForwardXClient}
}

// errXClientTCP refuses XCLIENT on a tcp_proxy: it is an SMTP command, sent
// after the backend's greeting, which only an smtp_proxy waits for.
func errXClientTCP(service string) error {
	return errorf("client_ip_forwarding xclient needs an smtp_proxy (XCLIENT is an SMTP command); service '%s' is a tcp_proxy: use proxy_v1 or proxy_v2", service)
}

// validSMTPHostname reports whether v may follow EHLO and start plb's own
// replies (RFC 5321 Domain or address-literal): "" (the host name), a name
// of letters, digits, "-", "_" and ".", or "[...]" without spaces.
func validSMTPHostname(v string) bool {
	if len(v) > 255 {
		return false
	}
	if len(v) > 2 && v[0] == '[' && v[len(v)-1] == ']' {
		for i := 1; i < len(v)-1; i++ {
			if c := v[i]; c <= ' ' || c >= 0x7f || c == '[' || c == ']' {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func parsePrefixList(v, msg string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range splitComma(v) {
		p, ok := parsePrefix(f)
		if !ok {
			return nil, errorf("%scould not parse %s", msg, f)
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, errorf("%sNone found", msg)
	}
	return out, nil
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func fileOrDefault(key, def string, f func(*Service) *string) func(*setCtx, *Service, string) error {
	return func(c *setCtx, s *Service, v string) error {
		if v != def && !c.isFile(v) {
			return errorf("File '%s' not found for '%s'", v, key)
		}
		*f(s) = v
		return nil
	}
}

func dirParam(key string, f func(*Service) *string) func(*setCtx, *Service, string) error {
	return func(c *setCtx, s *Service, v string) error {
		if !c.isDir(v) {
			return errorf("Directory (%s) not found for service %s (%s)", v, s.Name, key)
		}
		*f(s) = v
		return nil
	}
}

func (c *setCtx) stat(name string) fs.FileInfo {
	if name == "" || c.fs == nil {
		return nil
	}
	fi, err := c.fs.Stat(name)
	if err != nil {
		return nil
	}
	return fi
}

func (c *setCtx) isDir(name string) bool {
	fi := c.stat(name)
	return fi != nil && fi.IsDir()
}

func (c *setCtx) isFile(name string) bool {
	fi := c.stat(name)
	return fi != nil && fi.Mode().IsRegular()
}

func (c *setCtx) isExecutable(name string) bool {
	fi := c.stat(name)
	return fi != nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
