// Package accesslog writes a service's access log in the combined format
// (Apache's and nginx's default):
//
//	127.0.0.1 - - [21/Nov/2026:10:00:00 +0000] "GET /a HTTP/1.1" 200 512 "-" "curl/8.0"
//
// Lines are appended to a memory buffer by the event loops and written by
// a goroutine of the log's own (every FlushEvery, or sooner when the
// buffer passes flushAt), so a slow disk never stalls a loop: past
// maxPending bytes waiting, lines are dropped and counted (Dropped).
package accesslog

import (
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// FlushEvery is how often buffered lines are written at the latest.
const FlushEvery = time.Second

const (
	flushAt    = 64 << 10 // wake the writer early past this
	maxPending = 4 << 20  // drop lines past this (the disk is stuck)
)

// Entry is one request as the combined format tells it.
type Entry struct {
	Addr    netip.Addr // client address
	Time    time.Time  // when the request started
	Method  []byte
	URI     []byte
	Minor   int    // HTTP/1.<Minor>
	Proto   string // the protocol instead, when not HTTP/1 ("HTTP/2.0")
	Status  int
	Bytes   int64 // response body bytes sent
	Referer []byte
	Agent   []byte
}

// AppendCombined appends e as one combined-format line (with its newline).
// Quotes, backslashes and bytes outside printable ASCII in the quoted
// fields are written \xHH, as nginx does. It does not allocate when dst
// has room.
func AppendCombined(dst []byte, e *Entry) []byte {
	if e.Addr.IsValid() {
		dst = e.Addr.Unmap().AppendTo(dst)
	} else {
		dst = append(dst, '-')
	}
	dst = append(dst, " - - ["...)
	dst = e.Time.AppendFormat(dst, "02/Jan/2006:15:04:05 -0700")
	dst = append(dst, "] \""...)
	if len(e.Method) == 0 {
		dst = append(dst, '-')
	} else {
		dst = appendEscaped(dst, e.Method)
		dst = append(dst, ' ')
		dst = appendEscaped(dst, e.URI)
		if e.Proto != "" {
			dst = append(append(dst, ' '), e.Proto...)
		} else {
			dst = append(dst, " HTTP/1."...)
			dst = strconv.AppendInt(dst, int64(e.Minor), 10)
		}
	}
	dst = append(dst, "\" "...)
	dst = strconv.AppendInt(dst, int64(e.Status), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, max(e.Bytes, 0), 10)
	dst = append(dst, " \""...)
	dst = appendField(dst, e.Referer)
	dst = append(dst, "\" \""...)
	dst = appendField(dst, e.Agent)
	return append(dst, "\"\n"...)
}

func appendField(dst, v []byte) []byte {
	if len(v) == 0 {
		return append(dst, '-')
	}
	return appendEscaped(dst, v)
}

func appendEscaped(dst, v []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range v {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			dst = append(dst, '\\', 'x', hex[c>>4], hex[c&15])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// Log is an open access log file.
type Log struct {
	Path string

	wmu     sync.Mutex // guards f: serializes writes with Reopen's swap and Close
	f       *os.File
	mu      sync.Mutex // guards buf, spare and closed
	buf     []byte     // lines waiting
	spare   []byte     // the writer's last buffer, reused
	dropped atomic.Int64
	wake    chan struct{}
	done    chan struct{}
	stopped chan struct{}
	closed  bool
}

// Open opens (creating, appending) the log at path and starts its writer.
func Open(path string) (*Log, error) {
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	l := &Log{Path: path, f: f, wake: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	go l.writer()
	return l, nil
}

func openFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
}

// Add queues one line (AppendCombined's). Safe from any goroutine; never
// blocks on the disk.
func (l *Log) Add(line []byte) {
	l.mu.Lock()
	if l.closed || len(l.buf)+len(line) > maxPending {
		l.mu.Unlock()
		l.dropped.Add(1)
		return
	}
	l.buf = append(l.buf, line...)
	early := len(l.buf) >= flushAt
	l.mu.Unlock()
	if early {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// Dropped returns the lines dropped because the disk did not keep up.
func (l *Log) Dropped() int64 { return l.dropped.Load() }

// writer writes what is buffered every FlushEvery, or when woken, until
// Close.
func (l *Log) writer() {
	defer close(l.stopped)
	t := time.NewTicker(FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-l.wake:
		case <-l.done:
			l.Flush()
			return
		}
		l.Flush()
	}
}

// Flush writes what is buffered now. Safe from any goroutine.
func (l *Log) Flush() {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	if len(l.buf) == 0 {
		l.mu.Unlock()
		return
	}
	out := l.buf
	l.buf, l.spare = l.spare[:0], nil
	l.mu.Unlock()
	l.f.Write(out) // a failed write loses these lines, as a full disk would
	l.mu.Lock()
	if l.spare == nil && cap(out) <= maxPending {
		l.spare = out[:0]
	}
	l.mu.Unlock()
}

// Reopen flushes, then opens the path again (after logrotate moved the
// file) and writes there from now on; on error the old file stays. Safe
// from any goroutine.
func (l *Log) Reopen() error {
	l.Flush()
	f, err := openFile(l.Path)
	if err != nil {
		return err
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	old := l.f
	l.f = f
	return old.Close()
}

// Close writes what is left and closes the file. Later lines are dropped.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.done)
	<-l.stopped
	l.wmu.Lock()
	defer l.wmu.Unlock()
	return l.f.Close()
}
