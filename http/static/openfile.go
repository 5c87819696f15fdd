package static

import (
	"io"
	"os"
	"sync/atomic"
	"time"
)

// fileKind is what an open name turned out to be.
type fileKind uint8

const (
	kindOther fileKind = iota // FIFO, socket, device
	kindRegular
	kindDir
)

// fileStat is what Serve needs of a stat.
type fileStat struct {
	size  int64
	mtime time.Time
	kind  fileKind
	id    fileID // zero when unknown (os.Root's path)
}

// fileID tells whether a name still leads to the same unchanged file: the
// inode, and its size and change times to the nanosecond.
type fileID struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // Unix nanoseconds
}

func statOf(fi os.FileInfo) fileStat {
	st := fileStat{size: fi.Size(), mtime: fi.ModTime()}
	switch {
	case fi.Mode().IsRegular():
		st.kind = kindRegular
	case fi.IsDir():
		st.kind = kindDir
	}
	return st
}

// file is a name opened in the docroot: a raw descriptor from the openat2
// fast path, or an *os.File from os.Root.
type file struct {
	fd int      // >= 0 on the fast path
	f  *os.File // otherwise
	st fileStat
}

func (f *file) close() {
	if f.f != nil {
		f.f.Close()
		f.f = nil
	} else if f.fd >= 0 {
		closeFD(f.fd)
	}
	f.fd = -1
}

// pread reads len(p) bytes at off; fewer means the file shrank.
func (f *file) pread(p []byte, off int64) (int, error) {
	if f.f != nil {
		n, err := f.f.ReadAt(p, off)
		if err == io.EOF {
			err = nil
		}
		return n, err
	}
	return preadFD(f.fd, p, off)
}

// osFile hands the file over as an *os.File (for sendfile); f must not be
// used afterwards.
func (f *file) osFile(name []byte) *os.File {
	if f.f != nil {
		o := f.f
		f.f = nil
		return o
	}
	o := os.NewFile(uintptr(f.fd), string(name))
	f.fd = -1
	return o
}

// fastState says whether openat2 works here: unknown until tried, then
// on or off for the Server's life.
const (
	fastUnknown int32 = iota
	fastOn
	fastOff
)

// open opens rel (a clean relative name, as appendRelative builds it)
// inside the docroot of e, through openat2 when it works, else os.Root, and
// stats it. It does not allocate on the fast path.
func (s *Server) open(e *rootEntry, rel []byte) (file, error) {
	if e.dir != nil && s.fast.Load() != fastOff && len(rel) < pathBufSize && e.dir.acquire() {
		var nbuf [pathBufSize]byte
		name := append(nbuf[:0], rel...)
		name = append(name, 0)
		fd, err := openBeneath(e.dir.fd, name)
		e.dir.release()
		switch {
		case err == nil:
			s.fast.CompareAndSwap(fastUnknown, fastOn)
			st, err := fstatFD(fd)
			if err != nil {
				closeFD(fd)
				return file{fd: -1}, err
			}
			return file{fd: fd, st: st}, nil
		case err == errNoFast:
			if s.fast.Load() == fastUnknown {
				s.fast.Store(fastOff)
			}
		default:
			return file{fd: -1}, err
		}
	}
	if e.root == nil {
		return file{fd: -1}, os.ErrNotExist
	}
	f, err := e.root.OpenFile(string(rel), openFlags, 0)
	if err != nil {
		return file{fd: -1}, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return file{fd: -1}, err
	}
	return file{fd: -1, f: f, st: statOf(fi)}, nil
}

// fastFlag is the Server's fastState.
type fastFlag = atomic.Int32
