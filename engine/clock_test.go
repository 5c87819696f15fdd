package engine

import (
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// wallStepped returns t with its wall clock moved by d and its monotonic
// reading kept: what time.Now returns after the system clock is stepped
// (NTP, a restored VM). It edits time.Time's representation (a wall
// field whose top bit flags a monotonic reading, whose next 33 bits are
// seconds; then the monotonic nanoseconds), so it reports false when that
// representation does not behave as expected (another Go release).
func wallStepped(t time.Time, d time.Duration) (time.Time, bool) {
	type rep struct {
		wall uint64
		ext  int64
		loc  *time.Location
	}
	s := t
	p := (*rep)(unsafe.Pointer(&s))
	if p.wall&(1<<63) == 0 {
		return t, false // no monotonic reading
	}
	p.wall += uint64(int64(d/time.Second)) << 30
	ok := s.Sub(t) == 0 && s.Round(0).Sub(t.Round(0)) == d.Truncate(time.Second)
	return s, ok
}

// steppableClock is time.Now, whose wall clock (not its monotonic one)
// goes back an hour once stepped is set; it skips the test where
// time.Time's representation is not the one wallStepped knows.
func steppableClock(t *testing.T) (stepped *atomic.Bool, now func() time.Time) {
	t.Helper()
	if _, ok := wallStepped(time.Now(), -time.Hour); !ok {
		t.Skip("time.Time's representation is not the one this test knows")
	}
	stepped = new(atomic.Bool)
	return stepped, func() time.Time {
		n := time.Now()
		if stepped.Load() {
			n, _ = wallStepped(n, -time.Hour)
		}
		return n
	}
}

// TestTimersFollowTheMonotonicClock: a timer set for 200 ms fires after
// about 200 ms though the wall clock is stepped back an hour meanwhile
// (and connection deadlines, kept in the same clock, likewise): timeouts
// that waited for the wall clock to catch up would keep slow clients for
// an hour.
func TestTimersFollowTheMonotonicClock(t *testing.T) {
	stepped, now := steppableClock(t)
	e := runEngine(t, Config{Loops: 1, Tick: 10 * time.Millisecond, Now: now})
	fired := make(chan struct{})
	l := e.Loops()[0]
	l.Run(func() { l.AfterFunc(200*time.Millisecond, func() { close(fired) }) })
	time.Sleep(20 * time.Millisecond)
	stepped.Store(true)
	select {
	case <-fired:
	case <-time.After(3 * time.Second):
		t.Fatal("a 200 ms timer had not fired 3 s later, the wall clock stepped back an hour")
	}
}

// TestClockTimeFollowsWallClock: a Clock reading turned back into a time
// (access logs, the console's ages) reads as the wall clock does now, also
// after the wall clock was stepped, while the readings themselves (and the
// timers) keep to the monotonic clock.
func TestClockTimeFollowsWallClock(t *testing.T) {
	stepped, now := steppableClock(t)
	e := runEngine(t, Config{Loops: 1, Tick: 10 * time.Millisecond, Now: now})
	l := e.Loops()[0]
	var before int64
	ran := make(chan struct{})
	l.Run(func() { before = l.Clock(); close(ran) })
	<-ran
	stepped.Store(true)
	time.Sleep(20 * time.Millisecond)
	type reading struct {
		at, wall time.Time
		elapsed  time.Duration
	}
	got := make(chan reading, 1)
	l.Run(func() { got <- reading{l.ClockTime(before), l.Now(), time.Duration(l.Clock() - before)} })
	r := <-got
	if r.elapsed < 0 || r.elapsed > time.Second {
		t.Errorf("the Clock moved %v across a wall step of an hour", r.elapsed)
	}
	if d := r.wall.Round(0).Sub(r.at.Round(0)); d < 0 || d > time.Second {
		t.Errorf("ClockTime of a reading %v ago is %v before the wall clock's now", r.elapsed, d)
	}
}
