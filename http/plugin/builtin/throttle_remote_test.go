package builtin

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/plb/plb/internal/memcache"
	"github.com/plb/plb/internal/testutil"
)

// waitIdle waits for rm's shards to have run every call queued.
func waitIdle(t *testing.T, rm *throttleRemote) {
	t.Helper()
	idle := func() bool {
		for i := range rm.shards {
			if rm.shards[i].running.Load() || len(rm.shards[i].queue) > 0 {
				return false
			}
		}
		return true
	}
	for i := 0; i < 500; i++ {
		if idle() {
			time.Sleep(20 * time.Millisecond)
			if idle() {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the shared state's calls never ended")
}

// TestSharedStateAgainstMemcached: with Debian's memcached: an address's
// violations in quick succession are written in order (a ban is never
// overwritten by an older state); a value anyone wrote under the key bans
// no longer than ban_expiration; a ban longer than memcached's 30-day
// relative expiry is still stored; a process that has not heard of a ban
// does not shorten how long memcached keeps it.
func TestSharedStateAgainstMemcached(t *testing.T) {
	addr, _ := testutil.StartMemcached(t)
	mc := memcache.New([]string{addr}, time.Second)
	defer mc.Close()

	th := newThrottler(t, newThrottle(), "SET memcached_servers = "+addr, "SET ban_threshold = 3", "SET ban_expiration = 3600",
		"SET initial_delay = 0", "SET max_delay = 0", "SET max_concurrent = 100", "SET memcached_async_clients = 8")
	for i := range 100 {
		ip := fmt.Sprintf("10.1.0.%d", i+1)
		var last string
		for j := range 4 {
			last = th.one(ip, time.Duration(j)*time.Millisecond)
		}
		if last != "drop" {
			t.Fatalf("%s: not banned: %s", ip, last)
		}
		waitIdle(t, th.check.remote)
		v, err := mc.Get("Throttle:" + ip)
		if _, _, _, ban, ok := decodeShared(v); err != nil || !ok || ban.IsZero() {
			t.Fatalf("%s: banned here, memcached has %q %v", ip, v, err)
		}
	}

	// A forged ban, for ever: taken in as ban_expiration's 60 s.
	th = newThrottler(t, newThrottle(), "SET memcached_servers = "+addr, "SET instance_name = forged", "SET ban_expiration = 60", "SET ban_threshold = 3")
	if err := mc.Set("forged:192.0.2.9", []byte("0 0 0 999999999999999999"), time.Hour); err != nil {
		t.Fatal(err)
	}
	th.one("192.0.2.9", 0)
	waitIdle(t, th.check.remote)
	if got := th.one("192.0.2.9", time.Second); got != "403" {
		t.Fatalf("the forged ban not taken in at all: %s", got)
	}
	th.check.table.mu.Lock()
	th.check.table.ips[netip.MustParseAddr("192.0.2.9")].asked = t0.Add(24 * time.Hour) // no further question
	th.check.table.mu.Unlock()
	if got := th.one("192.0.2.9", 24*time.Hour); got == "403" {
		t.Fatal("a forged ban outlived ban_expiration")
	}

	// Forty days of ban: stored.
	th = newThrottler(t, newThrottle(), "SET memcached_servers = "+addr, "SET instance_name = long", "SET ban_expiration = 3456000",
		"SET ban_threshold = 1", "SET initial_delay = 1", "SET throttle_threshold_seconds = 10")
	th.one("192.0.2.1", 0)
	th.one("192.0.2.1", sec(0.5))
	waitIdle(t, th.check.remote)
	if _, err := mc.Get("long:192.0.2.1"); err != nil {
		t.Fatalf("a 40-day ban not in memcached: %v", err)
	}

	// One process bans for 600 s; another, unaware, writes a violation
	// of a 1 s window: the ban stays in memcached.
	a := newThrottler(t, newThrottle(), "SET memcached_servers = "+addr, "SET instance_name = merge", "SET ban_expiration = 600")
	b := newThrottler(t, newThrottle(), "SET memcached_servers = "+addr, "SET instance_name = merge", "SET ban_expiration = 600")
	ip, now := netip.MustParseAddr("192.0.2.7"), time.Now()
	a.check.remote.do(remoteOp{ip: ip, now: now, value: encodeShared(&ipState{last: now, violations: 3, expires: now.Add(10 * time.Second), bannedUntil: now.Add(600 * time.Second)})})
	b.check.remote.do(remoteOp{ip: ip, now: now, value: encodeShared(&ipState{last: now, violations: 1, expires: now.Add(time.Second)})})
	time.Sleep(2500 * time.Millisecond)
	if v, err := mc.Get("merge:192.0.2.7"); err != nil {
		t.Fatalf("the ban gone from memcached before its end: %q %v", v, err)
	}
}

// TestSharedStateReload: a reload changing memcached_async_clients while
// requests queue calls (the race detector watches).
func TestSharedStateReload(t *testing.T) {
	addr, _ := testutil.StartMemcached(t)
	p := newThrottle()
	th := newThrottler(t, p, "SET memcached_servers = "+addr)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 50 {
			newThrottler(t, p, "SET memcached_servers = "+addr, fmt.Sprintf("SET memcached_async_clients = %d", 1+i%5))
		}
	})
	wg.Go(func() {
		for range 200 {
			th.check.remote.enqueue(remoteOp{ip: netip.MustParseAddr("192.0.2.1"), get: true, now: t0})
		}
	})
	wg.Wait()
	waitIdle(t, th.check.remote)
}
