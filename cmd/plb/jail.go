package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/plb/plb/chroot"
	"github.com/plb/plb/config"
)

// jailPaths lists every file system path the configuration uses, keyed by
// what it is, for chroot.CheckPaths: they must be inside chroot_dir.
func jailPaths(c *config.Config) map[string]string {
	paths := map[string]string{}
	configPaths(c, func(owner, key string, p *string) error {
		paths[owner+" "+key] = *p
		return nil
	})
	return paths
}

// configPaths calls f with every file system path c uses, which f may
// change: owner is "service NAME" or "pool NAME", key what the path is.
// It stops at f's first error.
func configPaths(c *config.Config, f func(owner, key string, p *string) error) error {
	for _, sc := range c.Services {
		owner := "service " + sc.Name
		if sc.EnableSSL {
			// Read again by every Apply, so from inside the jail too.
			for i, e := range sc.SSLCertificates {
				cert, key := config.SplitCertKey(e)
				nc, nk := cert, key
				if err := f(owner, fmt.Sprintf("ssl_certificates[%d] certificate", i), &nc); err != nil {
					return err
				}
				if err := f(owner, fmt.Sprintf("ssl_certificates[%d] key", i), &nk); err != nil {
					return err
				}
				switch {
				case nc == cert && nk == key:
					// unchanged: the entry stays as written
				case nc == nk:
					sc.SSLCertificates[i] = nc
				default:
					sc.SSLCertificates[i] = nc + ":" + nk
				}
			}
		}
		type path struct {
			key string
			p   *string
		}
		paths := []path{{"docroot", &sc.Docroot}, {"buffer_uploads_path", &sc.BufferUploadsPath},
			{"buffer_dir", &sc.BufferDir}, {"access_log", &sc.AccessLog}}
		if sc.EnableSSL {
			paths = append(paths, path{"ssl_cert_file", &sc.SSLCertFile}, path{"ssl_key_file", &sc.SSLKeyFile},
				path{"ssl_ca_path", &sc.SSLCAPath})
		}
		if sc.BackendSSL {
			paths = append(paths, path{"backend_ssl_ca_file", &sc.BackendSSLCAFile})
		}
		for _, p := range paths {
			if err := f(owner, p.key, p.p); err != nil {
				return err
			}
		}
	}
	for _, pc := range c.Pools {
		if err := f("pool "+pc.Name, "nodefile", &pc.NodeFile); err != nil {
			return err
		}
	}
	return nil
}

// jailLoader maps the configuration's paths, written as seen from outside,
// to what plb opens once chrooted: for the re-Apply after the drop and for
// every reload.
type jailLoader struct {
	dir  string
	cwd  string      // the working directory at start: relative paths start there
	warn func(error) // the loader's warnings
}

func newJailLoader(dir string, warn func(error)) *jailLoader {
	cwd, _ := os.Getwd()
	return &jailLoader{dir: dir, cwd: cwd, warn: warn}
}

// rebase returns path as seen inside the jail.
func (j *jailLoader) rebase(path string) (string, error) {
	if !filepath.IsAbs(path) {
		path = filepath.Join(j.cwd, path)
	}
	return chroot.Rebase(j.dir, path)
}

// rebaseConfig returns a copy of c whose paths are the ones seen inside the
// jail.
func (j *jailLoader) rebaseConfig(c *config.Config) (*config.Config, error) {
	n := c.Clone()
	err := configPaths(n, func(owner, _ string, p *string) error {
		if *p == "" {
			return nil
		}
		in, err := j.rebase(*p)
		if err != nil {
			return fmt.Errorf("%s: %w", owner, err)
		}
		*p = in
		return nil
	})
	if err != nil {
		return nil, err
	}
	return n, nil
}

// load is the reload's loader once chrooted: the file and what it reads
// (nodefiles, INCLUDEs) are found inside the jail, the paths of the model
// rebased.
func (j *jailLoader) load(path string) (*config.Config, error) {
	c, err := loadConfigFS(path, jailFS{j}, j.warn)
	if err != nil {
		return nil, err
	}
	return j.rebaseConfig(c)
}

// jailFS is config.FS for paths written as seen from outside the jail.
type jailFS struct{ j *jailLoader }

func (f jailFS) path(op, name string) (string, error) {
	in, err := f.j.rebase(name)
	if err != nil {
		return "", &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("outside chroot_dir %s", f.j.dir)}
	}
	return in, nil
}

func (f jailFS) Stat(name string) (fs.FileInfo, error) {
	in, err := f.path("stat", name)
	if err != nil {
		return nil, err
	}
	return config.OSFS{}.Stat(in)
}

func (f jailFS) ReadFile(name string) ([]byte, error) {
	in, err := f.path("open", name)
	if err != nil {
		return nil, err
	}
	b, err := config.OSFS{}.ReadFile(in)
	if pe, ok := err.(*fs.PathError); ok {
		pe.Path = name
	}
	return b, err
}

func (f jailFS) Glob(pattern string) ([]string, error) {
	in, err := f.path("glob", pattern)
	if err != nil {
		return nil, err
	}
	m, err := filepath.Glob(in)
	for i := range m {
		m[i] = filepath.Join(f.j.dir, m[i])
	}
	return m, err
}
