// Package source holds where a pool's nodes come from: a static list from
// the config, or a nodefile watched for changes (DNS and etcd would be
// more of the same). A source hands each node list to a Publish function,
// which the server makes from the pool's atomic update (pool.SetNodes); a
// source that fails publishes nothing, so the pool keeps its last list.
package source

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/plb/plb/config"
)

// Publish replaces a pool's node list ("ip:port" addresses). It is called
// from the source's Run goroutine; an error is logged by the source.
type Publish func(nodes []string) error

// Source is where one pool's nodes come from.
type Source interface {
	// String names the source for logs ("static", "nodefile /etc/nodes").
	String() string
	// Nodes returns the list to start with, which the server publishes
	// when it applies the config that asked for this source.
	Nodes() []string
	// Run publishes each later change of the list until ctx is done; a
	// source with nothing to watch returns at once. Run is called at most
	// once.
	Run(ctx context.Context, publish Publish)
	// Continues reports whether next, the source a new config asks for,
	// is this one again: this one then keeps running and keeps owning the
	// pool's nodes, and next is dropped unstarted (its Nodes, read when
	// the config was parsed, may be older than what this one published).
	Continues(next Source) bool
}

// Options are what a source is given rather than finds for itself.
type Options struct {
	// Log receives warnings and debug lines (nil: discarded). The server
	// gives each pool's source a logger that names the pool.
	Log *slog.Logger
	// Every is how often a nodefile is looked at (0: 3 s, as Perlbal,
	// which checks at pick time once more than 3 s have passed).
	Every time.Duration
	// Ticker makes the clock a nodefile source waits on (nil: a
	// time.Ticker); tests drive it by hand.
	Ticker Ticker
	// Now is the clock of a source's Status (nil: time.Now).
	Now func() time.Time
}

// Reporter is a source that says how it is doing (DNS, etcd): whether its
// last question was answered, and since when.
type Reporter interface {
	Status() *Status
}

// Status is a source's health, written by its Run and read by the
// status page and /metrics. Safe from any goroutine.
type Status struct {
	mu  sync.Mutex
	now func() time.Time
	st  StatusSnapshot
}

// StatusSnapshot is a Status at one time.
type StatusSnapshot struct {
	// OK: the last question was answered; Err is why not, Since when
	// OK last changed, Nodes the nodes the pool has from the source,
	// Failures the questions that failed since the start.
	OK       bool
	Err      string
	Since    time.Time
	Nodes    int
	Failures int64
}

func newStatus(now func() time.Time) *Status {
	return &Status{now: now, st: StatusSnapshot{OK: true, Since: now()}}
}

// Snapshot returns the status now.
func (s *Status) Snapshot() StatusSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

func (s *Status) ok(nodes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.st.OK {
		s.st.OK, s.st.Since = true, s.now()
	}
	s.st.Err, s.st.Nodes = "", nodes
}

func (s *Status) failed(err error, nodes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.OK {
		s.st.OK, s.st.Since = false, s.now()
	}
	s.st.Err, s.st.Nodes = err.Error(), nodes
	s.st.Failures++
}

// Ticker returns a channel that ticks every d, and a function that stops it.
type Ticker func(d time.Duration) (c <-chan time.Time, stop func())

// DefaultEvery is how often a nodefile is looked at by default.
const DefaultEvery = 3 * time.Second

func realTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

func (o Options) withDefaults() Options {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Every <= 0 {
		o.Every = DefaultEvery
	}
	if o.Ticker == nil {
		o.Ticker = realTicker
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// ForPool returns the source a pool's config asks for: DNS or etcd when
// its nodes_from says so (starting from pc.Nodes when the first question
// fails), its nodefile when it has one (starting from pc.Nodes, the file
// as read at parse time), else its static node list.
func ForPool(pc *config.Pool, o Options) Source {
	if pc.NodesFrom != "" {
		if strings.HasPrefix(pc.NodesFrom, "etcd:") {
			auth := EtcdAuth{Username: pc.EtcdUsername, Password: pc.EtcdPassword, CAFile: pc.EtcdCAFile,
				CertFile: pc.EtcdCertFile, KeyFile: pc.EtcdKeyFile}
			if e, err := NewEtcd(pc.NodesFrom, auth, pc.Nodes, o); err == nil {
				return e
			} else if o.Log != nil {
				o.Log.Warn("node source cannot start; the configured nodes stay", "source", pc.NodesFrom, "err", err)
			}
		} else if d, err := NewDNS(pc.NodesFrom, pc.DNSServer, pc.Nodes, o); err == nil {
			return d
		}
		// The config checked the spec: only a CA file gone since.
	}
	if pc.NodeFile != "" {
		return NewNodefile(pc.NodeFile, pc.Nodes, o)
	}
	return NewStatic(pc.Nodes)
}

// Static is a fixed node list, the config's.
type Static struct{ nodes []string }

var _ Source = (*Static)(nil)

// NewStatic returns a source of nodes, which never change.
func NewStatic(nodes []string) *Static { return &Static{nodes: slices.Clone(nodes)} }

// String implements Source.
func (*Static) String() string { return "static" }

// Nodes implements Source.
func (s *Static) Nodes() []string { return slices.Clone(s.nodes) }

// Run implements Source: a static list has no change to publish.
func (*Static) Run(context.Context, Publish) {}

// Continues implements Source: never, since a new config's list is
// published whatever it is (as Perlbal's POOL ADD and a reload do).
func (*Static) Continues(Source) bool { return false }
