package health

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/plb/plb/pool"
)

// Target is a pool to watch with its policy.
type Target struct {
	Pool   *pool.Pool
	Policy Policy
}

// Monitor probes nodes: down ones every Policy.Cleanup until they come back,
// up ones every Policy.Interval when active checks are on. A caller drives it
// with Tick (the server every TickEvery); probes run on their own goroutines.
type Monitor struct {
	// Log receives one line per transition (and debug lines per probe).
	Log *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time

	mu    sync.Mutex
	nodes map[*pool.Node]*nodeState
	wg    sync.WaitGroup
}

// nodeState is what the monitor knows of one node. Guarded by Monitor.mu.
type nodeState struct {
	gen  int64     // node.Transitions() when last looked at
	next time.Time // when the next probe is due
	busy bool      // a probe is running
	ok   int       // consecutive good probes while down
	bad  int       // consecutive failed checks while up
}

func (m *Monitor) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Monitor) log() *slog.Logger {
	if m.Log != nil {
		return m.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Tick starts the probes that are due: for every down node of targets,
// one per Policy.Cleanup (the first a full interval after it went down, as
// PLB); for every up node, one per Policy.Interval when that is set. A node
// is never probed twice at once. Tick does not wait for the probes; nodes no
// longer in any target are forgotten. Safe from any goroutine.
func (m *Monitor) Tick(ctx context.Context, targets []Target) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.nodes == nil {
		m.nodes = map[*pool.Node]*nodeState{}
	}
	seen := make(map[*pool.Node]bool, len(m.nodes))
	for _, t := range targets {
		pol := t.Policy.withDefaults()
		for _, n := range t.Pool.Nodes() {
			seen[n] = true
			down := n.Down()
			gen := n.Transitions()
			st := m.nodes[n]
			if st == nil || st.gen != gen {
				// New to us, or it changed state since the last look
				// (traffic, a probe, by hand): start counting afresh.
				if st == nil {
					st = &nodeState{}
					m.nodes[n] = st
				}
				next := now.Add(pol.Interval)
				if down {
					next = now.Add(pol.Cleanup)
				}
				st.restart(gen, next)
			}
			cadence := pol.Cleanup
			if !down {
				cadence = pol.Interval
			}
			if cadence > 0 && st.next.After(now.Add(cadence)) {
				st.next = now // the interval was shortened: probe now
			}
			if st.busy {
				continue
			}
			if suspect, why := n.Suspect(); suspect && !down {
				// Passive evidence to confirm: at once.
				st.busy = true
				m.wg.Add(1)
				go m.run(ctx, pol.Confirm, n, st, gen, pol.timeout(maxProbeTimeout), func(err error) {
					m.confirm(t.Pool.Name, n, st, pol, why, err)
				})
				continue
			}
			if cadence <= 0 || now.Before(st.next) {
				continue
			}
			st.next = now.Add(cadence)
			st.busy = true
			m.wg.Add(1)
			pr := pol.Probe
			if down {
				pr = pol.Confirm // a node comes back when it passes what took it out
			}
			go m.run(ctx, pr, n, st, gen, pol.timeout(cadence), func(err error) {
				m.probe(t.Pool.Name, n, st, pol, pr, down, err)
			})
		}
	}
	for n := range m.nodes {
		if !seen[n] {
			delete(m.nodes, n)
		}
	}
}

// run runs probe p against n within timeout, then, under m.mu, marks st
// idle and calls apply with the result, unless n changed state meanwhile
// (the result would be stale) or ctx was cancelled.
func (m *Monitor) run(ctx context.Context, p Probe, n *pool.Node, st *nodeState, gen int64, timeout time.Duration, apply func(err error)) {
	defer m.wg.Done()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	err := p.Check(cctx, n.Addr)
	cancel()
	m.mu.Lock()
	defer m.mu.Unlock()
	st.busy = false
	if n.Transitions() != gen || ctx.Err() != nil {
		return
	}
	apply(err)
}

// probe applies the result of a regular probe: a down node comes back
// after rise good ones, an up node goes down after fall failed ones.
// Called by run, with m.mu held.
func (m *Monitor) probe(poolName string, n *pool.Node, st *nodeState, pol Policy, pr Probe, down bool, err error) {
	log := m.log()
	now := m.now()
	if down {
		if err != nil {
			st.ok = 0
			log.Debug("node still down", "pool", poolName, "node", n.Name, "probe", pr.String(), "err", Describe(err))
			return
		}
		if st.ok++; st.ok < pol.Rise {
			return
		}
		reason := fmt.Sprintf("%s probe succeeded", pr)
		if pol.Rise > 1 {
			reason = fmt.Sprintf("%d %s probes succeeded", pol.Rise, pr)
		}
		if n.MarkUp(reason, now) {
			log.Warn("node up", "pool", poolName, "node", n.Name, "reason", reason)
			st.restart(n.Transitions(), now.Add(pol.Interval))
		}
		return
	}
	if err == nil {
		st.bad = 0
		return
	}
	if st.bad++; st.bad < pol.Fall {
		log.Debug("node check failed", "pool", poolName, "node", n.Name, "probe", pol.Probe.String(), "err", Describe(err), "failures", st.bad)
		return
	}
	reason := fmt.Sprintf("%s check failed: %s", pol.Probe, Describe(err))
	if st.bad > 1 {
		reason = fmt.Sprintf("%d %s checks failed, last: %s", st.bad, pol.Probe, Describe(err))
	}
	if n.MarkDown(reason, now) {
		log.Warn("node down", "pool", poolName, "node", n.Name, "reason", reason)
		st.restart(n.Transitions(), now.Add(pol.Cleanup))
	}
}

// confirm applies the result of the Confirm probe of a suspect node: a
// failure marks it down with the passive reason (why) and the probe's, a
// success clears the suspicion (the failures were the requests' own).
// Called by run, with m.mu held.
func (m *Monitor) confirm(poolName string, n *pool.Node, st *nodeState, pol Policy, why string, err error) {
	log := m.log()
	if err == nil {
		n.ClearSuspect()
		log.Warn("node kept up", "pool", poolName, "node", n.Name,
			"reason", why+"; "+pol.Confirm.String()+" probe succeeded")
		return
	}
	reason := why + "; confirmed by " + pol.Confirm.String() + " probe: " + Describe(err)
	if n.MarkDown(reason, m.now()) {
		log.Warn("node down", "pool", poolName, "node", n.Name, "reason", reason)
		st.restart(n.Transitions(), m.now().Add(pol.Cleanup))
	}
}

// restart starts counting afresh after n changed state; the next probe is
// due at next.
func (st *nodeState) restart(gen int64, next time.Time) {
	st.gen, st.ok, st.bad, st.next = gen, 0, 0, next
}

// Wait waits for the running probes to finish (cancel Tick's context to
// hurry them). Safe from any goroutine.
func (m *Monitor) Wait() { m.wg.Wait() }

// TickEvery is how often targets need a Tick: a quarter of their shortest
// interval, between 50ms and 1s.
func TickEvery(targets []Target) time.Duration {
	d := time.Second
	for _, t := range targets {
		p := t.Policy.withDefaults()
		for _, iv := range []time.Duration{p.Cleanup, p.Interval} {
			if iv > 0 {
				d = min(d, iv/4)
			}
		}
	}
	return max(d, minMonitorTick)
}

// minMonitorTick is the monitor's shortest wake-up period, whatever the
// pools' intervals.
const minMonitorTick = 50 * time.Millisecond
