package builtin

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/http/plugin"
)

// throttleConf is a reverse proxy with Throttle and the given SET lines.
func throttleConf(sets ...string) string {
	return "LOAD Throttle\nCREATE POOL p\nCREATE SERVICE rp\nSET role = reverse_proxy\nSET pool = p\n" +
		strings.Join(sets, "\n") + "\nSET plugins = Throttle\n"
}

// throttler is a Throttle instance with a fake clock: each call says the
// time (seconds after t0) a request arrives.
type throttler struct {
	t     *testing.T
	svc   *config.Service
	check *throttleCheck
	log   *bytes.Buffer
}

var t0 = time.Unix(1_000_000, 0)

func newThrottler(t *testing.T, p *throttle, sets ...string) *throttler {
	t.Helper()
	svc := service(t, "rp", throttleConf(sets...))
	inst, err := p.Register(svc)
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	return &throttler{t: t, svc: svc, check: inst.(*throttleCheck), log: &bytes.Buffer{}}
}

// req runs start_proxy_request for a GET of uri from peer at t0+at; it
// returns the request (to end it) and what happened: "allow", "delay <d>",
// "403", "drop".
func (th *throttler) req(peer string, at time.Duration, head string) (*plugin.Request, string) {
	th.t.Helper()
	if head == "" {
		head = "GET /x HTTP/1.0"
	}
	r := request(th.t, th.svc, peer, head)
	r.Now = t0.Add(at)
	r.Log = slog.New(slog.NewTextHandler(th.log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	handled := th.check.StartProxyRequest(r)
	d, delayed := r.Delayed()
	code, msg := answer(r)
	switch {
	case !handled:
		return r, "allow"
	case delayed:
		return r, fmt.Sprintf("delay %v", d)
	case r.Dropped():
		return r, "drop"
	case code == 403 && msg == "Forbidden.\n":
		return r, "403"
	}
	return r, fmt.Sprintf("handled %d %q", code, msg)
}

// one runs a request and ends it at once (as when the backend answered),
// resuming it first when it was delayed.
func (th *throttler) one(peer string, at time.Duration) string {
	th.t.Helper()
	r, got := th.req(peer, at, "")
	if strings.HasPrefix(got, "delay") {
		r.ResetResumed()
		r.Now = t0.Add(at)
		if th.check.StartProxyRequest(r) {
			th.t.Fatalf("a resumed request was handled again")
		}
	}
	th.check.EndProxyRequest(r)
	return got
}

func sec(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// TestThrottleDelays: the first request of an address passes; one within
// throttle_threshold_seconds of the last waits initial_delay, doubled for
// each further one while the address is remembered, up to max_delay; an
// address is remembered for the window after its last request (Perlbal
// forgot it when the delay ran out, so a client that waited its delay out
// was never delayed longer: plb differs on purpose).
func TestThrottleDelays(t *testing.T) {
	th := newThrottler(t, newThrottle(), "SET initial_delay = 1", "SET max_delay = 8", "SET max_concurrent = 100")
	for _, step := range []struct {
		at   float64
		want string
	}{
		{0, "allow"},        // unseen
		{1, "delay 1s"},     // 1 s after: 1·2^0
		{1.5, "delay 2s"},   // 1·2^1
		{2, "delay 4s"},     //
		{3, "delay 8s"},     //
		{4, "delay 8s"},     // max_delay
		{12.5, "delay 8s"},  // after the delay ran out: still remembered
		{13, "delay 8s"},    //
		{80, "allow"},       // threshold (60 s) after the last: forgotten
		{141, "allow"},      // exactly 61 s: forgotten too
		{142, "delay 1s"},   // violations start over
		{143.5, "delay 2s"}, //
		{203.4, "delay 4s"}, // 59.9 s after the last: within the window
	} {
		if got := th.one("192.0.2.1", sec(step.at)); got != step.want {
			t.Errorf("t=%v: %s, want %s", step.at, got, step.want)
		}
	}
	// Another address has its own state.
	if got := th.one("192.0.2.2", sec(4)); got != "allow" {
		t.Errorf("other address: %s", got)
	}
}

// TestThrottleThreshold: a request throttle_threshold_seconds or more
// after the previous one passes ("reformed"), which happens when a delay
// longer than the threshold kept the entry alive.
func TestThrottleThreshold(t *testing.T) {
	th := newThrottler(t, newThrottle(), "SET throttle_threshold_seconds = 5", "SET initial_delay = 10")
	for _, step := range []struct {
		at   float64
		want string
	}{
		{0, "allow"},
		{1, "delay 10s"}, // the entry lives 10 s
		{7, "allow"},     // 6 s after the last: reformed (violations stay)
		{8, "delay 20s"},
		{29, "allow"}, // 21 s: the 20 s entry expired, unseen
	} {
		if got := th.one("192.0.2.1", sec(step.at)); got != step.want {
			t.Errorf("t=%v: %s, want %s", step.at, got, step.want)
		}
	}
	if log := th.log.String(); !strings.Contains(log, "Allowed reformed 192.0.2.1") || !strings.Contains(log, "Throttling 192.0.2.1 for 20: /x") {
		t.Errorf("log:\n%s", log)
	}
}

// TestThrottleConcurrent: more than max_concurrent requests in progress
// from one address get 403 "Forbidden."; an ended one makes room.
func TestThrottleConcurrent(t *testing.T) {
	th := newThrottler(t, newThrottle(), "SET default_action = allow", "SET max_concurrent = 2")
	r1, got1 := th.req("192.0.2.1", 0, "")
	_, got2 := th.req("192.0.2.1", 0, "")
	r3, got3 := th.req("192.0.2.1", 0, "")
	if got1 != "allow" || got2 != "allow" || got3 != "403" {
		t.Fatalf("%s %s %s", got1, got2, got3)
	}
	th.check.EndProxyRequest(r3) // a denied request ends too
	th.check.EndProxyRequest(r1)
	th.check.EndProxyRequest(r1) // ended once only
	if _, got := th.req("192.0.2.1", 0, ""); got != "allow" {
		t.Errorf("after one ended: %s", got)
	}
	if _, got := th.req("192.0.2.1", 0, ""); got != "403" {
		t.Errorf("over the limit again: %s", got)
	}
	if _, got := th.req("192.0.2.9", 0, ""); got != "allow" {
		t.Errorf("another address: %s", got)
	}
}

// TestThrottleDefaultActions: allow never throttles, deny refuses what is
// on neither list.
func TestThrottleDefaultActions(t *testing.T) {
	th := newThrottler(t, newThrottle(), "SET default_action = allow")
	for i := range 5 {
		if got := th.one("192.0.2.1", sec(float64(i))); got != "allow" {
			t.Errorf("allow, request %d: %s", i, got)
		}
	}
	th = newThrottler(t, newThrottle(), "SET default_action = deny")
	if got := th.one("192.0.2.1", 0); got != "403" {
		t.Errorf("deny: %s", got)
	}
}

func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestThrottleLists: whitelisted addresses pass whatever they do,
// blacklisted ones are denied, or throttled with blacklist_action.
func TestThrottleLists(t *testing.T) {
	white := writeFile(t, "white.txt", "# friends\n10.1.0.0/16\n192.0.2.7 # one host\n")
	black := writeFile(t, "black.txt", "10.2.0.0/16\n2001:db8::/32\n")
	sets := []string{"SET whitelist_file = " + white, "SET blacklist_file = " + black, "SET max_concurrent = 1", "SET initial_delay = 1"}
	th := newThrottler(t, newThrottle(), sets...)
	for i := range 4 {
		// Concurrent and fast: the whitelist comes first.
		if _, got := th.req("10.1.2.3", sec(float64(i)/10), ""); got != "allow" {
			t.Errorf("whitelisted, request %d: %s", i, got)
		}
	}
	if got := th.one("192.0.2.7", 0); got != "allow" {
		t.Errorf("whitelisted host: %s", got)
	}
	for _, peer := range []string{"10.2.9.9", "2001:db8::1", "::ffff:10.2.0.1"} {
		if got := th.one(peer, 0); got != "403" {
			t.Errorf("blacklisted %s: %s", peer, got)
		}
	}
	th = newThrottler(t, newThrottle(), append(sets, "SET blacklist_action = throttle")...)
	if got := th.one("10.2.9.9", 0); got != "allow" {
		t.Errorf("blacklisted, throttled, first: %s", got)
	}
	if got := th.one("10.2.9.9", sec(0.5)); got != "delay 1s" {
		t.Errorf("blacklisted, throttled, second: %s", got)
	}
}

// TestThrottleBan: ban_threshold violations ban the address (the
// connection is dropped); it gets 403 until ban_expiration has passed.
func TestThrottleBan(t *testing.T) {
	th := newThrottler(t, newThrottle(), "SET ban_threshold = 2", "SET ban_expiration = 30", "SET initial_delay = 1",
		"SET throttle_threshold_seconds = 10", "SET log_events = ban,unban,banned")
	for _, step := range []struct {
		at   float64
		want string
	}{
		{0, "allow"}, {1, "delay 1s"}, {1.5, "drop"}, // the second violation
		{2, "403"}, {31, "403"}, // banned
		{31.5, "allow"}, // unbanned, and its entry (1.5 s + 10 s) expired
		{32, "delay 1s"},
	} {
		if got := th.one("192.0.2.1", sec(step.at)); got != step.want {
			t.Errorf("t=%v: %s, want %s", step.at, got, step.want)
		}
	}
	log := th.log.String()
	for _, want := range []string{"Banning 192.0.2.1 for 30s: /x", "Denying banned IP 192.0.2.1", "Unbanning 192.0.2.1"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "Throttling") {
		t.Errorf("throttled logged though not asked for:\n%s", log)
	}
}

// TestThrottleFilters: path_regex and method_regex limit what is
// throttled (the concurrency limit still applies to all).
func TestThrottleFilters(t *testing.T) {
	th := newThrottler(t, newThrottle(), "SET path_regex = ^/app/", "SET method_regex = ^POST$", "SET initial_delay = 1")
	at := time.Duration(0)
	next := func(head string) string {
		at += time.Second
		r, got := th.req("192.0.2.1", at, head)
		th.check.EndProxyRequest(r)
		return got
	}
	if got := next("GET /app/x HTTP/1.0"); got != "allow" {
		t.Errorf("GET: %s", got)
	}
	if got := next("POST /other HTTP/1.0\nContent-Length: 0"); got != "allow" {
		t.Errorf("other path: %s", got)
	}
	if got := next("POST /app/x HTTP/1.0\nContent-Length: 0"); got != "allow" {
		t.Errorf("first POST /app/: %s", got)
	}
	if got := next("POST /app/y HTTP/1.0\nContent-Length: 0"); got != "delay 1s" {
		t.Errorf("second POST /app/: %s", got)
	}
}

// TestThrottleLogOnly: the decisions are made and logged, none applied.
func TestThrottleLogOnly(t *testing.T) {
	th := newThrottler(t, newThrottle(), "SET log_only = 1", "SET default_action = deny", "SET ban_threshold = 1", "SET initial_delay = 1")
	for i := range 3 {
		if got := th.one("192.0.2.1", sec(float64(i))); got != "allow" {
			t.Errorf("request %d: %s", i, got)
		}
	}
	if log := th.log.String(); !strings.Contains(log, "Banning 192.0.2.1") || !strings.Contains(log, "Allowed unseen 192.0.2.1") {
		t.Errorf("log:\n%s", log)
	}
	th = newThrottler(t, newThrottle(), "SET log_only = 1", "SET initial_delay = 1", "SET log_events = none")
	th.one("192.0.2.1", 0)
	if got := th.one("192.0.2.1", sec(0.5)); got != "allow" {
		t.Errorf("log_only delayed: %s", got)
	}
	if th.log.Len() != 0 {
		t.Errorf("log_events = none logged:\n%s", th.log)
	}
}

func TestThrottleLogEvents(t *testing.T) {
	for v, want := range map[string]int{
		"all":                      logAll,
		"none":                     0,
		"ban, unban":               logBanAdded | logBanRemoved,
		"all,none,throttled":       logThrottleDefault,
		"blacklisted":              logDenyBlacklisted | logThrottleBlacklisted,
		"banned,concurrent,ALL":    logAll,
		"whitelisted,,, ,banned  ": logAllowWhitelisted | logDenyBanned,
	} {
		if got := throttleLogEvents(v); got != want {
			t.Errorf("%q: %b, want %b", v, got, want)
		}
	}
}

// TestThrottleObservedIP: the first X-Forwarded-For address of a trusted
// peer is the client.
func TestThrottleObservedIP(t *testing.T) {
	th := newThrottler(t, newThrottle(), "SET always_trusted = 1", "SET initial_delay = 1")
	const xff = "GET / HTTP/1.0\nX-Forwarded-For: 198.51.100.1, 10.0.0.1"
	r, got := th.req("10.0.0.1", 0, xff)
	th.check.EndProxyRequest(r)
	if got != "allow" {
		t.Fatal(got)
	}
	if _, got := th.req("10.0.0.1", sec(1), ""); got != "allow" {
		t.Errorf("the proxy itself was taken for the client: %s", got)
	}
	if _, got := th.req("10.0.0.1", sec(1), xff); got != "delay 1s" {
		t.Errorf("the forwarded client: %s", got)
	}
}

// TestThrottleConfig: the tunables' checks, and what Register refuses.
func TestThrottleConfig(t *testing.T) {
	for _, tc := range []struct{ set, err string }{
		{"SET default_action = maybe", "Value of 'default_action' must be one of: allow, throttle, deny"},
		{"SET blacklist_action = allow", "Value of 'blacklist_action' must be one of: deny, throttle"},
		{"SET log_events = ban,everything", "log_events is a comma-separated list of loggable events"},
		{"SET initial_delay = soon", "Expecting integer value for parameter 'initial_delay'"},
		{"SET log_only = perhaps", "Expecting boolean value for parameter 'log_only'"},
		{"SET path_regex = (", ""},
	} {
		_, err := config.Parse("t.conf", []byte(throttleConf(tc.set)), nil)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want %q", tc.set, err, tc.err)
		}
	}
	for _, tc := range []struct{ set, err string }{
		{"SET memcached_servers = 10.0.2.1", "memcached_servers: '10.0.2.1' is not host:port"},
		{"SET whitelist_file = /nonexistent/list", "Couldn't load /nonexistent/list: Unable to open file"},
		{"SET blacklist_file = " + writeFile(t, "empty", "# nothing\n"), "contains no recognizable CIDRs"},
		{"SET blacklist_file = " + writeFile(t, "bad", "10.0.0.0/33\n"), "line 1: bad CIDR '10.0.0.0/33'"},
	} {
		svc := service(t, "rp", throttleConf(tc.set))
		if _, err := newThrottle().Register(svc); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want %q", tc.set, err, tc.err)
		}
	}
	// instance_name, memcached_async_clients and memcached_servers are
	// accepted.
	svc := service(t, "rp", throttleConf("SET instance_name = web", "SET memcached_async_clients = 4",
		"SET memcached_servers = 10.0.2.1:11211, 10.0.2.2:11211"))
	if _, err := newThrottle().Register(svc); err != nil {
		t.Error(err)
	}
}

// TestThrottleReloadCommand: THROTTLE RELOAD checks its context; the lists
// are read again when the configuration is applied (Register).
func TestThrottleReloadCommand(t *testing.T) {
	list := writeFile(t, "white.txt", "10.0.0.0/8\n")
	conf := throttleConf("SET whitelist_file = " + list)
	for cmd, want := range map[string]string{
		"THROTTLE RELOAD whitelist": "",
		"throttle reload config":    "",
		"THROTTLE RELOAD blacklist": "no blacklist file configured",
		"THROTTLE RELOAD pools":     "usage: throttle reload <config|whitelist|blacklist>",
		"THROTTLE":                  "usage: throttle reload <config|whitelist|blacklist>",
	} {
		_, err := config.Parse("t.conf", []byte(conf+cmd+"\n"), nil)
		if (err == nil) != (want == "") || err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", cmd, err, want)
		}
	}
	if _, err := config.Parse("t.conf", []byte("LOAD Throttle\nTHROTTLE RELOAD config\n"), nil); err == nil ||
		!strings.Contains(err.Error(), "No service name set") {
		t.Errorf("no context: %v", err)
	}
	if _, err := config.Parse("t.conf", []byte("THROTTLE RELOAD config\n"), nil); err == nil {
		t.Error("THROTTLE without LOAD Throttle")
	}
	// The list is read again by each Register, the state kept.
	p := newThrottle()
	svc := service(t, "rp", conf)
	th := &throttler{t: t, svc: svc, log: &bytes.Buffer{}}
	inst, err := p.Register(svc)
	if err != nil {
		t.Fatal(err)
	}
	th.check = inst.(*throttleCheck)
	th.one("192.0.2.1", 0)
	if err := os.WriteFile(list, []byte("192.0.2.0/24\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	inst, err = p.Register(svc)
	if err != nil {
		t.Fatal(err)
	}
	th.check = inst.(*throttleCheck)
	if !th.check.whitelist.Contains(netip.MustParseAddr("192.0.2.1")) {
		t.Error("list not read again")
	}
	if p.table("rp").len() != 1 {
		t.Errorf("state lost: %d addresses", p.table("rp").len())
	}
}

// TestThrottleBounded: the table keeps at most maxIPs addresses, dropping
// the least recently seen.
func TestThrottleBounded(t *testing.T) {
	p := newThrottle()
	p.maxIPs = 8
	th := newThrottler(t, p, "SET initial_delay = 1")
	for i := range 100 {
		th.one(fmt.Sprintf("10.0.%d.%d", i/256, i%256), sec(float64(i)/1000))
	}
	if n := p.table("rp").len(); n > 8 {
		t.Errorf("%d addresses remembered", n)
	}
	// The most recent address is remembered: a second request is throttled.
	if got := th.one("10.0.0.99", sec(0.2)); got != "delay 1s" {
		t.Errorf("recent address forgotten: %s", got)
	}
	// Idle entries go as new ones come, even below the bound.
	p = newThrottle()
	th = newThrottler(t, p, "SET default_action = allow")
	for i := range 50 {
		th.one(fmt.Sprintf("10.1.0.%d", i), sec(float64(i)))
	}
	if n := p.table("rp").len(); n > 3 {
		t.Errorf("%d idle addresses kept", n)
	}
}

// TestThrottleLoops: the state is shared by every loop; run under -race.
func TestThrottleLoops(t *testing.T) {
	p := newThrottle()
	th := newThrottler(t, p, "SET default_action = allow", "SET max_concurrent = 1000")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				r := request(t, th.svc, fmt.Sprintf("10.0.%d.%d", g, i%10), "GET / HTTP/1.0")
				r.Now = t0
				th.check.StartProxyRequest(r)
				th.check.EndProxyRequest(r)
			}
		}()
	}
	wg.Wait()
	tb := p.table("rp")
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for ip, e := range tb.ips {
		if e.active != 0 {
			t.Errorf("%s: %d in progress", ip, e.active)
		}
	}
}

