package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
	"github.com/plb/plb/pool"
)

// Policy is how one pool's nodes are judged.
type Policy struct {
	// ServerRetry is how many consecutive failures on real traffic mark a
	// node down (default 5); the proxy applies it.
	ServerRetry int
	// Cleanup is how often a down node is probed (timeout_cleanup, default
	// 15s).
	Cleanup time.Duration
	// Probe checks a node (default TCP).
	Probe Probe
	// Interval is how often a node that is up is probed (check_interval;
	// default 0: never, as PLB).
	Interval time.Duration
	// Rise is how many consecutive good probes bring a down node up
	// (default 1, as PLB; HAProxy's is 2).
	Rise int
	// Fall is how many consecutive failed active checks mark an up node
	// down (default 3, as HAProxy).
	Fall int
	// Timeout bounds one probe (default the smaller of its interval and
	// 5s).
	Timeout time.Duration
	// Confirm is the probe that decides about a suspect node and brings a
	// down node back (default: Probe): passive evidence that may be the
	// requests' own doing, or that would take out most of the pool, is
	// confirmed by it before the node goes down, and a node it failed
	// comes back only once it passes.
	Confirm Probe
}

// Defaults of a Policy.
const (
	DefaultServerRetry = 5
	DefaultCleanup     = 15 * time.Second
	DefaultRise        = 1
	DefaultFall        = 3
	maxProbeTimeout    = 5 * time.Second
)

// PolicyFor returns the policy of a configured pool, its probe made by
// probes (NewProbes, with any protocol's probes added) from its check key.
func PolicyFor(pc *config.Pool, probes Probes) (Policy, error) {
	pr, err := probes.New(pc)
	if err != nil {
		return Policy{}, fmt.Errorf("pool %s: %w", pc.Name, err)
	}
	return Policy{
		ServerRetry: pc.ServerRetry,
		Cleanup:     pc.TimeoutCleanup,
		Probe:       pr,
		Interval:    pc.CheckInterval,
		Rise:        pc.Rise,
		Fall:        pc.Fall,
	}.withDefaults(), nil
}

func (p Policy) withDefaults() Policy {
	if p.ServerRetry <= 0 {
		p.ServerRetry = DefaultServerRetry
	}
	if p.Cleanup <= 0 {
		p.Cleanup = DefaultCleanup
	}
	if p.Probe == nil {
		p.Probe = TCP{}
	}
	if p.Confirm == nil {
		p.Confirm = p.Probe
	}
	if p.Interval < 0 {
		p.Interval = 0
	}
	if p.Rise <= 0 {
		p.Rise = DefaultRise
	}
	if p.Fall <= 0 {
		p.Fall = DefaultFall
	}
	return p
}

// timeout bounds a probe run every cadence.
func (p Policy) timeout(cadence time.Duration) time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return min(cadence, maxProbeTimeout)
}

// PassiveReason is the reason recorded when real traffic marks a node down
// after retry consecutive failures, the last being err.
func PassiveReason(retry int, err error) string {
	return fmt.Sprintf("%d consecutive failures on traffic, last: %s", retry, Describe(err))
}

// Verdict is what a failure on traffic did to a node.
type Verdict uint8

// Verdicts of Failed and RequestFailed.
const (
	Unchanged Verdict = iota // counted, nothing more
	WentDown                 // marked down (log it: it changed now)
	Suspected                // suspect: the monitor's Confirm probe decides
)

// Failed counts a failure that is the node's own against n (a refused or
// timed-out connect, a relay's bad greeting: nothing of a client's was
// sent yet). When it makes retry failures in a row (pool.Node.Fail), n is
// marked down with PassiveReason, unless that would leave fewer than half
// of nodes (the pool's, n among them) up: passive evidence alone never
// takes out most of a pool, so n becomes suspect and a probe decides
// (Envoy caps ejection the same way). The reason is returned for the
// caller to log. Safe from any goroutine.
func Failed(nodes []*pool.Node, n *pool.Node, retry int, err error, now time.Time) (string, Verdict) {
	if !n.Fail(retry) {
		return "", Unchanged
	}
	reason := PassiveReason(retry, err)
	up := 0
	for _, m := range nodes {
		if m != n && !m.Down() {
			up++
		}
	}
	if 2*up < len(nodes) {
		if n.MarkSuspect(reason) {
			return reason, Suspected
		}
		return "", Unchanged
	}
	if n.MarkDown(reason, now) {
		return reason, WentDown
	}
	return "", Unchanged
}

// Log logs a verdict of Failed or RequestFailed (nothing for Unchanged),
// at warning level as every health transition.
func (v Verdict) Log(log *slog.Logger, poolName, node, reason string) {
	switch v {
	case WentDown:
		log.Warn("node down", "pool", poolName, "node", node, "reason", reason)
	case Suspected:
		log.Warn("node suspect", "pool", poolName, "node", node, "reason", reason+"; probing before marking it down")
	}
}

// RequestFailed counts against n the failure of a request it took (reset,
// timeout or a broken reply after the request was sent). One URL can do
// that to a node that serves everyone else, so this never marks n down:
// after retry of them in a row (pool.Node.FailRequest) n becomes suspect
// and the monitor's Confirm probe decides. Safe from any goroutine.
func RequestFailed(n *pool.Node, retry int, err error) (string, Verdict) {
	if !n.FailRequest(retry) {
		return "", Unchanged
	}
	reason := fmt.Sprintf("%d consecutive request failures, last: %s", retry, Describe(err))
	if n.MarkSuspect(reason) {
		return reason, Suspected
	}
	return "", Unchanged
}

// Describe names a failure briefly: "connection refused", "connection
// reset", "timeout", what an error naming itself says (an SMTP probe's
// "timeout waiting for banner reply"), or the error's text (without the
// text of a NewProbeError sentinel it wraps, as "health: smtp: ").
func Describe(err error) string {
	var te interface{ Timeout() bool }
	var d describer
	var pe *probeError
	switch {
	case err == nil:
		return "connection closed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "unreachable"
	case errors.As(err, &d):
		return d.Describe()
	case errors.Is(err, engine.ErrConnectTimeout):
		return "connect timeout"
	case errors.Is(err, engine.ErrTimeout), errors.Is(err, syscall.ETIMEDOUT),
		errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &te) && te.Timeout():
		return "timeout"
	case errors.As(err, &pe):
		return strings.TrimPrefix(err.Error(), pe.text+": ")
	}
	return err.Error()
}
