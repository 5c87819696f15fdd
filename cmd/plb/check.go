package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/plb/plb/chroot"
	"github.com/plb/plb/config"
	"github.com/plb/plb/http/plugin/builtin"
	"github.com/plb/plb/internal/errs"
)

// preflight is what plb -n checks once the configuration has parsed: what
// the start would refuse, short of binding ports and dropping privileges.
// chroot_dir exists and holds every path the configuration uses; user and
// group exist; the directories and files it names are there and readable
// (docroots, spool directories, nodefiles, the log and pidfile
// directories, access logs), certificates and keys parse and match, CA
// files hold certificates; the plugins accept their settings; the
// descriptor limit covers max_clients. Every problem is reported, each at
// the file:line that set it. It creates and changes nothing.
//
// What it cannot know: whether the ports are free, and whether the user
// plb drops to may read what root can (-n usually runs as someone else).
func preflight(c *config.Config) error {
	var problems []error
	add := func(err error) {
		if err != nil {
			problems = append(problems, err)
		}
	}
	g := &c.Global
	_, err := resolveCreds(c)
	add(err)
	if g.Chroot != "" && err == nil {
		// As the start checks them, one by one, each at its owner's line.
		configPaths(c.Clone(), func(owner, key string, p *string) error {
			add(placeOwner(c, owner, chroot.CheckPaths(g.Chroot, map[string]string{owner + " " + key: *p})))
			return nil
		})
	}
	add(checkFiles(c))
	if g.LogFile != "" {
		add(c.GlobalError("log_file", checkCreatable("log_file", g.LogFile)))
	}
	if g.PidFile != "" {
		add(c.GlobalError("pidfile", checkCreatable("pidfile", g.PidFile)))
	}
	reg := builtin.New()
	for _, sc := range c.Services {
		if _, err := reg.Hooks(sc); err != nil {
			add(placeOwner(c, "service "+sc.Name, err))
		}
	}
	add(checkNoFile(c))
	return errors.Join(problems...)
}

// resolveCreds resolves user, group and chroot_dir as the start does,
// with each error at the line that set the key and saying what to do.
func resolveCreds(c *config.Config) (chroot.Creds, error) {
	g := &c.Global
	var problems []error
	if g.Chroot != "" {
		if _, err := chroot.Resolve(chroot.Spec{Dir: g.Chroot}); err != nil {
			problems = append(problems, c.GlobalError("chroot_dir", fmt.Errorf("%w (create the directory, or fix chroot_dir)", err)))
		}
	}
	if g.User != "" {
		spec := chroot.Spec{User: g.User}
		if g.Group != "" {
			spec.Group = "0" // group is checked on its own, below
		}
		if _, err := chroot.Resolve(spec); err != nil {
			problems = append(problems, c.GlobalError("user", fmt.Errorf("%w (create the user, e.g. adduser --system --no-create-home %s, or fix user)", err, g.User)))
		}
	}
	if g.Group != "" {
		if _, err := chroot.Resolve(chroot.Spec{Group: g.Group}); err != nil {
			problems = append(problems, c.GlobalError("group", fmt.Errorf("%w (create the group, e.g. addgroup --system %s, or fix group)", err, g.Group)))
		}
	}
	if len(problems) > 0 {
		return chroot.Creds{}, errors.Join(problems...)
	}
	if g.User == "" && g.Group == "" && g.Chroot == "" {
		return chroot.Creds{}, nil
	}
	return chroot.Resolve(chroot.Spec{User: g.User, Group: g.Group, Dir: g.Chroot})
}

// placeOwner places err at the line that created owner ("service NAME" or
// "pool NAME").
func placeOwner(c *config.Config, owner string, err error) error {
	if err == nil {
		return nil
	}
	var ce *config.Error
	if errors.As(err, &ce) {
		return err
	}
	file, line := c.File, 0
	kind, name, _ := strings.Cut(owner, " ")
	switch kind {
	case "service":
		if sc := c.Service(name); sc != nil {
			file, line = orFile(sc.File, c.File), sc.Line
		}
	case "pool":
		if pc := c.Pool(name); pc != nil {
			file, line = orFile(pc.File, c.File), pc.Line
		}
	}
	return &config.Error{File: file, Line: line, Err: err}
}

func orFile(f, def string) string {
	if f == "" {
		return def
	}
	return f
}

