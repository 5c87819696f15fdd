package config

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/plb/plb/pool"
)

// Config is the typed model every syntax produces: global settings, pools and
// services in creation order. Create one with New; the zero value lacks the
// global defaults. A Config is not safe for concurrent mutation: the runtime
// keeps immutable snapshots (Clone) and edits a fresh clone.
type Config struct {
	Global   Global
	Pools    []*Pool    // in creation order; look up with Pool
	Services []*Service // in creation order; look up with Service
	Loaded   []string   // plugins LOADed, names as given
	// Defaults holds DEFAULT key = value (Perlbal) or [defaults] (TOML):
	// values applied to a service when its role is set, instead of the
	// built-in defaults. Values are kept as written and checked only when
	// applied.
	Defaults map[string]string
	File     string // source file

	// roles are the roles the LOADed plugins add, recorded at LOAD time
	// (the plugin lookup belongs to the loader, not to the model).
	roles []pluginRole

	// vivifyOff records that a pool was created explicitly (CREATE POOL or
	// TOML): from then on a service's nodefile/balance_method no longer
	// auto-creates "<service>_pool" (Perlbal's legacy auto-vivification).
	vivifyOff bool
}

// Global holds process-wide settings.
type Global struct {
	// Workers is the number of event loops (default 0: one per CPU,
	// GOMAXPROCS). Perlbal: SERVER workers = N; TOML [global] workers.
	Workers int
	// LogLevel is PLB's 0..3: 0 debug, 1 info, 2 warnings and errors, 3 fatal
	// errors only (default -1: unset, so the -d flag or the built-in 2 apply).
	LogLevel int
	LogFile  string // log file (default "": stderr)
	PidFile  string // pid file (default "": none); Perlbal SERVER pidfile
	User     string // user to switch to after binding (default "": stay)
	Group    string // group to switch to after binding (default "": stay)
	Chroot   string // directory to chroot to after binding (default "": none); PLB chroot_dir
	// MaxClients caps client connections over all services (default 0:
	// unlimited); PLB max_clients.
	MaxClients int
	// Backlog is the listen(2) backlog (default 1024).
	Backlog int
	// MaxConnections raises RLIMIT_NOFILE (default 0: leave it);
	// Perlbal SERVER max_connections.
	MaxConnections int
	// ShutdownGrace is shutdown_grace, seconds: on a graceful stop plb goes
	// on serving this long with GET /healthz answering 503, so that a
	// keepalived peer or an upstream balancer moves traffic away before
	// the listeners close (default 0: drain at once).
	ShutdownGrace int
	// AIOMode is Perlbal's SERVER aio_mode (default "": unset). Only "none"
	// is accepted: "ioaio" fails with "IO::AIO not available", so Perlbal's
	// tests skip their IO::AIO pass.
	AIOMode string
	// Extra keeps the other accepted SERVER keys that have no effect yet
	// (aio_threads, nice_level, track_obj, crash_backtrace,
	// max_reproxy_connections, max_reproxy_connections(host:port)) so that
	// dumps round-trip.
	Extra map[string]string
	// Places records where each key was last set, for the errors of checks
	// that come after parsing (plb -n's on user, group and chroot_dir; see
	// Config.GlobalError). Not dumped.
	Places map[string]Place
}

