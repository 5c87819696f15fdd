package builtin

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/http/plugin"
)

// throttle is Perlbal's Throttle 1.20 on a reverse proxy: on
// start_proxy_request, requests from one client address that come too
// fast are postponed (initial_delay seconds, doubled for each further one
// within the window, at most max_delay), addresses with more than
// max_concurrent requests in progress get 403 "Forbidden.", and after
// ban_threshold violations an address is banned for ban_expiration
// seconds. Addresses in whitelist_file are never throttled; those in
// blacklist_file are denied (or throttled: blacklist_action).
//
// State is kept per service, in the plugin, so that it outlives
// configuration changes (with memcached_servers it is shared with other
// plb processes too: throttle_remote.go): a mutex-protected map
// per service, shared by every event loop, held for a lookup and a few
// updates (logging happens after it is released). It is bounded: at most
// maxIPs addresses per service, least recently seen first out, and
// entries with nothing left to remember are dropped as new ones come.
type throttle struct {
	maxIPs int // addresses remembered per service (0: defaultThrottleIPs)

	mu     sync.Mutex
	tables map[string]*throttleTable // by service name
}

// defaultThrottleIPs bounds the addresses a service remembers.
const defaultThrottleIPs = 1 << 16

func newThrottle() *throttle { return &throttle{tables: map[string]*throttleTable{}} }

// memcachedServers parses memcached_servers: host:port addresses,
// separated by commas or spaces.
func memcachedServers(v string) ([]string, error) {
	var out []string
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
		if _, _, err := net.SplitHostPort(f); err != nil {
			return nil, fmt.Errorf("memcached_servers: '%s' is not host:port", f)
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("memcached_servers: no server in '%s'", v)
	}
	return out, nil
}

func (*throttle) Describe() config.Plugin { return describe("Throttle") }

// table is the state of service name.
func (t *throttle) table(name string) *throttleTable {
	t.mu.Lock()
	defer t.mu.Unlock()
	tb := t.tables[name]
	if tb == nil {
		max := t.maxIPs
		if max <= 0 {
			max = defaultThrottleIPs
		}
		tb = &throttleTable{ips: map[netip.Addr]*ipState{}, max: max}
		t.tables[name] = tb
	}
	return tb
}

// Register reads the service's tunables and its lists. It runs whenever a
// configuration is applied (THROTTLE RELOAD included), so the list files
// are read again each time; the per-address state stays.
func (t *throttle) Register(svc *config.Service) (any, error) {
	pl := describe("Throttle")
	get := func(key string) string {
		if v, ok := svc.Extra[key]; ok {
			return v
		}
		for _, p := range pl.Params {
			if p.Name == key {
				return p.Default
			}
		}
		return ""
	}
	c := &throttleCheck{table: t.table(svc.Name)}
	var err error
	if f := get("whitelist_file"); f != "" {
		if c.whitelist, err = loadCIDRList(f); err != nil {
			return nil, fmt.Errorf("Couldn't load %s: %v", f, err)
		}
	}
	if f := get("blacklist_file"); f != "" {
		if c.blacklist, err = loadCIDRList(f); err != nil {
			return nil, fmt.Errorf("Couldn't load %s: %v", f, err)
		}
	}
	c.defaultAction = get("default_action")
	c.blacklistDeny = get("blacklist_action") != "throttle"
	for key, re := range map[string]**regexp.Regexp{"path_regex": &c.path, "method_regex": &c.method} {
		if v := get(key); v != "" && !disabledPattern(v) {
			if *re, err = regexp.Compile(v); err != nil {
				return nil, fmt.Errorf("%s: invalid regular expression", key)
			}
		}
	}
	c.logs = throttleLogEvents(get("log_events"))
	c.logOnly = get("log_only") == "1"
	secs := func(key string) time.Duration { return time.Duration(intParam(get(key))) * time.Second }
	c.threshold = secs("throttle_threshold_seconds")
	c.initial = secs("initial_delay")
	c.maxDelay = secs("max_delay")
	c.banExpiration = secs("ban_expiration")
	c.maxConcurrent = intParam(get("max_concurrent"))
	c.banThreshold = intParam(get("ban_threshold"))
	var servers []string
	if v := get("memcached_servers"); v != "" {
		if servers, err = memcachedServers(v); err != nil {
			return nil, err
		}
	}
	lim := shareLimits{banFor: c.banExpiration, window: max(c.threshold, c.maxDelay), violations: maxViolations}
	if c.banThreshold > 0 {
		lim.violations = int(min(c.banThreshold, maxViolations))
	}
	if c.remote, err = c.table.useRemote(servers, get("instance_name"), int(intParam(get("memcached_async_clients"))), lim); err != nil {
		return nil, err
	}
	return c, nil
}

