//go:build linux

package engine

import (
	"container/heap"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	gerrors "github.com/panjf2000/gnet/v2/pkg/errors"
)

// pollable is anything registered in a loop's poller.
type pollable interface {
	onEvent(ev uint32)
}

// Loop is one event loop: a goroutine with its own epoll instance that owns
// every connection it accepts or dials. Nothing a loop owns is locked: other
// goroutines reach it only through Run.
type Loop struct {
	id     int
	eng    *Engine
	poller *poller
	log    *slog.Logger

	fds      []pollable         // indexed by fd
	pipes    map[*Conn]struct{} // the ends of Pairs (no descriptor)
	pipeBuf  []byte             // file bytes on their way into a pair (flushPipe)
	batch    []func()           // Defer's, run after the poll's batch (endBatch)
	readBuf  []byte             // shared read buffer, valid during one OnData call
	now      time.Time          // cached clock, refreshed per event batch
	timers   timerHeap
	deferred []deferredTask // run after the current event (OnClose, redelivery)
	free     [][]byte       // free outbound blocks
	conns    int            // open conns on this loop
	more     bool           // OnData is handling bytes the peer's FIN follows
	corked   []*Conn        // written with MSG_MORE in this event
	stopping bool
	ticking  atomic.Bool // a tick task is queued
	stopped  atomic.Bool
}

const (
	readBufSize   = 64 << 10
	outBlockSize  = 32 << 10
	maxFreeBlocks = 128
)

func newLoop(e *Engine, id int) (*Loop, error) {
	p, err := openPoller()
	if err != nil {
		return nil, err
	}
	return &Loop{
		id:      id,
		eng:     e,
		poller:  p,
		log:     e.log.With("loop", id),
		readBuf: make([]byte, readBufSize),
		now:     e.cfg.Now(),
	}, nil
}

// ID returns the loop's index. Safe from any goroutine.
func (l *Loop) ID() int { return l.id }

// Now returns the loop's cached clock, refreshed before each batch of
// events. Runs on the loop.
func (l *Loop) Now() time.Time { return l.now }

// Clock returns Now as nanoseconds on the engine's monotonic clock: 8
// bytes to keep where a time.Time takes 24, positive from the engine's
// start on (0 can mean none), and unmoved by steps of the wall clock. Runs
// on the loop.
func (l *Loop) Clock() int64 { return l.eng.clock(l.now) }

// ClockTime is the wall time of a Clock reading, as the wall clock reads
// now: Now less the time elapsed since (0: the zero time). Runs on the
// loop.
func (l *Loop) ClockTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return l.now.Add(-time.Duration(l.Clock() - ns))
}

func (e *Engine) clock(t time.Time) int64 { return int64(t.Sub(e.epoch)) }

// Conns returns the number of open connections on this loop. Runs on the loop.
func (l *Loop) Conns() int { return l.conns }

// Run queues fn to run on the loop and reports whether it was queued (false
// once the engine has stopped). Safe from any goroutine.
func (l *Loop) Run(fn func()) bool {
	if l.stopped.Load() {
		return false
	}
	err := l.poller.trigger(false, runTask, loopTask{l, fn})
	return err == nil
}

// loopTask is a function queued by Run.
type loopTask struct {
	l  *Loop
	fn func()
}

// runTask runs a Run task, then what it deferred (a Kick's redelivery, an
// OnClose), as after any event: not at the next tick.
func runTask(arg any) error {
	t := arg.(loopTask)
	t.l.now = t.l.eng.cfg.Now()
	t.fn()
	t.l.runDeferred()
	if t.l.stopping {
		return gerrors.ErrEngineShutdown
	}
	return nil
}

func (l *Loop) run() {
	err := l.poller.polling(l.dispatch, l.endBatch)
	if err != nil && !errors.Is(err, gerrors.ErrEngineShutdown) {
		l.log.Error("loop stopped", "err", err)
	}
	l.shutdownConns()
}

// dispatch handles one poll event. It runs the deferred callbacks queued by
// the handler before returning, so re-entrant closes are safe.
func (l *Loop) dispatch(fd int, ev uint32) error {
	l.now = l.eng.cfg.Now()
	if fd < len(l.fds) {
		if p := l.fds[fd]; p != nil {
			p.onEvent(ev)
		}
	}
	l.runDeferred()
	if len(l.corked) > 0 {
		l.uncork()
	}
	if l.stopping {
		return gerrors.ErrEngineShutdown
	}
	return nil
}

// uncork pushes the bytes written with MSG_MORE during an event to conns
// that were neither shut down nor closed by its end.
func (l *Loop) uncork() {
	for i, c := range l.corked {
		if !c.closed && !c.shutDone {
			uncorkFd(c.fd)
		}
		l.corked[i] = nil
	}
	l.corked = l.corked[:0]
}

// deferredTask is a callback, or a connection whose buffered input is to be
// redelivered or whose EOF is to be delivered (kept apart so that neither
// allocates).
type deferredTask struct {
	fn   func()
	kick *Conn
	eof  *Conn
}

// later queues fn to run after the current event or task. Runs on the loop.
func (l *Loop) later(fn func()) { l.deferred = append(l.deferred, deferredTask{fn: fn}) }

// Defer runs fn once the events the loop got from one poll (and the
// tasks with them) are handled, before it waits for more: what several
// events produced for one connection (the responses of many HTTP/2
// streams) can be written at once. Runs on the loop.
func (l *Loop) Defer(fn func()) { l.batch = append(l.batch, fn) }

