// Package chroot confines plb after start-up: it resolves the configured
// user, group and chroot_dir while /etc is still reachable, then chroots and
// drops privileges in the order of DESIGN.md section 7 and verifies the drop
// the way OpenSSH does (permanently_set_uid): the ids read back equal the
// targets and regaining root fails.
//
// The expected call sequence in cmd/plb, after the listeners, the log file
// and the pidfile are open:
//
//	if err := chroot.CheckPaths(cfg.ChrootDir, paths); err != nil { ... } // at config validation
//	creds, err := chroot.Resolve(chroot.Spec{User: cfg.User, Group: cfg.Group, Dir: cfg.ChrootDir})
//	if err != nil { ... }
//	if err := chroot.Drop(creds); err != nil { ... } // fatal: exit
//	docroot, _ = chroot.Rebase(cfg.ChrootDir, docroot)
//
// Drop is irreversible and process-wide: syscall.Setgroups/Setgid/Setuid
// apply to every thread since Go 1.16, and chroot is shared by all threads
// (CLONE_FS).
package chroot

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/plb/plb/internal/errs"
)

// Spec is what to drop to. Empty fields: keep.
type Spec struct {
	User  string // name or numeric uid
	Group string // name or numeric gid; defaults to User's primary group
	Dir   string // chroot_dir, absolute
}

// Creds are resolved numeric ids (resolve BEFORE chroot: /etc/passwd is
// outside).
type Creds struct {
	UID, GID int
	Groups   []int  // supplementary groups to set; empty = none
	Dir      string // chroot directory; "" = no chroot
	HasUser  bool   // UID is set
	HasGroup bool   // GID (and Groups) are set
}

// maxID is (uid_t)-1, which the set*id calls read as "leave unchanged".
const maxID = 1<<32 - 1

// Resolve turns s into numeric ids. User and Group are names or numeric ids;
// when only User is set, the group is the user's primary group. A numeric
// user without a passwd entry needs Group. Supplementary groups are always
// dropped (Creds.Groups is empty). Dir must be an absolute path to an
// existing directory.
func Resolve(s Spec) (Creds, error) {
	var c Creds
	primary := -1
	if s.User != "" {
		if id, ok, err := numericID(s.User); ok {
			if err != nil {
				return Creds{}, fmt.Errorf("user '%s': %v", s.User, err)
			}
			c.UID = id
			u, err := user.LookupId(s.User)
			if err == nil {
				primary, err = strconv.Atoi(u.Gid)
				if err != nil {
					return Creds{}, fmt.Errorf("user '%s': primary group id %q: %v", s.User, u.Gid, err)
				}
			} else if !errors.As(err, new(user.UnknownUserIdError)) {
				return Creds{}, fmt.Errorf("user '%s': %v", s.User, err)
			}
		} else {
			u, err := user.Lookup(s.User)
			if err != nil {
				if errors.As(err, new(user.UnknownUserError)) {
					return Creds{}, fmt.Errorf("user '%s' not found", s.User)
				}
				return Creds{}, fmt.Errorf("user '%s': %v", s.User, err)
			}
			if c.UID, err = strconv.Atoi(u.Uid); err != nil {
				return Creds{}, fmt.Errorf("user '%s': uid %q: %v", s.User, u.Uid, err)
			}
			if primary, err = strconv.Atoi(u.Gid); err != nil {
				return Creds{}, fmt.Errorf("user '%s': primary group id %q: %v", s.User, u.Gid, err)
			}
		}
		c.HasUser = true
	}

	switch {
	case s.Group != "":
		if id, ok, err := numericID(s.Group); ok {
			if err != nil {
				return Creds{}, fmt.Errorf("group '%s': %v", s.Group, err)
			}
			c.GID = id
		} else {
			g, err := user.LookupGroup(s.Group)
			if err != nil {
				if errors.As(err, new(user.UnknownGroupError)) {
					return Creds{}, fmt.Errorf("group '%s' not found", s.Group)
				}
				return Creds{}, fmt.Errorf("group '%s': %v", s.Group, err)
			}
			if c.GID, err = strconv.Atoi(g.Gid); err != nil {
				return Creds{}, fmt.Errorf("group '%s': gid %q: %v", s.Group, g.Gid, err)
			}
		}
		c.HasGroup = true
	case c.HasUser:
		if primary < 0 {
			return Creds{}, fmt.Errorf("user '%s' has no passwd entry, so no primary group: set group too", s.User)
		}
		c.GID = primary
		c.HasGroup = true
	}
	if c.HasGroup {
		c.Groups = []int{}
	}

	if s.Dir != "" {
		if !filepath.IsAbs(s.Dir) {
			return Creds{}, fmt.Errorf("chroot_dir %s: not an absolute path", s.Dir)
		}
		dir := filepath.Clean(s.Dir)
		fi, err := os.Stat(dir)
		if err != nil {
			return Creds{}, fmt.Errorf("chroot_dir %s: %v", s.Dir, errs.UnwrapPath(err))
		}
		if !fi.IsDir() {
			return Creds{}, fmt.Errorf("chroot_dir %s: not a directory", s.Dir)
		}
		c.Dir = dir
	}
	return c, nil
}

