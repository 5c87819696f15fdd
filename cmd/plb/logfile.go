package main

import (
	"errors"
	"log/slog"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// logFile is the log file (-l, log_file): an io.Writer whose file SIGUSR1
// reopens, for log rotation by renaming (logrotate without copytruncate).
type logFile struct {
	mu     sync.Mutex
	path   string // to reopen ("" when out of reach: outside chroot_dir)
	f      *os.File
	stderr bool // also on descriptor 2 (a -B daemon: panics land there)
}

// openLogFile opens path for appending; with stderr, descriptor 2 becomes
// the file too.
func openLogFile(path string, stderr bool) (*logFile, error) {
	l := &logFile{path: path, stderr: stderr}
	f, err := l.open()
	if err != nil {
		return nil, err
	}
	l.f = f
	return l, nil
}

func (l *logFile) open() (*os.File, error) {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	if l.stderr {
		unix.Dup3(int(f.Fd()), 2, 0)
	}
	return f, nil
}

// Write writes p to the current file.
func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

// Reopen opens the path again (a new file if it was renamed) and writes
// there from now on; on error the old file stays in use.
func (l *logFile) Reopen() error {
	if l.path == "" {
		return errors.New("the log file is outside chroot_dir")
	}
	f, err := l.open()
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	return old.Close()
}

// Close closes the file (none: nil).
func (l *logFile) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// jail makes the path to reopen the one seen inside chroot_dir.
func (l *logFile) jail(jl *jailLoader, log *slog.Logger) {
	if l == nil {
		return
	}
	in, err := jl.rebase(l.path)
	if err != nil {
		log.Warn("the log file is outside chroot_dir: SIGUSR1 cannot reopen it", "file", l.path)
		in = ""
	}
	l.mu.Lock()
	l.path = in
	l.mu.Unlock()
}
