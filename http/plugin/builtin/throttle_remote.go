package builtin

import (
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/plb/plb/internal/memcache"
)

// Throttle's shared state (memcached_servers), as Perlbal's Throttle kept
// it: each address's last request, violations and ban, under the key
// instance_name:address, so that plb processes sharing the servers throttle
// and ban an address together. No memcached call runs on an event loop:
// a request that made a violation or a ban writes its address's state,
// and any request asks for the shared one at most every second, both
// queued to a few goroutines (memcached_async_clients). A write reads
// first and writes the merge (the later ban, the more violations in the
// window), so that a process that has not heard of a ban does not erase
// it; what is read is merged into the local entry the same way, which
// the address's next requests see. memcached unreachable leaves the local
// state alone, with a warning, and no request fails.
type throttleRemote struct {
	client  *memcache.Client
	servers []string
	prefix  string
	// shards are the goroutines' queues: an address's calls all go to one
	// (by a hash of it), in order, so that an older state is never written
	// after a newer one.
	shards []remoteShard
	table  *throttleTable
	// limits bound what is taken from memcached (another process's write,
	// or anyone's who can write there): the service's own tunables.
	limits  atomic.Pointer[shareLimits]
	log     atomic.Pointer[slog.Logger]
	failing atomic.Bool
}

// remoteShard is one goroutine's queue; the goroutine runs while it has
// calls, and ends when it is empty.
type remoteShard struct {
	queue   chan remoteOp
	running atomic.Bool
}

// shareLimits bound a shared state taken in: a ban no longer than
// ban_expiration, a window no longer than the threshold or max_delay,
// violations no more than ban_threshold (or maxViolations).
type shareLimits struct {
	banFor, window time.Duration
	violations     int
}

// remoteOp is one memcached call: a set of value (when value is not
// nil), else a get; for address ip, made at now.
type remoteOp struct {
	ip    netip.Addr
	get   bool
	value []byte
	now   time.Time
}

// Bounds of the shared state.
const (
	// remoteQueue bounds the calls waiting, over the shards: past it a
	// call is dropped (the local state decides alone).
	remoteQueue = 4096
	// remoteAskEvery is how often one address's shared state is asked
	// for, at most.
	remoteAskEvery = time.Second
	// remoteTimeout bounds one call.
	remoteTimeout = 500 * time.Millisecond
	// maxRemoteWorkers bounds memcached_async_clients.
	maxRemoteWorkers = 64
	// maxViolations bounds the violations taken in without ban_threshold.
	maxViolations = 64
	// maxInstanceName leaves room in memcached's 250-byte keys for an
	// IPv6 address.
	maxInstanceName = 200
)

// useRemote makes the table share its state over servers (nil: not at
// all), keeping the client it has when nothing changed, with the
// service's tunables as the bounds of what it takes in. It returns the
// remote (nil for none).
func (tb *throttleTable) useRemote(servers []string, instance string, workers int, lim shareLimits) (*throttleRemote, error) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	old := tb.remote
	if servers == nil {
		if old != nil {
			old.client.Close()
		}
		tb.remote = nil
		return nil, nil
	}
	if len(instance) > maxInstanceName {
		return nil, fmt.Errorf("instance_name: longer than %d bytes (it prefixes memcached's keys)", maxInstanceName)
	}
	prefix := strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f {
			return '_'
		}
		return r
	}, instance) + ":"
	workers = min(max(workers, 1), maxRemoteWorkers)
	if old != nil && slices.Equal(old.servers, servers) && old.prefix == prefix && len(old.shards) == workers {
		old.limits.Store(&lim)
		return old, nil
	}
	if old != nil {
		old.client.Close()
	}
	rm := &throttleRemote{client: memcache.New(servers, remoteTimeout), servers: servers, prefix: prefix, table: tb,
		shards: make([]remoteShard, workers)}
	for i := range rm.shards {
		rm.shards[i].queue = make(chan remoteOp, max(remoteQueue/workers, 64))
	}
	rm.limits.Store(&lim)
	tb.remote = rm
	return rm, nil
}

// ops is what a request does to the shared state of e's address: its
// new state written when changed, and the others' asked for at most every
// remoteAskEvery. Called with the table locked; send does it.
func (rm *throttleRemote) ops(e *ipState, now time.Time, changed bool) remoteOp {
	op := remoteOp{ip: e.ip, now: now}
	if changed {
		op.value = encodeShared(e)
	}
	if e.asked.IsZero() || now.Sub(e.asked) >= remoteAskEvery {
		e.asked = now
		op.get = true
	}
	return op
}

// send queues op's calls (the write first), without waiting.
func (rm *throttleRemote) send(op remoteOp, log *slog.Logger) {
	if log != nil && rm.log.Load() == nil {
		rm.log.Store(log)
	}
	if op.value != nil {
		rm.enqueue(remoteOp{ip: op.ip, value: op.value, now: op.now})
	}
	if op.get {
		rm.enqueue(remoteOp{ip: op.ip, get: true, now: op.now})
	}
}

// enqueue queues a call on its address's shard, dropped when the shard
// is full, and starts the shard's goroutine when it is not running.
func (rm *throttleRemote) enqueue(op remoteOp) {
	a := op.ip.As16()
	sh := &rm.shards[crc32.ChecksumIEEE(a[:])%uint32(len(rm.shards))]
	select {
	case sh.queue <- op:
	default:
		return // memcached too slow: the local state decides
	}
	if sh.running.CompareAndSwap(false, true) {
		go rm.work(sh)
	}
}