// Pool is a named list of backend nodes.
type Pool struct {
	Name string
	// Nodes are "ip:port" strings (IPv6 as "[::1]:80"); the port defaults
	// to 80. With NodeFile set they are the file's nodes as read at parse
	// time.
	Nodes []string
	// NodeFile is a file of nodes, one per line (default "": none). The
	// config loads it once at parse time; the runtime re-reads it when it
	// changes (ParseNodeList parses it).
	NodeFile string
	// NodesFrom is nodes_from (plb): where the nodes come from at run
	// time, "dns:NAME:PORT" (A and AAAA answers) or "srv:NAME" (SRV
	// answers, with their weights), asked again at the answers' TTL
	// (default "": the nodes or nodefile). Nodes, when also given, are the
	// list to start with when the first question fails.
	NodesFrom string
	// DNSServer is dns_server (plb): the "ip:port" nodes_from asks
	// (default "": the name servers of /etc/resolv.conf).
	DNSServer string
	// EtcdUsername and EtcdPassword are etcd_username and etcd_password
	// (plb): who an etcd nodes_from reads as (default "": no
	// authentication); EtcdCAFile is etcd_ca_file, the CAs of an https
	// etcd (default "": the system's); EtcdCertFile and EtcdKeyFile are
	// etcd_cert_file and etcd_key_file, a client certificate for an etcd
	// that asks for one (default "": none).
	EtcdUsername, EtcdPassword, EtcdCAFile string
	EtcdCertFile, EtcdKeyFile              string
	// BalanceMethod is "idle_first" (default: Perlbal's random, an idle
	// connection first, to a node not much busier than the least busy
	// one, else a new one to the least busy node),
	// "random", "round_robin" or "least_conn" (these pick the node for
	// every request, then reuse an idle connection to it). PLB's file
	// sets round_robin (protocol HTTP) or least_conn (SMTP, TCP).
	BalanceMethod string
	// BalanceMethodSet reports that balance_method was given. Otherwise
	// the runtime may choose: least_conn for a pool that only smtp_proxy
	// and tcp_proxy services use (their sessions last).
	BalanceMethodSet bool
	// ServerRetry is the number of consecutive failures before a node is
	// marked down (default 5).
	ServerRetry int
	// TimeoutCleanup is how often a down node is probed (default 15s).
	TimeoutCleanup time.Duration
	// Check is the probe of down nodes and of active checks: "tcp" (default,
	// a connect), "http" (OPTIONS *, or GET CheckPath, expecting 2xx or
	// 3xx) or "smtp" (CheckSMTP).
	Check string
	// CheckPath is what an "http" check GETs (default "": OPTIONS *).
	CheckPath string
	// CheckInterval is how often nodes that are up are checked (default 0:
	// never, as PLB; only traffic marks them down).
	CheckInterval time.Duration
	// Rise is how many consecutive good probes bring a down node back
	// (default 1, as PLB).
	Rise int
	// Fall is how many consecutive failed active checks mark an up node
	// down (default 3, as HAProxy).
	Fall int
	// HashKey is what of a request balance_method hash picks by:
	// "source_ip", "uri", "header:NAME" or "cookie:NAME" (pool.ParseHashKey;
	// default "": none, which hash refuses).
	HashKey string
	// BalanceFactor is hash's bounded-load factor in percent: no node
	// takes more than that share of its due of the requests in flight
	// (default pool.DefaultBalanceFactor, 125; 0: unbounded).
	BalanceFactor int
	// SlowStart is how long a node that comes back up, is added or gets a
	// higher weight takes to reach its share (default 0: at once;
	// HAProxy's slowstart).
	SlowStart time.Duration
	File      string // file where the pool was created
	Line      int    // line where the pool was created
}

// Service roles.
const (
	RoleReverseProxy = "reverse_proxy"
	RoleWebServer    = "web_server"
	RoleManagement   = "management"
	RoleSelector     = "selector"
	// RoleSMTPProxy is the SMTP relay front: silent to the client until a
	// backend gave a 2xx banner, then a byte splice (package smtp).
	RoleSMTPProxy = "smtp_proxy"
	// RoleTCPProxy is a plain TCP balancer (package smtp, without the
	// banner logic).
	RoleTCPProxy = "tcp_proxy"
	// RoleEcho is the line echo server the EchoService plugin adds.
	RoleEcho = "echo"
)

// Client address forwarding of smtp_proxy and tcp_proxy
// (client_ip_forwarding).
const (
	ForwardNone    = "none"
	ForwardProxyV1 = "proxy_v1" // HAProxy's PROXY protocol, text
	ForwardProxyV2 = "proxy_v2" // PROXY protocol, binary
	ForwardXClient = "xclient"  // Postfix XCLIENT (smtp_proxy only)
)

// Pool checks (the check key).
const (
	CheckTCP  = "tcp"
	CheckHTTP = "http"
	// CheckSMTP is HAProxy's smtpchk: 2xx banner, EHLO, 2xx, QUIT. A pool
	// used by an smtp_proxy service is probed so even when its check is
	// the default tcp.
	CheckSMTP = "smtp"
)

// Pool balance methods: pool's names (pool.Methods is the one list, one
// file per method there), under config's names. config imports pool for
// them; pool imports no plb package, so this makes no cycle, and pool
// must not import config.
const (
	BalanceIdleFirst  = pool.MethodIdleFirst
	BalanceRandom     = pool.MethodRandom
	BalanceRoundRobin = pool.MethodRoundRobin
	BalanceLeastConn  = pool.MethodLeastConn
	BalanceHash       = pool.MethodHash
)