// endBatch runs what Defer queued during the batch just handled, then
// what that deferred in turn.
func (l *Loop) endBatch() {
	if len(l.batch) == 0 {
		return
	}
	l.now = l.eng.cfg.Now()
	for i := 0; i < len(l.batch); i++ {
		fn := l.batch[i]
		l.batch[i] = nil
		fn()
	}
	l.batch = l.batch[:0]
	l.runDeferred()
	if len(l.corked) > 0 {
		l.uncork()
	}
}

func (l *Loop) runDeferred() {
	// Tasks may queue more tasks: index afresh on every turn.
	for i := 0; i < len(l.deferred); i++ {
		t := l.deferred[i]
		l.deferred[i] = deferredTask{}
		if t.kick != nil {
			t.kick.redeliver()
		} else if t.eof != nil {
			t.eof.finalEOF()
		} else {
			t.fn()
		}
	}
	l.deferred = l.deferred[:0]
}

func (l *Loop) register(fd int, p pollable) {
	for fd >= len(l.fds) {
		l.fds = append(l.fds, make([]pollable, len(l.fds)+64)...)
	}
	l.fds[fd] = p
}

func (l *Loop) unregister(fd int) {
	if fd < len(l.fds) {
		l.fds[fd] = nil
	}
}

// tick is called by the engine's ticker goroutine; it queues one timer task.
func (l *Loop) tick() {
	if l.stopped.Load() || !l.ticking.CompareAndSwap(false, true) {
		return
	}
	if l.poller.trigger(true, tickTask, l) != nil {
		l.ticking.Store(false)
	}
}

func tickTask(arg any) error {
	l := arg.(*Loop)
	l.ticking.Store(false)
	l.now = l.eng.cfg.Now()
	l.runTimers()
	l.runDeferred()
	if l.stopping {
		return gerrors.ErrEngineShutdown
	}
	return nil
}

func (l *Loop) stop() {
	l.poller.trigger(true, func(any) error {
		l.stopping = true
		return gerrors.ErrEngineShutdown
	}, nil)
}

// shutdownConns closes everything the loop still owns, after its poller
// stopped.
func (l *Loop) shutdownConns() {
	l.stopped.Store(true)
	for fd, p := range l.fds {
		switch p := p.(type) {
		case *Conn:
			p.Abort(ErrStopped)
		case *lsock:
			p.close()
		}
		l.fds[fd] = nil
	}
	for c := range l.pipes {
		c.destroy(ErrStopped) // each end its own ErrStopped, not its peer's reset
	}
	l.runDeferred()
}

// EachConn calls fn for every open connection of the loop. Runs on the loop.
func (l *Loop) EachConn(fn func(c *Conn)) {
	for _, p := range l.fds {
		if c, ok := p.(*Conn); ok && !c.closed {
			fn(c)
		}
	}
	for c := range l.pipes {
		if !c.closed {
			fn(c)
		}
	}
}

// getBlock returns an outbound block from the loop's free list.
func (l *Loop) getBlock() []byte {
	if n := len(l.free); n > 0 {
		b := l.free[n-1]
		l.free = l.free[:n-1]
		return b[:0]
	}
	return make([]byte, 0, outBlockSize)
}

func (l *Loop) putBlock(b []byte) {
	if cap(b) == outBlockSize && len(l.free) < maxFreeBlocks {
		l.free = append(l.free, b[:0])
	}
}

// Timer is a one-shot callback on a loop's clock. Its methods run on the loop.
type Timer struct {
	when  int64 // unix ns
	fn    func()
	loop  *Loop
	index int32 // in the heap; -1 when not scheduled
}

// AfterFunc schedules fn to run on the loop after d (rounded up to the
// engine's tick). Runs on the loop.
func (l *Loop) AfterFunc(d time.Duration, fn func()) *Timer {
	t := &Timer{fn: fn, index: -1, loop: l}
	t.Reset(d)
	return t
}

// Reset reschedules t to fire after d. Runs on the loop.
func (t *Timer) Reset(d time.Duration) { t.resetAt(t.loop.Clock() + int64(d)) }

// resetAt reschedules t to fire at when (a Clock reading). Runs on the
// loop.
func (t *Timer) resetAt(when int64) {
	t.when = when
	if t.index >= 0 {
		heap.Fix(&t.loop.timers, int(t.index))
	} else {
		heap.Push(&t.loop.timers, t)
	}
}

// Pending reports whether t is scheduled. Runs on the loop.
func (t *Timer) Pending() bool { return t.index >= 0 }

// Stop cancels t. Runs on the loop.
func (t *Timer) Stop() {
	if t.index >= 0 {
		heap.Remove(&t.loop.timers, int(t.index))
	}
}

func (l *Loop) runTimers() {
	now := l.Clock()
	for len(l.timers) > 0 {
		t := l.timers[0]
		if t.when > now {
			return
		}
		heap.Pop(&l.timers)
		t.fn()
	}
}

type timerHeap []*Timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].when < h[j].when }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = int32(i)
	h[j].index = int32(j)
}
func (h *timerHeap) Push(x any) {
	t := x.(*Timer)
	t.index = int32(len(*h))
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	n := len(old)
	t := old[n-1]
	old[n-1] = nil
	t.index = -1
	*h = old[:n-1]
	return t
}