// intParam parses a normalized int tunable, capped so that it makes a
// sane time.Duration in seconds.
func intParam(v string) int64 {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil && v != "" {
		n = 1 << 30 // beyond int64: as good as infinite
	}
	return min(max(n, 0), 1<<30)
}

// The events of log_events (Perlbal's LOG_* flags).
const (
	logBanAdded = 1 << iota
	logBanRemoved
	logAllowWhitelisted
	logAllowDefault // only with "all"
	logDenyBanned
	logDenyBlacklisted
	logDenyConcurrent
	logThrottleBlacklisted
	logThrottleDefault
	logAll = 1<<iota - 1
)

// throttleLogEvents parses log_events as Perlbal: words in order, "all"
// and "none" setting or clearing everything.
func throttleLogEvents(v string) int {
	m := 0
	for _, w := range strings.FieldsFunc(strings.ToLower(v), func(r rune) bool { return r == ',' || r == ' ' }) {
		switch w {
		case "ban":
			m |= logBanAdded
		case "unban":
			m |= logBanRemoved
		case "whitelisted":
			m |= logAllowWhitelisted
		case "banned":
			m |= logDenyBanned
		case "blacklisted":
			m |= logDenyBlacklisted | logThrottleBlacklisted
		case "concurrent":
			m |= logDenyConcurrent
		case "throttled":
			m |= logThrottleDefault
		case "all":
			m = logAll
		case "none":
			m = 0
		}
	}
	return m
}

// throttleCheck is Throttle's instance on one service.
type throttleCheck struct {
	table                *throttleTable
	remote               *throttleRemote // memcached_servers's (nil: none)
	whitelist, blacklist *cidrList
	defaultAction        string // allow, throttle, deny
	blacklistDeny        bool
	path, method         *regexp.Regexp
	logs                 int
	logOnly              bool
	threshold, initial   time.Duration
	maxDelay             time.Duration
	banExpiration        time.Duration
	maxConcurrent        int64
	banThreshold         int64
}

// throttleIP keys the entry a request was counted under (Keep).
type throttleIP struct{}

// The decisions before the throttle computation.
const (
	resultAllow = iota
	resultThrottle
	resultDeny
)