// knownBalanceMethod reports whether m is one of the balance methods, by
// its name: the aliases pool also accepts ("roundrobin") are not valid
// in a configuration.
func knownBalanceMethod(m string) bool {
	return slices.Contains(BalanceMethods(), m)
}

// Service is a listener with a role. Each parameter field names its
// configuration key (Perlbal's SET name, also the TOML key), the roles it
// applies to, and its default; setting the role resets every parameter to
// its default (Perlbal's semantics), keeping only listen, and pool or
// docroot if the new role uses them.
type Service struct {
	Name string
	// Role is reverse_proxy, web_server, management, selector, smtp_proxy,
	// tcp_proxy or a LOADed plugin's (default "": none yet; an enabled
	// service needs one).
	Role string
	// Listen is "ip:port", "[ipv6]:port" or ":port" (all interfaces);
	// Perlbal's bare "port" is stored as ":port" (default "": not listening,
	// reachable only through a selector). Key listen, all roles.
	Listen string
	// Enabled: the runtime listens (ENABLE/DISABLE; TOML enabled, default
	// true in TOML, false in Perlbal until ENABLE).
	Enabled bool
	// Pool names the backend pool (reverse_proxy, smtp_proxy, tcp_proxy;
	// default ""; an enabled service of these roles needs one).
	Pool string
	// Docroot is the web server's document root (web_server; default "").
	// A trailing "/" is kept, as Perlbal does.
	Docroot string

	// All roles.
	PersistClient            bool           // persist_client: client keep-alive (default false)
	PersistClientIdleTimeout time.Duration  // persist_client_idle_timeout: keep-alive idle limit (default 30s)
	IdleTimeout              time.Duration  // idle_timeout: idle limit in other client states (default 30s)
	AlwaysTrusted            bool           // always_trusted: trust X-Forwarded-For from every peer (default false)
	TrustedUpstreamProxies   []netip.Prefix // trusted_upstream_proxies: peers whose X-Forwarded-For is trusted (default none)
	EnableSSL                bool           // enable_ssl: TLS on the listener (default false)
	SSLKeyFile               string         // ssl_key_file (default "certs/server-key.pem")
	SSLCertFile              string         // ssl_cert_file (default "certs/server-cert.pem")
	SSLCipherList            string         // ssl_cipher_list (default "ALL:!LOW:!EXP")
	SSLCAPath                string         // ssl_ca_path (default "")
	SSLVerifyMode            int            // ssl_verify_mode (default 0)
	SSLHonorCipherOrder      int            // ssl_honor_cipher_order (default 0; accepted, no effect: Go orders suites)
	SSLCertificates          []string       // ssl_certificates (plb): more "cert.pem:key.pem" (or one both-in-one file) picked by SNI; else ssl_cert_file's (default none)
	ClientSndbufSize         int64          // client_sndbuf_size: SO_SNDBUF on accepted sockets (default 0: unset)
	ServerTokens             bool           // server_tokens: "Server:" on generated responses (default true)
	MaxChunkedRequestSize    int64          // max_chunked_request_size (default 209715200; 0 = unlimited)
	HeaderTimeout            time.Duration  // header_timeout (plb): time to read a client request head (default 30s)
	// AccessLog is access_log (plb; reverse_proxy, web_server): a file that
	// gets one combined-format line per request (default "": none).
	AccessLog  string
	MaxClients int // max_clients (plb): client connections for this service (default 0: unlimited)
	// HTTP2 is http2 (plb; reverse_proxy, web_server, selector): HTTP/2
	// to clients. Unset, a TLS listener offers it (ALPN h2) and a plain
	// one does not; set, it decides (HTTP2On).
	HTTP2 bool
	// HTTP2MaxConcurrentStreams is http2_max_concurrent_streams (plb):
	// requests in progress at once on one HTTP/2 connection (default 100).
	HTTP2MaxConcurrentStreams int

	// reverse_proxy.
	BackendSSL           bool   // backend_ssl (plb): TLS to the backends (default false)
	BackendSSLVerify     bool   // backend_ssl_verify (plb): verify backend certificates (default true)
	BackendSSLCAFile     string // backend_ssl_ca_file (plb): CAs for backend certificates (default "": the system's)
	BackendSSLServerName string // backend_ssl_server_name (plb): SNI and verified name (default "": the node's IP)
	// BackendProtocol is backend_protocol (plb): what the backends speak,
	// "http/1.1" (default), "h2" (HTTP/2 over TLS, ALPN h2; the TLS keys
	// are backend_ssl's) or "h2c" (HTTP/2 in the clear, prior knowledge).
	BackendProtocol            string
	BackendPersistCache        int             // backend_persist_cache: idle persistent backend conns kept (default 2)
	PersistBackend             bool            // persist_backend: backend keep-alive (default false)
	VerifyBackend              bool            // verify_backend: OPTIONS probe on new backend conns (default false)
	VerifyBackendPath          string          // verify_backend_path (default "*")
	MaxBackendUses             int             // max_backend_uses: requests per backend conn (default 0: unlimited)
	ConnectAhead               int             // connect_ahead: spare pre-connected backends (default 0)
	Retries                    int             // retries: times a request is sent again after its backend connection failed before any response byte (default 2)
	MaxBackendConns            int             // max_backend_conns (plb): backend connections per event loop; beyond, clients wait in the priority queues (default 0: no cap)
	BufferSize                 int64           // buffer_size: pause backend reads above this client backlog (default 256k)
	BufferDirSize              int64           // buffer_dir_size (plb): spool bytes of all the service's responses at once; past it, backpressure (default 1024m; 0: no limit)
	ClientBodyTimeout          time.Duration   // client_body_timeout (plb): time a request body gets before 408, extended by client_body_min_rate (default 60s; 0: none)
	ClientBodyMinRate          int64           // client_body_min_rate (plb): bytes per second that extend client_body_timeout by one second (default 500; 0: the timeout is the total)
	BufferSizeReproxyURL       int64           // buffer_size_reproxy_url (default 50k)
	BufferBackendConnect       int64           // buffer_backend_connect: body bytes buffered before asking for a backend (default 100k)
	BufferUploads              bool            // buffer_uploads: spool request bodies to disk (default false)
	BufferUploadsPath          string          // buffer_uploads_path: spool directory (default "")
	BufferUploadThresholdSize  int64           // buffer_upload_threshold_size (default 250k; 0 disables)
	BufferUploadThresholdTime  time.Duration   // buffer_upload_threshold_time (default 5s; 0 disables)
	BufferUploadThresholdRate  int64           // buffer_upload_threshold_rate, bytes/s (default 0: disabled)
	QueueReliefSize            int             // queue_relief_size (default 0)
	QueueReliefChance          int             // queue_relief_chance, 0..100 (default 0)
	HighPriorityCookie         string          // high_priority_cookie (default "")
	HighPriorityCookieContents string          // high_priority_cookie_contents (default "")
	StickyCookie               string          // sticky_cookie (plb): the cookie that keeps a client on its node (default "": none)
	StickyCookiePath           string          // sticky_cookie_path (plb): its Path (default "/")
	StickyCookieMaxAge         time.Duration   // sticky_cookie_max_age (plb): its Max-Age (default 0: a session cookie)
	StickyCookieHTTPOnly       bool            // sticky_cookie_httponly (plb): HttpOnly (default true)
	StickyCookieSecure         bool            // sticky_cookie_secure (plb): Secure on a plain listener too; a TLS one always sets it (default false)
	StickyCookieSameSite       string          // sticky_cookie_samesite (plb): Lax, Strict, None or off (default Lax)
	BlindProxy                 bool            // blind_proxy: leave X-Forwarded-For alone for trusted peers (default false)
	EnableReproxy              bool            // enable_reproxy: honour X-REPROXY-* (default false)
	ReproxyCacheMaxsize        int             // reproxy_cache_maxsize (default 0)
	UploadStatusListeners      []string        // upload_status_listeners: UDP "ip:port" targets (default none)
	EnableErrorRetries         bool            // enable_error_retries: retry GET/HEAD after a backend 500 (default false)
	ErrorRetrySchedule         []time.Duration // error_retry_schedule (default 0,.25,.50,1,1,1,1,1 seconds)
	ServerProcess              string          // server_process (default "")
	ConnectTimeout             time.Duration   // connect_timeout (plb; also smtp_proxy, tcp_proxy): backend connect limit (default 5s)
	BackendTimeout             time.Duration   // backend_timeout (plb): wait for a backend response head (default 60s)
	// BufferDir (plb buffer_dir) is the spool directory for spoon-feeding
	// (default "": os.TempDir() at run time).
	BufferDir string

	// web_server.
	DirIndexing          bool     // dirindexing (default false)
	IndexFiles           []string // index_files (default index.html)
	EnablePut            bool     // enable_put (default false)
	EnableDelete         bool     // enable_delete (default false)
	EnableMD5            bool     // enable_md5: check Content-MD5 on PUT (default true)
	MaxPutSize           int64    // max_put_size (default 0: unlimited)
	MinPutDirectory      int      // min_put_directory (default 0)
	EnableConcatenateGet bool     // enable_concatenate_get (default false)

	// smtp_proxy and tcp_proxy (Pool and ConnectTimeout above apply too;
	// PLB's timeout_* keys map onto these, see plb.go). Durations are
	// integer seconds or Go durations, as the other timeouts.
	// ClientIPForwarding is client_ip_forwarding: none, proxy_v1, proxy_v2
	// or xclient (smtp_proxy only: the parsers and Validate refuse it on a
	// tcp_proxy) (default none; "" in a model built by hand means none).
	ClientIPForwarding string
	// ClientTimeout is client_timeout: how long the client may stay silent
	// when it is its turn to talk (after the backend last sent) (default
	// 5m: RFC 5321 4.5.3.2.7, a server waits 5 minutes for a command; 0:
	// no limit).
	ClientTimeout time.Duration
	// ServerTimeout is server_timeout: how long the backend may stay silent
	// when it is its turn (after the client last sent) (default 10m: RFC
	// 5321 4.5.3.2.6, the reply to the final dot; 0: no limit).
	ServerTimeout time.Duration
	// BannerTimeout is banner_timeout (smtp_proxy): wait for a backend's
	// greeting before trying the next node (default 30s; see README).
	BannerTimeout time.Duration
	// SMTPHostname is smtp_hostname (smtp_proxy): the name in plb's 421
	// and in the EHLO it sends for XCLIENT and health checks (default "":
	// the host name).
	SMTPHostname string
	// SMTPRejectEarlyTalkers is smtp_reject_early_talkers (smtp_proxy): a
	// client that talks before the banner gets 554 and is closed (default
	// false: its bytes are held and delivered after the banner).
	SMTPRejectEarlyTalkers bool
	// SMTPStartTLS is smtp_starttls (smtp_proxy): plb answers STARTTLS
	// itself with the service's ssl_cert_file/ssl_key_file (and
	// ssl_certificates) and reads the commands inside (default false:
	// STARTTLS passes through to the backend, except with xclient, where
	// plb must read every command and withholds it).
	SMTPStartTLS bool

	// selector.
	DefaultService string        // default_service (default "")
	Latency        time.Duration // latency: added before selection, integer milliseconds (default 0)

	// management.
	// Allow (plb allow) lists the networks allowed to connect (default
	// none: everyone, as Perlbal; a service listening beyond loopback must
	// name someone, see CheckManagementAccess).
	Allow []netip.Prefix

	// Headers are HEADER INSERT/REMOVE rules, in order. The runtime applies
	// the removes first, then the inserts (each replaces).
	Headers []HeaderRule
	// Plugins are registered with SET plugins, in order (names as LOADed).
	Plugins []string
	// Vhosts are VHOST pattern = service rules (selector with Vhosts).
	// Patterns are lower-case.
	Vhosts []VhostRule
	// Vpaths are VPATH regex = service rules, first match wins (selector
	// with Vpaths).
	Vpaths []VpathRule
	// AccessPolicy is ACCESS POLICY: "allow" or "deny" (default "": allow).
	AccessPolicy string
	// Access are ACCESS ALLOW|DENY|QUEUE_LOW rules, first match wins.
	Access []AccessRule
	// Redirects are REDIRECT HOST rules (Redirect plugin).
	Redirects []RedirectRule
	// Extra holds free-form and plugin values keyed by the SET key as
	// written: "extra.<k>" (SET extra.k), plugin tunables such as
	// "max_content_length", and plugin setters "<plugin>.<key>" such as
	// "accesscontrol.use_observed_ip" (lower-case plugin name).
	Extra map[string]string
	// Set records the keys set explicitly (not by a default): dumps write
	// exactly these.
	Set  map[string]bool
	File string // file where the service was created
	Line int    // line where the service was created
}

