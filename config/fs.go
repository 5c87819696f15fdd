package config

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// FS is the file access configuration parsing needs: checking docroots and
// other paths, reading nodefiles and INCLUDEd files. Paths are used as
// given (relative to the process's working directory for OSFS).
type FS interface {
	Stat(name string) (fs.FileInfo, error)
	ReadFile(name string) ([]byte, error)
	Glob(pattern string) ([]string, error)
}

// OSFS is the operating system's file system.
type OSFS struct{}

// maxConfigFile bounds the files the configuration reads (nodefiles,
// included files): 16 MiB is far above any real one.
const maxConfigFile = 16 << 20

// Stat calls os.Stat.
func (OSFS) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }

// ReadFile reads a regular file of at most 16 MiB.
func (OSFS) ReadFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("not a regular file")}
	}
	b, err := io.ReadAll(io.LimitReader(f, maxConfigFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxConfigFile {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("file too large")}
	}
	return b, nil
}

// Glob calls filepath.Glob.
func (OSFS) Glob(pattern string) ([]string, error) { return filepath.Glob(pattern) }