// BenchmarkThrottleStart: start_proxy_request and end_proxy_request for
// requests from many addresses (the per-request cost on the loop: a
// locked map lookup and list move), none of them logged.
func BenchmarkThrottleStart(b *testing.B) {
	svc := service(&testing.T{}, "rp", throttleConf("SET log_events = none", "SET default_action = allow"))
	inst, err := newThrottle().Register(svc)
	if err != nil {
		b.Fatal(err)
	}
	c := inst.(*throttleCheck)
	reqs := make([]*plugin.Request, 256)
	for i := range reqs {
		reqs[i] = request(&testing.T{}, svc, fmt.Sprintf("10.0.%d.%d", i/200, i%200+1), "GET /x HTTP/1.0")
		reqs[i].Now = t0
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r := reqs[i%len(reqs)]
		i++
		c.StartProxyRequest(r)
		c.EndProxyRequest(r)
	}
}

// TestSharedState: the state Throttle shares over memcached reads back as
// written; a merge keeps the later ban and the more violations of the
// longer window; anything else under the key is refused.
func TestSharedState(t *testing.T) {
	e := &ipState{last: t0, violations: 2, expires: t0.Add(time.Minute), bannedUntil: t0.Add(time.Hour)}
	last, v, exp, ban, ok := decodeShared(encodeShared(e))
	if !ok || !last.Equal(e.last) || v != 2 || !exp.Equal(e.expires) || !ban.Equal(e.bannedUntil) {
		t.Fatalf("round trip: %v %d %v %v %v", last, v, exp, ban, ok)
	}
	mine := encodeShared(&ipState{last: t0.Add(time.Second), violations: 1, expires: t0.Add(30 * time.Second)})
	merged := mergeShared(mine, encodeShared(e))
	if _, v, _, ban, _ := decodeShared(merged); v != 2 || !ban.Equal(e.bannedUntil) {
		t.Fatalf("merged: %q", merged)
	}
	for _, bad := range []string{"", "1 2 3", "1 2 3 4 5", "1 2 3 x", "-1 2 3 4", "1  2 3 4", "1 2 3 4 ", "99999999999999999999 1 1 1"} {
		if _, _, _, _, ok := decodeShared([]byte(bad)); ok {
			t.Errorf("%q read as a state", bad)
		}
	}
	if a := testing.AllocsPerRun(1000, func() { decodeShared(merged) }); a != 0 {
		t.Errorf("decodeShared: %v allocations", a)
	}
}

// FuzzDecodeShared: any value under a key is a state or a refusal, never
// a panic; a state written reads back the same.
func FuzzDecodeShared(f *testing.F) {
	f.Add([]byte("1000000000000 2 1000000060000 0"))
	f.Add([]byte("0 0 0 0"))
	f.Fuzz(func(t *testing.T, v []byte) {
		last, n, exp, ban, ok := decodeShared(v)
		if !ok {
			return
		}
		e := &ipState{last: last, violations: n, expires: exp, bannedUntil: ban}
		l2, n2, e2, b2, ok2 := decodeShared(encodeShared(e))
		if !ok2 || !l2.Equal(last) || n2 != n || !e2.Equal(exp) || !b2.Equal(ban) {
			t.Fatalf("%q does not read back", v)
		}
	})
}
