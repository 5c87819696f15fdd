package source

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plb/plb/config"
)

// syncBuffer is a log sink safe from the source's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// watch runs a nodefile source on path with a hand-driven clock.
type watch struct {
	t         *testing.T
	tick      chan time.Time
	logs      syncBuffer
	mu        sync.Mutex
	published [][]string
	fail      error // what publish returns
	every     time.Duration
	stopped   chan struct{}
}

func startWatch(t *testing.T, path string, initial []string) *watch {
	t.Helper()
	w := &watch{t: t, tick: make(chan time.Time), stopped: make(chan struct{})}
	src := NewNodefile(path, initial, Options{
		Log: slog.New(slog.NewTextHandler(&w.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Ticker: func(d time.Duration) (<-chan time.Time, func()) {
			w.every = d
			return w.tick, func() { close(w.stopped) }
		},
	})
	if got := src.Nodes(); !slices.Equal(got, initial) {
		t.Errorf("Nodes() = %v, want %v", got, initial)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		src.Run(ctx, func(nodes []string) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.published = append(w.published, nodes)
			return w.fail
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return when its context was cancelled")
		}
		select {
		case <-w.stopped:
		default:
			t.Error("Run did not stop its ticker")
		}
	})
	return w
}

// look makes the source look at its file and waits until it has: a
// second tick is taken only once the first is handled (the second sees
// the file unchanged, or sees a change made meanwhile, which the next
// look then waits for).
func (w *watch) look() {
	w.t.Helper()
	for range 2 {
		select {
		case w.tick <- time.Time{}:
		case <-time.After(5 * time.Second):
			w.t.Fatal("the source does not take its ticks")
		}
	}
}

func (w *watch) lists() [][]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.published)
}

// write writes a nodefile with a modification time of its own. The file
// is made beside path and renamed onto it, so the source, which may still
// be handling look's second tick, sees the old file or the whole new one
// with its final time, never a half-written one (a look racing a plain
// WriteFile then Chtimes published an empty list, then the nodes twice).
func write(t *testing.T, path, text string, age int) {
	t.Helper()
	place(t, path, age, func(tmp string) error { return os.WriteFile(tmp, []byte(text), 0o644) })
}

// place makes something at a temporary name beside path with create, gives
// it a modification time age seconds from now and renames it onto path.
func place(t *testing.T, path string, age int, create func(tmp string) error) {
	t.Helper()
	tmp := path + ".new"
	if err := create(tmp); err != nil {
		t.Fatal(err)
	}
	when := time.Now().Add(time.Duration(age) * time.Second)
	if err := os.Chtimes(tmp, when, when); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestNodefilePublishesChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nodes")
	write(t, path, "# pool\n10.0.0.1\n10.0.0.2:8080\n", -10)
	w := startWatch(t, path, []string{"10.0.0.1:80"})
	// The first look re-reads: the file may be newer than the config.
	w.look()
	if w.every != DefaultEvery { // set before Run took its first tick
		t.Errorf("ticks every %v, want %v", w.every, DefaultEvery)
	}
	want := [][]string{{"10.0.0.1:80", "10.0.0.2:8080"}}
	if got := w.lists(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("first look published %v, want %v", got, want)
	}
	// Unchanged: nothing more.
	w.look()
	w.look()
	if got := w.lists(); len(got) != 1 {
		t.Fatalf("an unchanged file was published again: %v", got)
	}
	// A new modification time: read again.
	write(t, path, "[2001:db8::1]:81 # six\n", -5)
	w.look()
	want = append(want, []string{"[2001:db8::1]:81"})
	if got := w.lists(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("after the change: published %v, want %v", got, want)
	}
	if logs := w.logs.String(); !strings.Contains(logs, "nodefile read") || strings.Contains(logs, "WARN") {
		t.Errorf("logs:\n%s", logs)
	}
}

func TestNodefileBadLineWarnsWithFileLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nodes")
	write(t, path, "10.0.0.1:80\n10.0.0.300\n", -10)
	w := startWatch(t, path, nil)
	w.look()
	want := [][]string{{"10.0.0.1:80"}}
	if got := w.lists(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("published %v, want %v", got, want)
	}
	logs := w.logs.String()
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "nodefile line ignored") || !strings.Contains(logs, path+":2") {
		t.Errorf("the bad line 2 was not warned about with file:line:\n%s", logs)
	}
	if strings.Contains(logs, path+":1") {
		t.Errorf("the good line 1 was warned about:\n%s", logs)
	}
}

func TestNodefileUnreadableKeepsNodes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nodes")
	write(t, path, "10.0.0.1\n", -10)
	w := startWatch(t, path, nil)
	w.look()
	if got := w.lists(); len(got) != 1 {
		t.Fatalf("published %v", got)
	}
	// Unreadable (a directory stats but cannot be read, even by root):
	// logged once, nothing published, so the pool keeps its nodes.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	place(t, path, -5, func(tmp string) error { return os.Mkdir(tmp, 0o755) })
	w.look()
	w.look()
	if got := w.lists(); len(got) != 1 {
		t.Fatalf("an unreadable file published %v", got[1:])
	}
	logs := w.logs.String()
	if n := strings.Count(logs, "nodefile unreadable"); n != 1 || !strings.Contains(logs, "file="+path) {
		t.Errorf("want one warning naming the file, got %d:\n%s", n, logs)
	}
	// Gone altogether: quiet, nodes kept; back: read again.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	w.look()
	if got := w.lists(); len(got) != 1 {
		t.Fatalf("a missing file published %v", got[1:])
	}
	write(t, path, "10.0.0.2\n", 0)
	w.look()
	if got := w.lists(); len(got) != 2 || !slices.Equal(got[1], []string{"10.0.0.2:80"}) {
		t.Fatalf("the file back: published %v", got)
	}
}

func TestNodefilePublishErrorLogged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nodes")
	write(t, path, "10.0.0.1\n", -10)
	w := startWatch(t, path, nil)
	w.mu.Lock()
	w.fail = errors.New("no such pool")
	w.mu.Unlock()
	w.look()
	if logs := w.logs.String(); !strings.Contains(logs, "no such pool") || strings.Contains(logs, "nodefile read") {
		t.Errorf("logs:\n%s", logs)
	}
}

func TestStatic(t *testing.T) {
	nodes := []string{"10.0.0.1:80", "10.0.0.2:80"}
	s := NewStatic(nodes)
	nodes[0] = "changed"
	if got := s.Nodes(); !slices.Equal(got, []string{"10.0.0.1:80", "10.0.0.2:80"}) {
		t.Errorf("Nodes() = %v", got)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(context.Background(), func([]string) error { t.Error("a static list published a change"); return nil })
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a static source's Run did not return")
	}
	if s.Continues(NewStatic(s.Nodes())) {
		t.Error("a static list continues: a new config's list would not be published")
	}
}

func TestForPoolAndContinues(t *testing.T) {
	o := Options{}
	a := ForPool(&config.Pool{Name: "web", NodeFile: "/etc/a", Nodes: []string{"10.0.0.1:80"}}, o)
	if a.String() != "nodefile /etc/a" || !slices.Equal(a.Nodes(), []string{"10.0.0.1:80"}) {
		t.Errorf("nodefile pool: %s %v", a, a.Nodes())
	}
	st := ForPool(&config.Pool{Name: "web", Nodes: []string{"10.0.0.1:80"}}, o)
	if st.String() != "static" {
		t.Errorf("static pool: %s", st)
	}
	for _, c := range []struct {
		next Source
		want bool
	}{
		{NewNodefile("/etc/a", nil, o), true},
		{NewNodefile("/etc/b", nil, o), false},
		{NewNodefile("/etc/a", nil, Options{Every: time.Second}), false},
		{st, false},
	} {
		if got := a.Continues(c.next); got != c.want {
			t.Errorf("nodefile /etc/a continues as %s: %v, want %v", c.next, got, c.want)
		}
	}
}