// numericID reports whether s is all digits and, if so, parses it as an id.
func numericID(s string) (id int, numeric bool, err error) {
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, false, nil
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == maxID {
		return 0, true, fmt.Errorf("id %s out of range", s)
	}
	return int(n), true, nil
}

// Drop confines the process to c, in this order: load time.Local (so the
// zone is not silently UTC in the jail), chroot(c.Dir) and chdir("/") if
// c.Dir is set, setgroups(c.Groups), setgid(c.GID), setuid(c.UID); then it
// verifies the result. Each error names the failing step. After an error the
// process is in an unknown state and must exit.
//
// Steps with nothing to do are skipped: no chroot without Dir, no
// setgroups/setgid without HasGroup, no setuid without HasUser. setgroups
// is also skipped when the process already has exactly c.Groups, so an
// unprivileged process can "drop" to its own identity.
func Drop(c Creds) error {
	if c.HasUser && !c.HasGroup {
		return errors.New("drop: user set without group (use Resolve)")
	}
	if c.Dir != "" && !filepath.IsAbs(c.Dir) {
		return fmt.Errorf("chroot %s: not an absolute path", c.Dir)
	}
	for _, id := range append([]int{c.UID, c.GID}, c.Groups...) {
		if id < 0 || id >= maxID {
			return fmt.Errorf("drop: id %d out of range", id)
		}
	}
	ruid, euid, suid := unix.Getresuid()
	wasRoot := ruid == 0 || euid == 0 || suid == 0

	// /etc/localtime (or $TZ under /usr/share/zoneinfo) is out of reach in
	// the jail; time.Local loads lazily on first use.
	time.Now().Zone()

	var rootBefore fs.FileInfo
	if c.Dir != "" {
		var err error
		if rootBefore, err = os.Stat(c.Dir); err != nil {
			return fmt.Errorf("chroot %s: %v", c.Dir, errs.UnwrapPath(err))
		}
		if err := syscall.Chroot(c.Dir); err != nil {
			return fmt.Errorf("chroot %s: %v", c.Dir, err)
		}
		if err := syscall.Chdir("/"); err != nil {
			return fmt.Errorf("chdir / after chroot %s: %v", c.Dir, err)
		}
	}
	if c.HasGroup {
		cur, err := syscall.Getgroups()
		if err != nil {
			return fmt.Errorf("getgroups: %v", err)
		}
		if !sameSet(cur, c.Groups) {
			if err := syscall.Setgroups(c.Groups); err != nil {
				return fmt.Errorf("setgroups %v: %v", c.Groups, err)
			}
		}
		if err := syscall.Setgid(c.GID); err != nil {
			return fmt.Errorf("setgid %d: %v", c.GID, err)
		}
	}
	if c.HasUser {
		if err := syscall.Setuid(c.UID); err != nil {
			return fmt.Errorf("setuid %d: %v", c.UID, err)
		}
	}
	return verify(c, rootBefore, wasRoot)
}

