package static

import (
	"errors"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The GET fast path on Linux: one openat2(2) with RESOLVE_BENEATH opens a
// name under the docroot in a single call, where os.Root walks it one
// component at a time (an openat and a close per directory). The kernel
// enforces what os.Root enforces: no ".." above the docroot, no absolute
// symlink, no symlink leading out (EXDEV), and RESOLVE_NO_MAGICLINKS
// refuses /proc-style links as well.

// openDirFD opens path as a directory descriptor for openBeneath.
func openDirFD(path string) (int, bool) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, false
	}
	return fd, true
}

func closeFD(fd int) { unix.Close(fd) }

// errNoFast means openat2 is not usable here (an old kernel or a seccomp
// filter): the caller falls back to os.Root.
var errNoFast = errors.New("static: openat2 unavailable")

// openBeneath opens name, a relative path ending in a NUL byte (not
// included in the path), beneath dirfd, read-only and non-blocking (a FIFO
// must not block the loop). It does not allocate.
func openBeneath(dirfd int, name []byte) (int, error) {
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_NOCTTY,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, _, e := unix.Syscall6(unix.SYS_OPENAT2, uintptr(dirfd), uintptr(unsafe.Pointer(&name[0])),
			uintptr(unsafe.Pointer(&how)), unsafe.Sizeof(how), 0, 0)
		switch e {
		case 0:
			return int(fd), nil
		case unix.EINTR:
			continue
		case unix.ENOSYS, unix.EPERM, unix.E2BIG:
			return -1, errNoFast
		}
		return -1, e
	}
}

// fstatFD describes an open descriptor.
func fstatFD(fd int) (fileStat, error) {
	var st unix.Stat_t
	for {
		err := unix.Fstat(fd, &st)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fileStat{}, err
		}
		break
	}
	fs := fileStat{size: st.Size, mtime: time.Unix(st.Mtim.Unix()), id: fileID{
		dev: st.Dev, ino: st.Ino, size: st.Size,
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(),
	}}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		fs.kind = kindRegular
	case unix.S_IFDIR:
		fs.kind = kindDir
	}
	return fs, nil
}

// preadFD reads len(p) bytes at off, or fewer at the end of the file.
func preadFD(fd int, p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		k, err := unix.Pread(fd, p[n:], off+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if k == 0 {
			break
		}
		n += k
	}
	return n, nil
}

// statBeneath identifies the file name (NUL-terminated, as for
// openBeneath) leads to from dirfd, with one statx(2) and no allocation.
// It follows symbolic links wherever they go, without RESOLVE_BENEATH: the
// caller only compares the result with a file it opened beneath dirfd
// itself, and serves nothing on the strength of it alone.
func statBeneath(dirfd int, name []byte) (fileID, fileKind, bool) {
	var stx unix.Statx_t
	for {
		_, _, e := unix.Syscall6(unix.SYS_STATX, uintptr(dirfd), uintptr(unsafe.Pointer(&name[0])),
			0, unix.STATX_BASIC_STATS, uintptr(unsafe.Pointer(&stx)), 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return fileID{}, kindOther, false
		}
		break
	}
	kind := kindOther
	if stx.Mode&unix.S_IFMT == unix.S_IFREG {
		kind = kindRegular
	}
	return fileID{
		dev:   unix.Mkdev(stx.Dev_major, stx.Dev_minor),
		ino:   stx.Ino,
		size:  int64(stx.Size),
		mtime: stx.Mtime.Sec*1e9 + int64(stx.Mtime.Nsec),
		ctime: stx.Ctime.Sec*1e9 + int64(stx.Ctime.Nsec),
	}, kind, true
}
