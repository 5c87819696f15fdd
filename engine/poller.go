//go:build linux

// Copyright (c) 2019 Andy Pan
// Copyright (c) 2017 Joshua J Baker
// Copyright 2026 The plb Authors
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
//     http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.
//
// This file follows gnet v2.10.0's pkg/netpoll/poller_epoll_default.go
// (github.com/panjf2000/gnet) and was changed by the plb authors: the
// poller type below says how (level-triggered EPOLLRDHUP, one
// EPOLL_CTL_MOD for a write-only interest, plb's task limits). See NOTICE.

package engine

import (
	"encoding/binary"
	"os"
	"runtime"
	"sync/atomic"
	"unsafe"

	"github.com/panjf2000/gnet/v2/pkg/queue"
	"golang.org/x/sys/unix"
)

// poller is a loop's epoll instance with its task queues: gnet's
// netpoll.Poller (same loop, same eventfd wake-up, gnet's lock-free
// pkg/queue for tasks) with two differences the engine needs.
//
//   - Registrations are level-triggered and still ask for EPOLLRDHUP
//     (netpoll asks for it only with edge-triggered ones). A read event
//     that carries it says the peer's FIN is queued behind the data: the
//     engine then delivers the EOF without one more recv(2) returning 0,
//     and forwards the last bytes so that the FIN that follows goes out in
//     the same segment (see Conn.read). HAProxy does both.
//   - A write-only interest is one EPOLL_CTL_MOD, not a delete and an add;
//     epoll_ctl is a raw system call (it never blocks).
//
// netpoll.Poller keeps its epoll descriptor unexported, so neither can be
// had from it; DESIGN.md section 2 builds the engine on that poller, and
// this one stays close to its code. polling is netpoll's loop unchanged:
// after a batch of events it polls again without blocking, and yields
// (runtime.Gosched) before it blocks. Tasks: trigger(true) (ticks, stop)
// all run at each turn, Loop.Run's at most maxTasksPerTurn, as netpoll's
// high and low priorities.
type poller struct {
	fd, efd    int
	one        [8]byte // the eventfd increment
	wakeupCall atomic.Int32
	urgent     queue.AsyncTaskQueue // ticks, stop
	tasks      queue.AsyncTaskQueue // Loop.Run
	events     []unix.EpollEvent
}

// Event bits as the engine reads them.
const (
	evRead  = unix.EPOLLIN | unix.EPOLLPRI | unix.EPOLLRDHUP
	evWrite = unix.EPOLLOUT
	evErr   = unix.EPOLLERR | unix.EPOLLHUP
	evRdHup = unix.EPOLLRDHUP

	minPollEvents = 128
	maxPollEvents = 1024
	// maxTasksPerTurn bounds the Run tasks done between two polls.
	maxTasksPerTurn = 256
)

func openPoller() (*poller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	p := &poller{
		fd:     fd,
		efd:    efd,
		urgent: queue.NewLockFreeQueue(),
		tasks:  queue.NewLockFreeQueue(),
		events: make([]unix.EpollEvent, minPollEvents),
	}
	binary.NativeEndian.PutUint64(p.one[:], 1)
	// Edge-triggered: each wake-up is one event, the counter is never read.
	if err := p.ctl(unix.EPOLL_CTL_ADD, efd, unix.EPOLLIN|unix.EPOLLET); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func (p *poller) close() error {
	unix.Close(p.efd)
	return os.NewSyscallError("close", unix.Close(p.fd))
}

func (p *poller) ctl(op, fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	_, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(p.fd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(&ev)), 0, 0)
	if e != 0 {
		return os.NewSyscallError("epoll_ctl", e)
	}
	return nil
}

func (p *poller) add(fd int, events uint32) error { return p.ctl(unix.EPOLL_CTL_ADD, fd, events) }
func (p *poller) mod(fd int, events uint32) error { return p.ctl(unix.EPOLL_CTL_MOD, fd, events) }
func (p *poller) del(fd int) error                { return p.ctl(unix.EPOLL_CTL_DEL, fd, 0) }

// trigger queues fn(arg) to run on the loop and wakes it. Safe from any
// goroutine.
func (p *poller) trigger(urgent bool, fn queue.Func, arg any) error {
	t := queue.GetTask()
	t.Exec, t.Param = fn, arg
	if urgent {
		p.urgent.Enqueue(t)
	} else {
		p.tasks.Enqueue(t)
	}
	if p.wakeupCall.CompareAndSwap(0, 1) {
		return p.wake()
	}
	return nil
}

func (p *poller) wake() error {
	for {
		_, err := unix.Write(p.efd, p.one[:])
		if err == unix.EAGAIN { // the counter is full: empty it
			var b [8]byte
			unix.Read(p.efd, b[:])
			continue
		}
		if err != nil {
			return os.NewSyscallError("write", err)
		}
		return nil
	}
}

// polling runs the loop until a callback or a task returns an error
// (ErrEngineShutdown from gnet's pkg/errors to stop); after each batch of
// events (and the tasks that came with it) it calls after.
func (p *poller) polling(callback func(fd int, ev uint32) error, after func()) error {
	msec := -1
	for {
		n, err := unix.EpollWait(p.fd, p.events, msec)
		if n == 0 || (n < 0 && err == unix.EINTR) {
			msec = -1
			runtime.Gosched()
			continue
		} else if err != nil {
			return os.NewSyscallError("epoll_wait", err)
		}
		msec = 0
		chores := false
		for i := range n {
			ev := &p.events[i]
			if fd := int(ev.Fd); fd == p.efd {
				chores = true
			} else if err := callback(fd, ev.Events); err != nil {
				return err
			}
		}
		if chores {
			if err := p.runTasks(); err != nil {
				return err
			}
		}
		after()
		if n == len(p.events) && n < maxPollEvents {
			p.events = make([]unix.EpollEvent, 2*n)
		}
	}
}

func (p *poller) runTasks() error {
	for t := p.urgent.Dequeue(); t != nil; t = p.urgent.Dequeue() {
		err := t.Exec(t.Param)
		queue.PutTask(t)
		if err != nil {
			return err
		}
	}
	for range maxTasksPerTurn {
		t := p.tasks.Dequeue()
		if t == nil {
			break
		}
		err := t.Exec(t.Param)
		queue.PutTask(t)
		if err != nil {
			return err
		}
	}
	p.wakeupCall.Store(0)
	if (!p.tasks.IsEmpty() || !p.urgent.IsEmpty()) && p.wakeupCall.CompareAndSwap(0, 1) {
		// Tasks left for the next turn.
		return p.wake()
	}
	return nil
}
