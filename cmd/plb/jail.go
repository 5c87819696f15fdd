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
	for _, sc := range c.Services {
		paths["service "+sc.Name+" docroot"] = sc.Docroot
		paths["service "+sc.Name+" buffer_uploads_path"] = sc.BufferUploadsPath
		paths["service "+sc.Name+" buffer_dir"] = sc.BufferDir
		paths["service "+sc.Name+" access_log"] = sc.AccessLog
		if sc.EnableSSL {
			// Read again by every Apply, so from inside the jail too.
			paths["service "+sc.Name+" ssl_cert_file"] = sc.SSLCertFile
			paths["service "+sc.Name+" ssl_key_file"] = sc.SSLKeyFile
			paths["service "+sc.Name+" ssl_ca_path"] = sc.SSLCAPath
			for i, e := range sc.SSLCertificates {
				cert, key := config.SplitCertKey(e)
				paths[fmt.Sprintf("service %s ssl_certificates[%d] certificate", sc.Name, i)] = cert
				paths[fmt.Sprintf("service %s ssl_certificates[%d] key", sc.Name, i)] = key
			}
		}
		if sc.BackendSSL {
			paths["service "+sc.Name+" backend_ssl_ca_file"] = sc.BackendSSLCAFile
		}
	}
	for _, pc := range c.Pools {
		paths["pool "+pc.Name+" nodefile"] = pc.NodeFile
	}
	return paths
}

// jailLoader maps the configuration's paths, written as seen from outside,
// to what plb opens once chrooted: for the re-Apply after the drop and for
// every reload.
type jailLoader struct {
	dir string
	cwd string // the working directory at start: relative paths start there
}

func newJailLoader(dir string) *jailLoader {
	cwd, _ := os.Getwd()
	return &jailLoader{dir: dir, cwd: cwd}
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
	for _, sc := range n.Services {
		paths := []*string{&sc.Docroot, &sc.BufferUploadsPath, &sc.BufferDir, &sc.AccessLog}
		if sc.EnableSSL {
			paths = append(paths, &sc.SSLCertFile, &sc.SSLKeyFile, &sc.SSLCAPath)
		}
		if sc.BackendSSL {
			paths = append(paths, &sc.BackendSSLCAFile)
		}
		for i, e := range sc.SSLCertificates {
			if !sc.EnableSSL {
				break
			}
			cert, key := config.SplitCertKey(e)
			var err error
			if cert, err = j.rebase(cert); err == nil && key != cert {
				key, err = j.rebase(key)
			} else if err == nil {
				key = cert
			}
			if err != nil {
				return nil, fmt.Errorf("service %s: %w", sc.Name, err)
			}
			if key == cert {
				sc.SSLCertificates[i] = cert
			} else {
				sc.SSLCertificates[i] = cert + ":" + key
			}
		}
		for _, p := range paths {
			if *p == "" {
				continue
			}
			in, err := j.rebase(*p)
			if err != nil {
				return nil, fmt.Errorf("service %s: %w", sc.Name, err)
			}
			*p = in
		}
	}
	for _, pc := range n.Pools {
		if pc.NodeFile == "" {
			continue
		}
		in, err := j.rebase(pc.NodeFile)
		if err != nil {
			return nil, fmt.Errorf("pool %s: %w", pc.Name, err)
		}
		pc.NodeFile = in
	}
	return n, nil
}

// load is the reload's loader once chrooted: the file and what it reads
// (nodefiles, INCLUDEs) are found inside the jail, the paths of the model
// rebased.
func (j *jailLoader) load(path string) (*config.Config, error) {
	c, err := loadConfigFS(path, jailFS{j})
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
