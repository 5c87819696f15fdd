package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Binary upgrade (SIGUSR2, nginx's signal): plb starts the binary at the
// path it was started from, with the same arguments, handing it every
// listening socket (each loop's SO_REUSEPORT socket, with the clients
// queued in it) as descriptors 3 and up. The new process adopts them
// instead of binding (as for systemd's socket activation), replaces the
// pidfile, tells systemd its pid, and says it serves on a pipe, as a -B
// child does. Then the old process closes its copies of the sockets and
// drains: its connections (WebSocket tunnels, SMTP and TCP sessions, slow
// downloads) finish, bounded by shutdown_timeout, and it exits. No
// client is refused: the sockets never close. A new process that fails
// leaves the old one serving.
const (
	envUpgradeFDs  = "PLB_UPGRADE_FDS"  // listening sockets handed over: descriptors 3 to 3+N-1
	envUpgradeFrom = "PLB_UPGRADE_FROM" // the old process's pid: its pidfile may be taken over
	upgradeTimeout = 60 * time.Second   // how long the old process waits for the new one
)

// upgrade runs on SIGUSR2: it starts the new binary and, once it serves,
// drains this process. Runs on the signal goroutine, which it leaves at
// once (the wait is another goroutine's).
func (p *process) upgrade() {
	log := p.log
	p.upMu.Lock()
	busy := p.upgrading
	p.upgrading = true
	p.upMu.Unlock()
	if busy {
		log.Warn("SIGUSR2: an upgrade is already in progress")
		return
	}
	ok := false
	defer func() {
		if !ok {
			p.upgradeDone()
		}
	}()
	if jail := p.cfg.Global.Chroot; jail != "" {
		log.Error("SIGUSR2: no binary upgrade under chroot_dir (the new binary is outside the jail): restart instead", "chroot_dir", jail)
		return
	}
	if p.self == "" {
		log.Error("SIGUSR2: plb's own path is unknown: no binary upgrade")
		return
	}
	files, err := p.srv.Engine().ListenerFiles()
	if err != nil {
		log.Error("SIGUSR2: the listening sockets cannot be handed over", "err", err)
		return
	}
	r, w, err := os.Pipe()
	if err != nil {
		closeAll(files)
		log.Error("SIGUSR2: upgrade", "err", err)
		return
	}
	cmd := exec.Command(p.self, os.Args[1:]...)
	cmd.Env = append(upgradeEnv(os.Environ()), envUpgradeFDs+"="+strconv.Itoa(len(files)),
		envUpgradeFrom+"="+strconv.Itoa(os.Getpid()), envDaemonized+"=1", envReadyFD+"="+strconv.Itoa(3+len(files)))
	if p.notify != nil {
		// The new process talks to systemd too: as the main process once
		// told, and for its own upgrade after.
		cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+p.notify.addr.Name)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = append(files, w)
	err = cmd.Start()
	w.Close()
	closeAll(files)
	if err != nil {
		r.Close()
		log.Error("SIGUSR2: the new binary does not start; this one goes on serving", "binary", p.self, "err", err)
		return
	}
	ok = true
	log.Info("SIGUSR2: upgrading: the new binary starts with the listening sockets", "binary", p.self, "pid", cmd.Process.Pid, "sockets", len(files))
	go p.awaitUpgrade(cmd, r)
}

// awaitUpgrade waits for the new process to serve, then drains this one;
// if it fails, this one goes on.
func (p *process) awaitUpgrade(cmd *exec.Cmd, r *os.File) {
	defer r.Close()
	r.SetReadDeadline(time.Now().Add(upgradeTimeout))
	msg, err := io.ReadAll(io.LimitReader(r, 64<<10))
	if string(msg) != readyMessage {
		why := strings.TrimSpace(string(msg))
		if why == "" && err != nil {
			why = err.Error()
		}
		cmd.Process.Kill()
		state := reap(cmd, reapTimeout)
		p.log.Error("upgrade failed; this process goes on serving", "pid", cmd.Process.Pid, "why", why, "exit", state)
		if pf := p.pf; pf != nil && pf.path != "" {
			// The new process may have taken the pidfile over (or removed
			// it) before it failed: it names this one again.
			if _, err := writePidfile(pf.path, p.log, cmd.Process.Pid); err != nil {
				p.log.Warn("the pidfile could not be restored", "pidfile", pf.path, "err", err)
			}
		}
		p.upgradeDone()
		return
	}
	pid := cmd.Process.Pid // Release makes it -1
	cmd.Process.Release()
	p.log.Info("upgrade: the new process serves; this one drains", "new pid", pid)
	p.notify.send(fmt.Sprintf("MAINPID=%d\nSTATUS=upgraded to pid %d; the old process drains", pid, pid))
	p.notify.stopping()
	p.srv.Shutdown(true)
}

// upgradeDone lets a later SIGUSR2 try again.
func (p *process) upgradeDone() {
	p.upMu.Lock()
	p.upgrading = false
	p.upMu.Unlock()
}

// upgradeEnv is env less what plb passes its children itself.
func upgradeEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case envUpgradeFDs, envUpgradeFrom, envDaemonized, envReadyFD, "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES":
			continue
		}
		out = append(out, kv)
	}
	return out
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// upgradedFrom is the old process's pid when this process is a binary
// upgrade's new one (0 otherwise): the variable must name the parent, as
// LISTEN_PID must name the process, so that a stray one in a shell's
// environment takes over no pidfile. The upgrade's variables are removed
// when it does not (descriptors 3 and up are then nobody's sockets).
func upgradedFrom() int {
	v := os.Getenv(envUpgradeFrom)
	os.Unsetenv(envUpgradeFrom)
	pid, _ := strconv.Atoi(v)
	if pid <= 1 || pid != os.Getppid() {
		os.Unsetenv(envUpgradeFDs)
		return 0
	}
	return pid
}

// selfPath is the path plb was started from, absolute, as typed: a
// symbolic link a deployment switches to a new version is followed when
// the upgrade starts it, not now.
func selfPath() string {
	arg := os.Args[0]
	if !strings.Contains(arg, "/") {
		if p, err := exec.LookPath(arg); err == nil {
			arg = p
		}
	}
	if abs, err := filepath.Abs(arg); err == nil {
		if _, err := os.Stat(abs); err == nil {
			return abs
		}
	}
	exe, _ := os.Executable()
	return exe
}
