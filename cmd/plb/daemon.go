package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// -B: Go cannot fork a running runtime, so the parent re-executes plb
// detached (a new session, standard streams on /dev/null) and waits for
// the child to say on a pipe that it is ready (listeners bound, pidfile
// written, privileges dropped) or why it failed; it exits 0 or 1
// accordingly, as a forking daemon's parent does.
const (
	envDaemonized = "PLB_DAEMONIZED" // set in the child of -B
	envReadyFD    = "PLB_READY_FD"   // the child's end of the readiness pipe
	readyTimeout  = 30 * time.Second // how long the parent waits
	readyMessage  = "ready\n"        // what the child writes when it serves
)

// daemonize starts plb (args) detached and returns the parent's exit
// status once the child is ready or has failed.
func daemonize(args []string, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "plb: daemonize: %v\n", err)
		return 1
	}
	exe, err := os.Executable()
	if err != nil {
		return fail(err)
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return fail(err)
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	defer r.Close()
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), envDaemonized+"=1", envReadyFD+"=3")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.ExtraFiles = []*os.File{w} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close() // the child holds the only write end now: EOF if it dies
	if err != nil {
		return fail(err)
	}
	r.SetReadDeadline(time.Now().Add(readyTimeout))
	msg, err := io.ReadAll(io.LimitReader(r, 64<<10))
	switch {
	case string(msg) == readyMessage:
		cmd.Process.Release()
		return 0
	case len(msg) > 0:
		// The child's start-up error, already "plb: ...".
		stderr.Write(msg)
		reap(cmd, reapTimeout)
		return 1
	case errors.Is(err, os.ErrDeadlineExceeded):
		cmd.Process.Kill()
		reap(cmd, reapTimeout)
		fmt.Fprintf(stderr, "plb: the daemon (pid %d) did not report ready within %v; killed it\n", cmd.Process.Pid, readyTimeout)
		return 1
	}
	state := reap(cmd, reapTimeout)
	fmt.Fprintf(stderr, "plb: the daemon (pid %d) exited during start-up without a reason (%s)\n", cmd.Process.Pid, state)
	return 1
}

// reap waits at most d for cmd to exit and describes how it ended.
func reap(cmd *exec.Cmd, d time.Duration) string {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			return "exit status 0"
		}
		return err.Error()
	case <-time.After(d):
		return "still running"
	}
}

// tellStarter sends a configuration error to the process that started
// this one and waits on its readiness pipe (a binary upgrade's old
// process; a -B parent checks the file itself first), so that it can say
// why the new one failed.
func tellStarter(err error) {
	ready, _ := readyPipe()
	if ready == nil {
		return
	}
	st := &startup{stderr: io.Discard, ready: ready}
	st.tellParent("plb: " + strings.TrimRight(err.Error(), "\n") + "\n")
}

// readyPipe returns the pipe a -B parent waits on, or nil when plb was not
// started by -B.
func readyPipe() (*os.File, error) {
	v := os.Getenv(envReadyFD)
	if v == "" {
		return nil, nil
	}
	os.Unsetenv(envReadyFD)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("%s=%q: not a descriptor", envReadyFD, v)
	}
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), "readiness pipe"), nil
}

// startup reports how start-up ended: to stderr, to a -B parent and to
// systemd.
type startup struct {
	stderr io.Writer
	ready  *os.File
	notify *notifier
}

// fail reports err and returns the exit status 1.
func (st *startup) fail(err error) int {
	msg := "plb: " + strings.TrimRight(err.Error(), "\n") + "\n"
	io.WriteString(st.stderr, msg)
	st.tellParent(msg)
	st.notify.send("STATUS=start-up failed: " + firstLine(err.Error()))
	return 1
}

// ok tells a -B parent that plb is serving.
func (st *startup) ok() { st.tellParent(readyMessage) }

// tellParent sends msg to a -B parent, which reads up to EOF: the pipe is
// closed after it.
func (st *startup) tellParent(msg string) {
	if st.ready != nil {
		st.ready.WriteString(msg)
		st.ready.Close()
		st.ready = nil
	}
}

// reapTimeout bounds the wait for a daemon child that failed its start-up
// to exit.
const reapTimeout = 5 * time.Second