// work runs a shard's calls in order until its queue is empty.
func (rm *throttleRemote) work(sh *remoteShard) {
	for {
		select {
		case op := <-sh.queue:
			rm.do(op)
		default:
			sh.running.Store(false)
			// A call queued as this one was leaving: run it.
			if len(sh.queue) > 0 && sh.running.CompareAndSwap(false, true) {
				continue
			}
			return
		}
	}
}

// do makes one call, and merges what a get found.
func (rm *throttleRemote) do(op remoteOp) {
	key := rm.prefix + op.ip.String()
	var err error
	if op.get {
		var v []byte
		v, err = rm.client.Get(key)
		if err == nil {
			rm.merge(op.ip, v, op.now)
		} else if errors.Is(err, memcache.ErrMiss) {
			err = nil
		}
	} else {
		value := op.value
		if v, gerr := rm.client.Get(key); gerr == nil {
			rm.merge(op.ip, v, op.now)
			value = mergeShared(value, rm.clamp(v, op.now))
		}
		err = rm.client.Set(key, value, sharedTTL(value, op.now))
	}
	log := rm.log.Load()
	switch {
	case err != nil:
		if !rm.failing.Swap(true) && log != nil {
			log.Warn("memcached unreachable: Throttle decides on this process's state alone", "plugin", "Throttle", "err", err)
		}
	case rm.failing.Swap(false) && log != nil:
		log.Info("memcached answers again: Throttle shares its state", "plugin", "Throttle")
	}
}

// clamp bounds a shared state read from memcached by the service's own
// tunables (shareLimits), as of now: whoever wrote it, it bans no longer
// than ban_expiration and counts no more than this process would.
func (rm *throttleRemote) clamp(v []byte, now time.Time) []byte {
	last, violations, expires, banned, ok := decodeShared(v)
	if !ok {
		return v
	}
	lim := rm.limits.Load()
	if t := now.Add(lim.banFor); banned.After(t) {
		banned = t
	}
	if t := now.Add(lim.window); expires.After(t) {
		expires = t
	}
	if last.After(now) {
		last = now
	}
	violations = min(violations, lim.violations)
	return encodeShared(&ipState{last: last, violations: violations, expires: expires, bannedUntil: banned})
}

// sharedTTL is how long memcached keeps a state: while its window or its
// ban lasts, at least a second.
func sharedTTL(v []byte, now time.Time) time.Duration {
	_, _, expires, banned, _ := decodeShared(v)
	return max(expires.Sub(now), banned.Sub(now), time.Second)
}

// merge takes into the local entry of ip what the shared state says
// (clamped): the later ban, and the violations of the window when more
// than the local ones.
func (rm *throttleRemote) merge(ip netip.Addr, v []byte, now time.Time) {
	last, violations, expires, banned, ok := decodeShared(rm.clamp(v, now))
	if !ok {
		return
	}
	tb := rm.table
	tb.mu.Lock()
	defer tb.mu.Unlock()
	e := tb.ips[ip]
	if e == nil {
		return // forgotten meanwhile: its next request asks again
	}
	mergeInto(e, last, violations, expires, banned)
}

// mergeInto takes a shared state into e: the later ban, and the
// violations of a window that lasts longer when they are no fewer.
func mergeInto(e *ipState, last time.Time, violations int, expires, banned time.Time) {
	if banned.After(e.bannedUntil) {
		e.bannedUntil = banned
	}
	if expires.After(e.expires) && violations >= e.violations {
		e.violations, e.expires = violations, expires
		if last.After(e.last) {
			e.last = last
		}
	}
}

// mergeShared is mine merged with theirs, as merge takes theirs into an
// entry: the later ban, the more violations when theirs last longer.
func mergeShared(mine, theirs []byte) []byte {
	l1, v1, e1, b1, ok1 := decodeShared(mine)
	l2, v2, e2, b2, ok2 := decodeShared(theirs)
	if !ok1 || !ok2 {
		return mine
	}
	e := &ipState{last: l1, violations: v1, expires: e1, bannedUntil: b1}
	mergeInto(e, l2, v2, e2, b2)
	return encodeShared(e)
}

// encodeShared is an entry's shared state: "last violations expires
// banned", times in Unix milliseconds (0: none).
func encodeShared(e *ipState) []byte {
	ms := func(t time.Time) int64 {
		if t.IsZero() {
			return 0
		}
		return t.UnixMilli()
	}
	// On a request's path (under the table's lock): no fmt.
	b := make([]byte, 0, 64)
	for i, v := range [4]int64{ms(e.last), int64(e.violations), ms(e.expires), ms(e.bannedUntil)} {
		if i > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendInt(b, v, 10)
	}
	return b
}

// decodeShared reads encodeShared's form; ok false for anything else
// (another program's value under the key). It allocates nothing.
func decodeShared(v []byte) (last time.Time, violations int, expires, banned time.Time, ok bool) {
	var n [4]int64
	i := 0
	for f := range n {
		if f > 0 {
			if i >= len(v) || v[i] != ' ' {
				return
			}
			i++
		}
		start := i
		for i < len(v) && v[i] >= '0' && v[i] <= '9' && i-start < 18 {
			n[f] = n[f]*10 + int64(v[i]-'0')
			i++
		}
		if i == start {
			return
		}
	}
	if i != len(v) {
		return
	}
	t := func(ms int64) time.Time {
		if ms == 0 {
			return time.Time{}
		}
		return time.UnixMilli(ms)
	}
	return t(n[0]), int(min(n[1], 1<<20)), t(n[2]), t(n[3]), true
}