// verify checks the state Drop should have reached (OpenSSH's
// permanently_set_uid pattern: read the ids back, then try to regain root).
func verify(c Creds, rootBefore fs.FileInfo, wasRoot bool) error {
	if c.Dir != "" {
		// syscall.Getwd, not os.Getwd: the latter trusts $PWD.
		wd, err := syscall.Getwd()
		if err != nil {
			return fmt.Errorf("verify chroot %s: getwd: %v", c.Dir, err)
		}
		if wd != "/" {
			return fmt.Errorf("verify chroot %s: working directory is %q, not /", c.Dir, wd)
		}
		fi, err := os.Stat("/")
		if err != nil {
			return fmt.Errorf("verify chroot %s: stat /: %v", c.Dir, errs.UnwrapPath(err))
		}
		if !os.SameFile(fi, rootBefore) {
			return fmt.Errorf("verify chroot %s: / is not %s", c.Dir, c.Dir)
		}
	}
	if c.HasGroup {
		r, e, s := unix.Getresgid()
		if r != c.GID || e != c.GID || s != c.GID {
			return fmt.Errorf("verify setgid %d: real/effective/saved gid are %d/%d/%d", c.GID, r, e, s)
		}
		cur, err := syscall.Getgroups()
		if err != nil {
			return fmt.Errorf("verify setgroups: getgroups: %v", err)
		}
		if !sameSet(cur, c.Groups) {
			return fmt.Errorf("verify setgroups %v: supplementary groups are %v", c.Groups, cur)
		}
	}
	if c.HasUser {
		r, e, s := unix.Getresuid()
		if r != c.UID || e != c.UID || s != c.UID {
			return fmt.Errorf("verify setuid %d: real/effective/saved uid are %d/%d/%d", c.UID, r, e, s)
		}
	}
	if !c.HasUser || c.UID == 0 {
		return nil
	}
	// Non-root target: getting root back must be impossible.
	if syscall.Setuid(0) == nil {
		return fmt.Errorf("verify setuid %d: setuid(0) succeeded, privileges not dropped", c.UID)
	}
	if syscall.Seteuid(0) == nil {
		return fmt.Errorf("verify setuid %d: seteuid(0) succeeded, privileges not dropped", c.UID)
	}
	if c.GID != 0 {
		if syscall.Setgid(0) == nil {
			return fmt.Errorf("verify setgid %d: setgid(0) succeeded, privileges not dropped", c.GID)
		}
		if syscall.Setegid(0) == nil {
			return fmt.Errorf("verify setgid %d: setegid(0) succeeded, privileges not dropped", c.GID)
		}
	}
	if !sameSet(c.Groups, []int{0}) && syscall.Setgroups([]int{0}) == nil {
		return fmt.Errorf("verify setgroups: setgroups([0]) succeeded, privileges not dropped")
	}
	if wasRoot {
		// root -> non-root clears the permitted and effective capability
		// sets unless SECBIT_KEEP_CAPS / SECBIT_NO_SETUID_FIXUP is set.
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			return fmt.Errorf("verify capabilities: capget: %v", err)
		}
		for _, d := range data {
			if d.Permitted != 0 || d.Effective != 0 {
				return fmt.Errorf("verify setuid %d: capabilities kept after leaving root (permitted %#x %#x)",
					c.UID, data[0].Permitted, data[1].Permitted)
			}
		}
	}
	return nil
}

