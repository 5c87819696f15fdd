//go:build linux

package engine

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// segment is one piece of queued output: bytes in a block, or a file region.
type segment struct {
	b   []byte // unsent bytes (a view into blk)
	blk []byte // the block b lives in, returned to the loop when sent
	f   *os.File
	ffd int
	off int64
	n   int64
	// owner is closed once the region is sent or dropped (nil: the
	// caller keeps f).
	owner io.Closer
}

// outQueue is a connection's output queue. Memory is bounded by the
// producers' use of Full/OnDrain; file regions cost no memory.
type outQueue struct {
	segs []segment
	head int // first unsent segment
	mem  int // bytes of memory queued
}

func (q *outQueue) empty() bool { return q.head == len(q.segs) }

func (q *outQueue) appendBytes(l *Loop, p []byte) {
	for len(p) > 0 {
		// Fill the tail block if it is a byte block with spare capacity.
		if n := len(q.segs); n > q.head {
			t := &q.segs[n-1]
			if t.f == nil && t.blk != nil {
				end := cap(t.blk) - (len(t.blk))
				if end > 0 {
					k := copy(t.blk[len(t.blk):cap(t.blk)], p)
					t.blk = t.blk[:len(t.blk)+k]
					t.b = t.b[:len(t.b)+k]
					q.mem += k
					p = p[k:]
					continue
				}
			}
		}
		blk := l.getBlock()
		k := copy(blk[:cap(blk)], p)
		blk = blk[:k]
		q.push(segment{b: blk, blk: blk})
		q.mem += k
		p = p[k:]
	}
}

func (q *outQueue) appendFile(f *os.File, off, n int64, owner io.Closer) {
	if k := len(q.segs); k > q.head {
		t := &q.segs[k-1]
		if t.f == f && t.off+t.n == off && t.owner == nil {
			t.n += n
			t.owner = owner
			return
		}
	}
	q.push(segment{f: f, ffd: int(f.Fd()), off: off, n: n, owner: owner})
}

func (q *outQueue) push(s segment) {
	if q.head > 0 && q.head == len(q.segs) {
		q.segs = q.segs[:0]
		q.head = 0
	}
	q.segs = append(q.segs, s)
}

// pop drops the head segment after it was fully sent.
func (q *outQueue) pop(l *Loop) {
	s := &q.segs[q.head]
	if s.blk != nil {
		l.putBlock(s.blk)
	}
	if s.owner != nil {
		s.owner.Close()
	}
	*s = segment{}
	q.head++
	if q.head == len(q.segs) {
		q.segs = q.segs[:0]
		q.head = 0
	}
}

// flush sends as much as the socket takes. It reports whether any byte went
// out, and a hard error.
func (q *outQueue) flush(l *Loop, fd int) (bool, error) {
	progress := false
	var iov [maxIov][]byte
	for !q.empty() {
		s := &q.segs[q.head]
		if s.f != nil {
			if s.n == 0 {
				q.pop(l)
				continue
			}
			chunk := s.n
			if chunk > 1<<20 {
				chunk = 1 << 20
			}
			off := s.off
			n, err := unix.Sendfile(fd, s.ffd, &off, int(chunk))
			if err == unix.EINTR {
				continue
			}
			if err == unix.EAGAIN {
				return progress, nil
			}
			if err != nil {
				return progress, err
			}
			if n == 0 { // file shorter than promised: drop the rest
				q.pop(l)
				continue
			}
			progress = true
			q.sentFile(l, int64(n))
			continue
		}
		// Gather consecutive byte segments into one writev.
		k := 0
		for i := q.head; i < len(q.segs) && k < len(iov) && q.segs[i].f == nil; i++ {
			iov[k] = q.segs[i].b
			k++
		}
		var n int
		var err error
		if k == 1 {
			n, err = writeFd(fd, iov[0])
		} else {
			n, err = writevFd(fd, iov[:k])
		}
		if err != nil {
			return progress, err
		}
		if n == 0 {
			return progress, nil
		}
		progress = true
		q.sentBytes(l, n)
	}
	return progress, nil
}

// sentFile accounts n bytes of the head segment, a file region, as sent.
func (q *outQueue) sentFile(l *Loop, n int64) {
	s := &q.segs[q.head]
	s.off += n
	s.n -= n
	if s.n == 0 {
		q.pop(l)
	}
}

// sentBytes accounts n bytes from the head, byte segments, as sent.
func (q *outQueue) sentBytes(l *Loop, n int) {
	q.mem -= n
	for n > 0 {
		s := &q.segs[q.head]
		if n >= len(s.b) {
			n -= len(s.b)
			q.pop(l)
		} else {
			s.b = s.b[n:]
			n = 0
		}
	}
}

// release drops everything queued (on abort).
func (q *outQueue) release(l *Loop) {
	for !q.empty() {
		q.pop(l)
	}
	q.mem = 0
	q.segs = nil
}