func (c *throttleCheck) StartProxyRequest(r *plugin.Request) bool {
	if r.Resumed() {
		return false // back from a delay: the checks were passed
	}
	ip := r.ObservedIP()
	if !ip.IsValid() {
		ip = r.Peer()
	}
	if !ip.IsValid() {
		r.Respond(500, "Internal server error.\n")
		return true
	}
	now := r.Now
	logs := 0
	if c.logs != 0 && r.Log != nil && r.Log.Enabled(context.Background(), slog.LevelInfo) {
		logs = c.logs
	}
	var events [3]string
	ev := events[:0]
	note := func(flag int, format string, a ...any) {
		if logs&flag != 0 && len(ev) < cap(ev) {
			ev = append(ev, fmt.Sprintf(format, a...))
		}
	}
	tb := c.table
	tb.mu.Lock()
	e := tb.touch(ip, now)
	e.active++
	if !e.bannedUntil.IsZero() && !now.Before(e.bannedUntil) {
		e.bannedUntil = time.Time{}
		note(logBanRemoved, "Unbanning %s", ip)
	}
	result := c.classify(r, ip, e, note)
	handled, delay, drop := false, time.Duration(0), false
	changed := false
	switch {
	case result == resultDeny && !c.logOnly:
		handled = true
	case result == resultAllow:
	default:
		v0, b0 := e.violations, e.bannedUntil
		handled, delay, drop = c.throttle(r, ip, e, now, note)
		// What the others should know: a violation more, or a ban.
		changed = e.violations > v0 || e.bannedUntil.After(b0)
	}
	var share remoteOp
	if c.remote != nil {
		share = c.remote.ops(e, now, changed)
	}
	tb.mu.Unlock()
	if c.remote != nil {
		c.remote.send(share, r.Log)
	}
	r.Keep(throttleIP{}, e) // a pointer: stored without allocating
	c.log(r, ev)
	switch {
	case result == resultDeny && !c.logOnly:
		r.Respond(403, "Forbidden.\n")
	case drop:
		r.Drop()
	case handled:
		r.Delay(delay)
	}
	return handled
}

// classify is Perlbal's first decision: allow, throttle or deny. Called
// with the table locked.
func (c *throttleCheck) classify(r *plugin.Request, ip netip.Addr, e *ipState, note func(int, string, ...any)) int {
	if c.whitelist.Contains(ip) {
		note(logAllowWhitelisted, "Letting whitelisted ip %s through", ip)
		return resultAllow
	}
	if !e.bannedUntil.IsZero() {
		note(logDenyBanned, "Denying banned IP %s", ip)
		return resultDeny
	}
	if c.blacklist.Contains(ip) {
		if c.blacklistDeny {
			note(logDenyBlacklisted, "Denying blacklisted IP %s", ip)
			return resultDeny
		}
		note(logThrottleBlacklisted, "Throttling blacklisted IP %s", ip)
		return resultThrottle
	}
	if e.active > c.maxConcurrent {
		note(logDenyConcurrent, "Too many concurrent connections from %s", ip)
		return resultDeny
	}
	if c.path != nil && !c.path.Match(r.URI()) {
		return resultAllow
	}
	if c.method != nil && (r.Head == nil || !c.method.Match(r.Head.Method)) {
		return resultAllow
	}
	switch c.defaultAction {
	case "allow":
		return resultAllow
	case "deny":
		return resultDeny
	}
	return resultThrottle
}

// throttle is Perlbal's throttle path with its memory store: a request
// within throttle_threshold_seconds of the previous one (whose store entry
// has not expired) waits initial_delay·2^violations, at most max_delay
// (violations are remembered for the window, unlike Perlbal: see below);
// reaching ban_threshold violations bans the address and drops the
// connection. Called with the table locked; handled means delayed or
// dropped.
func (c *throttleCheck) throttle(r *plugin.Request, ip netip.Addr, e *ipState, now time.Time, note func(int, string, ...any)) (handled bool, delay time.Duration, drop bool) {
	seen := now.Before(e.expires)
	last, violations := e.last, e.violations
	if !seen {
		violations = 0
	}
	// The early set: this request is the last one seen.
	e.last, e.violations, e.expires = now, violations, now.Add(c.threshold)
	if !seen {
		note(logAllowDefault, "Allowed unseen %s", ip)
		return false, 0, false
	}
	if now.Sub(last) >= c.threshold {
		note(logAllowDefault, "Allowed reformed %s", ip)
		return false, 0, false
	}
	delay = c.initial
	for i := 0; i < violations && delay > 0 && delay < c.maxDelay; i++ {
		delay *= 2 // below max_delay (at most 2^30 s): no overflow
	}
	delay = min(delay, c.maxDelay)
	violations++
	if c.banThreshold > 0 && int64(violations) >= c.banThreshold {
		note(logBanAdded, "Banning %s for %ds: %s", ip, int64(c.banExpiration/time.Second), r.URI())
		if c.logOnly {
			return false, 0, false // Perlbal closed the connection even so
		}
		e.bannedUntil = now.Add(c.banExpiration)
		return true, 0, true
	}
	// Perlbal stored the violation for delay seconds only, so a client
	// that waited out its delay came back "unseen" and was never delayed
	// longer: the doubling only hit parallel requests. plb keeps it for
	// the window (or the delay, if longer), as the tunables describe.
	e.violations, e.expires = violations, now.Add(max(c.threshold, delay))
	note(logThrottleDefault, "Throttling %s for %d: %s", ip, int64(delay/time.Second), r.URI())
	if c.logOnly || delay <= 0 {
		return false, 0, false
	}
	return true, delay, false
}