// HeaderRule is one HEADER <svc> INSERT|REMOVE rule.
type HeaderRule struct {
	Insert bool   // insert (replace) the header; else remove it
	Name   string // header name
	Value  string // value to insert
}

// VhostRule maps a Host pattern to a service (Vhosts plugin).
type VhostRule struct {
	Pattern string // host, "*.host" or "*", lower-case
	Service string // target service
}

// VpathRule maps a URI regular expression to a service (Vpaths plugin).
type VpathRule struct {
	Regex   string // Go (RE2) syntax
	Service string // target service
}

// AccessRule is one AccessControl rule.
type AccessRule struct {
	Action string // "allow", "deny" or "queue_low"
	Kind   string // "ip" or "netmask"
	Value  string // the IP, or the netmask as a CIDR prefix
}

// RedirectRule is one REDIRECT HOST rule (Redirect plugin): requests for
// Host answer 301 to http://Target<uri>.
type RedirectRule struct {
	Host   string // lower-case
	Target string // lower-case
}

// New returns an empty configuration with the global defaults.
func New() *Config {
	return &Config{Global: Global{LogLevel: -1, Backlog: 1024}}
}

// Pool returns the pool called name, or nil.
func (c *Config) Pool(name string) *Pool {
	for _, p := range c.Pools {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Service returns the service called name, or nil.
func (c *Config) Service(name string) *Service {
	for _, s := range c.Services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// IsLoaded reports whether plugin name was LOADed (case-insensitive).
func (c *Config) IsLoaded(name string) bool {
	return c.loadedName(name) != ""
}

// PluginRole reports whether role is added by a LOADed plugin (EchoService's
// echo), and names that plugin.
func (c *Config) PluginRole(role string) (string, bool) {
	for _, r := range c.roles {
		if r.role == role && c.IsLoaded(r.plugin) {
			return r.plugin, true
		}
	}
	return "", false
}

// pluginRole is a role a LOADed plugin adds.
type pluginRole struct{ role, plugin string }

// loadedName returns the LOADed spelling of name, or "".
func (c *Config) loadedName(name string) string {
	for _, l := range c.Loaded {
		if equalFold(l, name) {
			return l
		}
	}
	return ""
}

// Clone returns a deep copy of c.
func (c *Config) Clone() *Config {
	n := *c
	n.Global.Extra = maps.Clone(c.Global.Extra)
	n.Global.Places = maps.Clone(c.Global.Places)
	n.Loaded = slices.Clone(c.Loaded)
	n.roles = slices.Clone(c.roles)
	n.Defaults = maps.Clone(c.Defaults)
	n.Pools = make([]*Pool, len(c.Pools))
	for i, p := range c.Pools {
		np := *p
		np.Nodes = slices.Clone(p.Nodes)
		n.Pools[i] = &np
	}
	n.Services = make([]*Service, len(c.Services))
	for i, s := range c.Services {
		n.Services[i] = s.clone()
	}
	if c.Pools == nil {
		n.Pools = nil
	}
	if c.Services == nil {
		n.Services = nil
	}
	return &n
}

func (s *Service) clone() *Service {
	n := *s
	n.TrustedUpstreamProxies = slices.Clone(s.TrustedUpstreamProxies)
	n.SSLCertificates = slices.Clone(s.SSLCertificates)
	n.UploadStatusListeners = slices.Clone(s.UploadStatusListeners)
	n.ErrorRetrySchedule = slices.Clone(s.ErrorRetrySchedule)
	n.IndexFiles = slices.Clone(s.IndexFiles)
	n.Allow = slices.Clone(s.Allow)
	n.Headers = slices.Clone(s.Headers)
	n.Plugins = slices.Clone(s.Plugins)
	n.Vhosts = slices.Clone(s.Vhosts)
	n.Vpaths = slices.Clone(s.Vpaths)
	n.Access = slices.Clone(s.Access)
	n.Redirects = slices.Clone(s.Redirects)
	n.Extra = maps.Clone(s.Extra)
	n.Set = maps.Clone(s.Set)
	return &n
}

// resetParams zeroes every role parameter, keeping what Perlbal keeps when a
// role is set: identity, listen, pool, docroot, enabled state, rules,
// plugins and extra values (plugin tunables are reset by the caller).
func (s *Service) resetParams() {
	*s = Service{
		Name: s.Name, Role: s.Role, Listen: s.Listen, Enabled: s.Enabled,
		Pool: s.Pool, Docroot: s.Docroot,
		Headers: s.Headers, Plugins: s.Plugins, Vhosts: s.Vhosts, Vpaths: s.Vpaths,
		AccessPolicy: s.AccessPolicy, Access: s.Access, Redirects: s.Redirects,
		Extra: s.Extra, Set: s.Set, File: s.File, Line: s.Line,
	}
}

// BackendH2 reports whether the backends speak HTTP/2 (h2 or h2c).
func (s *Service) BackendH2() bool { return s.BackendProtocol == "h2" || s.BackendProtocol == "h2c" }

// BackendTLSOn reports whether plb speaks TLS to the backends: backend_ssl,
// or backend_protocol h2.
func (s *Service) BackendTLSOn() bool { return s.BackendSSL || s.BackendProtocol == "h2" }

// HTTP2On reports whether the service speaks HTTP/2 to its clients: by
// ALPN on a TLS listener unless http2 is set false, with prior knowledge
// (h2c) on a plain one only when http2 is set true.
func (s *Service) HTTP2On() bool {
	if s.Set["http2"] {
		return s.HTTP2
	}
	return s.EnableSSL
}

func (s *Service) markSet(key string) {
	if s.Set == nil {
		s.Set = make(map[string]bool)
	}
	s.Set[key] = true
}

func (s *Service) setExtra(key, val string) {
	if s.Extra == nil {
		s.Extra = make(map[string]string)
	}
	s.Extra[key] = val
}

// HasPlugin reports whether plugin name is registered on s (case-insensitive).
func (s *Service) HasPlugin(name string) bool {
	for _, p := range s.Plugins {
		if equalFold(p, name) {
			return true
		}
	}
	return false
}

// Tune gives the running pool p pc's hashing and slow-start settings,
// reading time from now (the balance method is the server's to choose,
// by the services that use the pool). Safe while p serves.
func (pc *Pool) Tune(p *pool.Pool, now func() time.Time) {
	k, _ := pool.ParseHashKey(pc.HashKey) // checked when set; "" is none
	p.SetHashKey(k)
	p.SetBalanceFactor(pc.BalanceFactor)
	p.SetSlowStart(pc.SlowStart, now)
}

func newPool(name string) *Pool {
	return &Pool{Name: name, BalanceMethod: BalanceIdleFirst, ServerRetry: 5, TimeoutCleanup: 15 * time.Second,
		Check: CheckTCP, Rise: 1, Fall: 3, BalanceFactor: pool.DefaultBalanceFactor}
}

func (c *Config) nameTaken(name string) error {
	if c.Service(name) != nil {
		return errorf("service '%s' already exists", name)
	}
	if c.Pool(name) != nil {
		return errorf("pool '%s' already exists", name)
	}
	return nil
}

// noService is the error for a service name that does not exist (ENABLE,
// DISABLE): it lists the services that do, and suggests the one meant when
// a single name is close (a prefix, or a typo away), so that a file such as
// "CREATE SERVICE foo_service ... ENABLE foo" is fixed at once.
func (c *Config) noService(name string) error {
	if len(c.Services) == 0 {
		return errorf("service '%s' does not exist (no service is defined yet)", name)
	}
	names := make([]string, len(c.Services))
	var close []string
	for i, s := range c.Services {
		names[i] = s.Name
		if strings.HasPrefix(s.Name, name) || strings.HasPrefix(name, s.Name) || editDistance(s.Name, name) <= 2 {
			close = append(close, s.Name)
		}
	}
	msg := fmt.Sprintf("service '%s' does not exist (services: %s)", name, strings.Join(names, ", "))
	if len(close) == 1 {
		msg += fmt.Sprintf("; did you mean '%s'?", close[0])
	}
	return errors.New(msg)
}

// editDistance is the Levenshtein distance of two short ASCII names.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			d := prev[j-1]
			if a[i-1] != b[j-1] {
				d++
			}
			cur[j] = min(d, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
