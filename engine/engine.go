//go:build linux

// Package engine is plb's reactor: N event loops built from gnet's exported
// parts (pkg/queue's lock-free task queue, pkg/socket; its poller is
// pkg/netpoll's, changed where poller.go says), each owning the connections
// it accepts and dials, with flow control (pause/resume reading, write
// watermarks and drain callbacks), exact close (close-after-flush,
// half-close), per-connection timeouts, non-blocking dials, sendfile, accept
// that survives descriptor exhaustion, and graceful drain. See DESIGN.md section 2 for why it is not built on gnet.Engine.
//
// Contract: methods documented "runs on the loop" must be called from a
// callback or task running on the loop that owns the object and must not
// block; methods documented "safe from any goroutine" may be called anywhere.
package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Errors reported by the engine, wrapped with %w where they carry detail.
var (
	ErrClosed         = errors.New("engine: connection closed")
	ErrConnectTimeout = errors.New("engine: connect timeout")
	ErrTimeout        = errors.New("engine: timeout")
	ErrStopped        = errors.New("engine: stopped")
)

// Config configures an Engine. The zero value is usable.
type Config struct {
	// Loops is the number of event loops (default runtime.GOMAXPROCS(0)).
	Loops int
	// Logger receives engine events (default: discard).
	Logger *slog.Logger
	// Now is the clock (default time.Now); tests inject a fake one.
	Now func() time.Time
	// Tick is the granularity of timers and timeouts (default 50ms).
	Tick time.Duration
	// HighWater is the default outbound memory mark above which Full reports
	// true (default 256 KiB).
	HighWater int
	// LowWater is the mark at or below which OnDrain fires after the queue
	// was full (default 64 KiB).
	LowWater int
	// MaxInbound caps bytes a handler may leave unconsumed on a connection;
	// past it the connection is closed (default 1 MiB).
	MaxInbound int
	// Inherited are listening sockets the process was given (systemd
	// socket activation; see Inherit): Listen adopts the one matching its
	// address instead of binding.
	Inherited []*InheritedSocket
	// LingerTimeout bounds how long a closing accepted connection discards
	// late input after its output was flushed and its write side shut, so
	// the peer is not reset before it read everything (default 2s).
	LingerTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Loops <= 0 {
		c.Loops = runtime.GOMAXPROCS(0)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Tick <= 0 {
		c.Tick = 50 * time.Millisecond
	}
	if c.HighWater <= 0 {
		c.HighWater = 256 << 10
	}
	if c.LowWater <= 0 || c.LowWater > c.HighWater {
		c.LowWater = c.HighWater / 4
	}
	if c.MaxInbound <= 0 {
		c.MaxInbound = 1 << 20
	}
	if c.LingerTimeout <= 0 {
		c.LingerTimeout = 2 * time.Second
	}
}

// Engine is a set of event loops. Create it with New, add listeners with
// Listen, then Start it.
type Engine struct {
	cfg   Config
	loops []*Loop
	log   *slog.Logger

	mu       sync.Mutex
	started  bool
	stopped  bool
	wg       sync.WaitGroup
	stopTick chan struct{}
	conns    atomic.Int64 // open connections over all loops
	pipeIDs  atomic.Int64 // the last pair end's number (its Fd is minus it)
	// epoch is where the loops' clock readings (Loop.Clock) count from:
	// a second before New, so that 0 can mean none. Differences from it
	// use the monotonic clock, so a step of the wall clock moves no
	// timeout.
	epoch time.Time
	// clients counts accepted connections over all listeners (refused
	// ones aside); maxClients caps them (0: no cap; SetMaxClients).
	clients, maxClients atomic.Int64

	// listening are the open listeners (Listen refuses a port another
	// process listens on, not one of these).
	lnMu      sync.Mutex
	listening map[*Listener]struct{}
}

// New creates an engine with its loops (not yet running).
func New(cfg Config) (*Engine, error) {
	cfg.setDefaults()
	e := &Engine{cfg: cfg, log: cfg.Logger, stopTick: make(chan struct{}), listening: map[*Listener]struct{}{},
		epoch: cfg.Now().Add(-time.Second)}
	for i := 0; i < cfg.Loops; i++ {
		l, err := newLoop(e, i)
		if err != nil {
			for _, l := range e.loops {
				l.poller.close()
			}
			return nil, fmt.Errorf("engine: loop %d: %w", i, err)
		}
		e.loops = append(e.loops, l)
	}
	return e, nil
}

// SetMaxClients caps the accepted connections of all listeners together
// (0: no cap). At the cap a new client is refused as at a listener's
// MaxConns; the connections already open are not touched. Safe from any
// goroutine.
func (e *Engine) SetMaxClients(n int) { e.maxClients.Store(int64(n)) }

// Clients returns the number of accepted connections open over all
// listeners. Safe from any goroutine.
func (e *Engine) Clients() int64 { return e.clients.Load() }

// Loops returns the engine's loops. Safe from any goroutine.
func (e *Engine) Loops() []*Loop { return e.loops }

// Conns returns the number of open connections (accepted and dialed) over
// all loops. Safe from any goroutine.
func (e *Engine) Conns() int64 { return e.conns.Load() }

// Start runs every loop on its own goroutine locked to an OS thread, plus
// one ticker goroutine that drives timers. Safe from any goroutine.
func (e *Engine) Start() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started || e.stopped {
		return
	}
	e.started = true
	for _, l := range e.loops {
		e.wg.Add(1)
		go func(l *Loop) {
			defer e.wg.Done()
			runtime.LockOSThread()
			l.run()
		}(l)
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		t := time.NewTicker(e.cfg.Tick)
		defer t.Stop()
		for {
			select {
			case <-e.stopTick:
				return
			case <-t.C:
				for _, l := range e.loops {
					l.tick()
				}
			}
		}
	}()
}

// Stop closes every listener and connection at once and waits for the loops
// to exit. For a graceful stop, close listeners and wait for Conns to reach
// zero first. Safe from any goroutine except a loop.
func (e *Engine) Stop() {
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		return
	}
	e.stopped = true
	started := e.started
	e.mu.Unlock()
	if started {
		close(e.stopTick)
		for _, l := range e.loops {
			l.stop()
		}
		e.wg.Wait()
	}
	for _, l := range e.loops {
		l.poller.close()
	}
}

// RunAll runs fn on every loop and waits until all have run it. Safe from
// any goroutine except a loop (it would wait on itself).
func (e *Engine) RunAll(fn func(l *Loop)) {
	var wg sync.WaitGroup
	for _, l := range e.loops {
		wg.Add(1)
		l := l
		if !l.Run(func() { defer wg.Done(); fn(l) }) {
			wg.Done()
		}
	}
	wg.Wait()
}