// sameSet reports whether a and b hold the same ids, ignoring order and
// duplicates.
func sameSet(a, b []int) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// CheckPaths validates, for configuration checking, that every value of
// paths (keyed by a description such as "service web docroot") is an
// absolute path inside dir, and stays inside once symlinks in its existing
// part are resolved. It also refuses a path whose symlinks resolve to a
// different file inside the jail than outside it (an absolute symlink such
// as /jail/www -> /jail/data/www means /jail/jail/data/www after the
// chroot). Empty values are skipped; dir == "" returns nil. All offending
// paths are reported, sorted by description.
func CheckPaths(dir string, paths map[string]string) error {
	if dir == "" {
		return nil
	}
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("chroot_dir %s: not an absolute path", dir)
	}
	realDir, err := walk("/", dir)
	if err != nil {
		return fmt.Errorf("chroot_dir %s: %v", dir, err)
	}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(paths)) {
		if err := checkPath(dir, realDir, k, paths[k]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func checkPath(dir, realDir, what, p string) error {
	if p == "" {
		return nil
	}
	if !filepath.IsAbs(p) {
		return fmt.Errorf("%s %s is not an absolute path: give it as an absolute path inside chroot_dir %s", what, p, dir)
	}
	host, err := walk("/", p)
	if err != nil {
		return fmt.Errorf("%s %s: %v", what, p, err)
	}
	if _, ok := within(realDir, host); !ok {
		via := ""
		if _, looksInside := within(filepath.Clean(dir), filepath.Clean(p)); looksInside {
			via = " (it resolves to " + host + ")"
		}
		return fmt.Errorf("%s %s is outside chroot_dir %s%s: put it inside, or drop chroot_dir", what, p, dir, via)
	}
	// What plb will open after the drop, resolved as the kernel will then.
	inJail, err := Rebase(dir, p)
	if err != nil {
		return fmt.Errorf("%s %s: %v", what, p, err)
	}
	jail, err := walk(realDir, inJail)
	if err != nil {
		return fmt.Errorf("%s %s: %v", what, p, err)
	}
	if jail != host {
		return fmt.Errorf("%s %s resolves to %s, but after the chroot to %s it would be %s: use relative symlinks that stay inside chroot_dir",
			what, p, host, dir, jail)
	}
	return nil
}

// Rebase returns path as the process sees it inside the jail dir:
// Rebase("/jail", "/jail/www") is "/www". The match is lexical (after
// filepath.Clean); if that fails, it is retried with symlinks in dir and in
// the existing part of path resolved (dir itself may be a symlink). It is an
// error if path is relative or outside dir. With dir == "" the path is
// returned unchanged. Rebase does not check where symlinks below dir lead:
// validate with CheckPaths first.
func Rebase(dir, p string) (string, error) {
	if dir == "" {
		return p, nil
	}
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("chroot_dir %s: not an absolute path", dir)
	}
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("%s is not an absolute path", p)
	}
	if r, ok := within(filepath.Clean(dir), filepath.Clean(p)); ok {
		return r, nil
	}
	rd, err1 := walk("/", dir)
	rp, err2 := walk("/", p)
	if err1 == nil && err2 == nil {
		if r, ok := within(rd, rp); ok {
			return r, nil
		}
	}
	return "", fmt.Errorf("%s is outside chroot_dir %s", p, dir)
}

// within reports whether the clean absolute path p is dir or below it, and
// returns p relative to dir as an absolute path ("/" for dir itself).
func within(dir, p string) (string, bool) {
	if dir == "/" {
		return p, true
	}
	if p == dir {
		return "/", true
	}
	if rest, ok := strings.CutPrefix(p, dir); ok && strings.HasPrefix(rest, "/") {
		return rest, true
	}
	return "", false
}

// maxLinks bounds symlink expansion, as the kernel does (ELOOP after 40).
const maxLinks = 40

// walk resolves the absolute path p the way the kernel does for a process
// whose root directory is root ("/" for the host): symlinks are followed
// (absolute targets restart at root), ".." applies to the resolved path and
// stops at root. From the first component that does not exist on, the rest
// is joined lexically. The result is a clean host path.
func walk(root, p string) (string, error) {
	root = filepath.Clean(root)
	cur := "/" // resolved so far, relative to root; always clean
	rest := p
	links := 0
	missing := false
	for rest != "" {
		var c string
		c, rest, _ = strings.Cut(rest, "/")
		switch c {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, c)
		if missing {
			cur = next
			continue
		}
		host := filepath.Join(root, next)
		fi, err := os.Lstat(host)
		if errors.Is(err, fs.ErrNotExist) {
			missing = true
			cur = next
			continue
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if !fi.IsDir() && strings.Trim(rest, "/") != "" {
				// A file with more components after it: ENOTDIR at
				// open; treat the rest as lexical like a missing part.
				missing = true
			}
			cur = next
			continue
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("%s: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(host)
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			cur = "/"
		}
		rest = target + "/" + rest
	}
	return filepath.Join(root, cur), nil
}
