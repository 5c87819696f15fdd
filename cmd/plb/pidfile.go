package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// pidFile is the pidfile plb wrote.
type pidFile struct {
	path string // where to remove it ("" when out of reach)
	pid  int
}

// writePidfile writes plb's pid to path, after the listeners are bound.
// The file appears complete or not at all: it is written to a temporary
// file beside it, then linked into place (link fails if a file exists,
// unlike rename, so two plbs starting together cannot both win). An
// existing pidfile naming a live process is an error; one naming a dead
// process (kill(pid, 0) fails with ESRCH), plb itself or nothing readable
// is stale and replaced; so is one naming takeOver, the process a binary
// upgrade replaces (0: none).
func writePidfile(path string, log *slog.Logger, takeOver int) (*pidFile, error) {
	pid := os.Getpid()
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return nil, fmt.Errorf("pidfile: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(strconv.Itoa(pid) + "\n")
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("pidfile: %w", err)
	}
	err = os.Link(tmp.Name(), path)
	if errors.Is(err, fs.ErrExist) {
		old, live := pidfileOwner(path)
		switch {
		case takeOver != 0 && old == takeOver:
			log.Info("taking the pidfile over from the process upgraded from", "pidfile", path, "pid", old)
		case live:
			return nil, fmt.Errorf("pidfile %s: plb is already running as pid %d", path, old)
		default:
			log.Warn("replacing a stale pidfile", "pidfile", path, "pid", old)
		}
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return nil, fmt.Errorf("pidfile: %w", err)
	}
	return &pidFile{path: path, pid: pid}, nil
}

// pidfileOwner reads the pid in path and reports whether that process is
// alive (and not this one).
func pidfileOwner(path string) (int, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return pid, false
	}
	err = unix.Kill(pid, 0)
	return pid, err == nil || err == unix.EPERM
}

// jail makes the pidfile's path the one seen inside chroot_dir; outside it
// the file cannot be removed at exit (the next start replaces it as
// stale).
func (p *pidFile) jail(jl *jailLoader, log *slog.Logger) {
	if p == nil {
		return
	}
	in, err := jl.rebase(p.path)
	if err != nil {
		log.Info("the pidfile is outside chroot_dir: it stays after exit (the next start replaces it)", "pidfile", p.path)
		p.path = ""
		return
	}
	p.path = in
}

// remove deletes the pidfile if it still holds plb's pid.
func (p *pidFile) remove(log *slog.Logger) {
	if p == nil || p.path == "" {
		return
	}
	data, err := os.ReadFile(p.path)
	if err != nil || strings.TrimSpace(string(data)) != strconv.Itoa(p.pid) {
		return
	}
	if err := os.Remove(p.path); err != nil {
		log.Warn("pidfile not removed", "pidfile", p.path, "err", err)
	}
}