// checkFiles checks that the directories and files services and pools
// name are there and readable, and that their certificates parse.
func checkFiles(c *config.Config) error {
	var problems []error
	add := func(owner string, err error) {
		if err != nil {
			problems = append(problems, placeOwner(c, owner, err))
		}
	}
	for _, sc := range c.Services {
		owner := "service " + sc.Name
		if sc.Docroot != "" {
			add(owner, checkDir("docroot", sc.Docroot))
		}
		if sc.BufferDir != "" {
			add(owner, checkDir("buffer_dir", sc.BufferDir))
		}
		if sc.BufferUploadsPath != "" {
			add(owner, checkDir("buffer_uploads_path", sc.BufferUploadsPath))
		}
		if sc.AccessLog != "" {
			add(owner, checkCreatable("access_log", sc.AccessLog))
		}
		if sc.EnableSSL || sc.Role == config.RoleSMTPProxy && sc.SMTPStartTLS {
			add(owner, checkServerTLS(sc))
		}
		if sc.Role == config.RoleReverseProxy && sc.BackendSSL && sc.BackendSSLCAFile != "" {
			add(owner, checkCAFile("backend_ssl_ca_file", sc.BackendSSLCAFile))
		}
	}
	for _, pc := range c.Pools {
		if pc.NodeFile != "" {
			_, err := os.ReadFile(pc.NodeFile)
			add("pool "+pc.Name, pathError("nodefile", pc.NodeFile, err))
		}
	}
	return errors.Join(problems...)
}

// pathError is err about key's path p, without the path twice.
func pathError(key, p string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s '%s': %w", key, p, errs.UnwrapPath(err))
}

// checkDir checks that p is a directory whose entries can be listed.
func checkDir(key, p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return pathError(key, p, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s '%s': not a directory", key, p)
	}
	d, err := os.Open(p)
	if err == nil {
		_, err = d.Readdirnames(1)
		d.Close()
		if errors.Is(err, io.EOF) {
			err = nil // empty
		}
	}
	return pathError(key, p, err)
}

// checkCreatable checks a file plb creates or appends to at start (log
// file, pidfile, access log): its directory exists, and the file, if it
// exists, is a regular file. Nothing is created.
func checkCreatable(key, p string) error {
	fi, err := os.Stat(p)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		return fmt.Errorf("%s '%s': not a regular file", key, p)
	case err == nil:
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return pathError(key, p, err)
	}
	dir := filepath.Dir(p)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("%s '%s': its directory %s does not exist (create it)", key, p, dir)
	}
	return nil
}

// checkServerTLS reads and parses what enable_ssl reads at start, as
// server/tls.go does: each certificate with its key, and with client
// certificates asked for, the CA directory.
func checkServerTLS(sc *config.Service) error {
	type pair struct{ certKey, cert, keyKey, key string }
	pairs := []pair{{"ssl_cert_file", sc.SSLCertFile, "ssl_key_file", sc.SSLKeyFile}}
	for _, e := range sc.SSLCertificates {
		cf, kf := config.SplitCertKey(e)
		pairs = append(pairs, pair{"ssl_certificates", cf, "key", kf})
	}
	var problems []error
	for _, p := range pairs {
		cert, err := os.ReadFile(p.cert)
		if err != nil {
			problems = append(problems, pathError(p.certKey, p.cert, err))
			continue
		}
		key, err := os.ReadFile(p.key)
		if err != nil {
			problems = append(problems, pathError(p.keyKey, p.key, err))
			continue
		}
		if _, err := tls.X509KeyPair(cert, key); err != nil {
			if p.cert == p.key {
				problems = append(problems, fmt.Errorf("%s '%s': %w", p.certKey, p.cert, err))
			} else {
				problems = append(problems, fmt.Errorf("%s '%s' with %s '%s': %w", p.certKey, p.cert, p.keyKey, p.key, err))
			}
		}
	}
	if sc.SSLCAPath != "" && config.ClientAuth(sc.SSLVerifyMode) != tls.NoClientCert {
		if err := checkCADir(sc.SSLCAPath); err != nil {
			problems = append(problems, err)
		}
	}
	return errors.Join(problems...)
}

// checkCADir checks that ssl_ca_path holds at least one PEM certificate.
func checkCADir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return pathError("ssl_ca_path", dir, err)
	}
	pool := x509.NewCertPool()
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err == nil && pool.AppendCertsFromPEM(b) {
			return nil
		}
	}
	return fmt.Errorf("ssl_ca_path '%s': no PEM certificate found", dir)
}

// checkCAFile checks that a CA file holds at least one PEM certificate.
func checkCAFile(key, p string) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return pathError(key, p, err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		return fmt.Errorf("%s '%s': no PEM certificate found", key, p)
	}
	return nil
}

// checkNoFile is raiseNoFile's check without raising anything: the
// descriptors the configuration needs must fit under the hard limit, or
// under fs.nr_open when plb starts as root (root may raise the hard limit).
func checkNoFile(c *config.Config) error {
	need, what := descriptorsNeeded(c)
	if what == "" {
		return nil
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || uint64(need) <= rl.Max {
		return nil
	}
	if os.Geteuid() == 0 {
		b, err := os.ReadFile("/proc/sys/fs/nr_open")
		n, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || perr != nil || uint64(need) <= n {
			return nil
		}
		return c.GlobalError(what, fmt.Errorf("%s needs %d descriptors; the kernel allows %d (fs.nr_open)", what, need, n))
	}
	return c.GlobalError(what, fmt.Errorf("%s needs %d descriptors; the hard limit is %d (ulimit -Hn): raise it, or start as root, which may", what, need, rl.Max))
}