// log writes the events noted under the table's lock, at info level.
func (c *throttleCheck) log(r *plugin.Request, ev []string) {
	for _, msg := range ev {
		r.Log.Info(msg, "plugin", "Throttle")
	}
}

// EndProxyRequest is end_proxy_request: the request no longer counts
// against max_concurrent.
func (c *throttleCheck) EndProxyRequest(r *plugin.Request) {
	e, ok := r.Kept(throttleIP{}).(*ipState)
	if !ok || e == nil {
		return
	}
	r.Keep(throttleIP{}, nil)
	tb := c.table
	tb.mu.Lock()
	if e.active > 0 { // dropped from a full table meanwhile: harmless
		e.active--
	}
	tb.mu.Unlock()
}

// throttleTable is one service's state: an address map with a
// least-recently-seen list through it.
type throttleTable struct {
	mu         sync.Mutex
	ips        map[netip.Addr]*ipState
	head, tail *ipState // most recently seen first
	max        int
	remote     *throttleRemote // memcached_servers's (nil: none)
}

// ipState is what the table remembers of an address.
type ipState struct {
	ip     netip.Addr
	active int64 // requests in progress (max_concurrent)
	// The store entry, valid while now is before expires: the time of the
	// last request and the violations so far.
	last       time.Time
	violations int
	expires    time.Time
	// bannedUntil is when a ban ends (zero: not banned).
	bannedUntil time.Time
	// asked is when the shared state was last asked for (memcached).
	asked time.Time

	prev, next *ipState
}

// idle reports whether e remembers nothing that matters at now.
func (e *ipState) idle(now time.Time) bool {
	return e.active == 0 && !now.Before(e.expires) && (e.bannedUntil.IsZero() || !now.Before(e.bannedUntil))
}

// touch finds or makes ip's entry and makes it the most recently seen.
// Making one drops up to two idle entries from the old end (reusing one:
// an idle entry has no request holding it), and the least recently seen
// one whatever it holds when the table is full. Called with the table
// locked.
func (tb *throttleTable) touch(ip netip.Addr, now time.Time) *ipState {
	if e := tb.ips[ip]; e != nil {
		tb.unlink(e)
		tb.pushFront(e)
		return e
	}
	var free *ipState
	for i := 0; i < 2 && tb.tail != nil && tb.tail.idle(now); i++ {
		free = tb.tail
		tb.remove(free)
	}
	for len(tb.ips) >= tb.max && tb.tail != nil {
		tb.remove(tb.tail)
	}
	e := free
	if e == nil {
		e = &ipState{}
	}
	*e = ipState{ip: ip}
	tb.ips[ip] = e
	tb.pushFront(e)
	return e
}

func (tb *throttleTable) remove(e *ipState) {
	tb.unlink(e)
	delete(tb.ips, e.ip)
}

func (tb *throttleTable) unlink(e *ipState) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		tb.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		tb.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (tb *throttleTable) pushFront(e *ipState) {
	e.next = tb.head
	if tb.head != nil {
		tb.head.prev = e
	}
	tb.head = e
	if tb.tail == nil {
		tb.tail = e
	}
}

// len is the number of addresses remembered.
func (tb *throttleTable) len() int {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return len(tb.ips)
}
