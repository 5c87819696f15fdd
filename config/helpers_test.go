package config

import (
	"errors"
	"io/fs"
	"time"
)

// fakeFS is a file system where every path is a directory and no file can
// be read: docroots always exist, nodefiles and includes never load.
type fakeFS struct{}

type dirInfo string

func (d dirInfo) Name() string       { return string(d) }
func (d dirInfo) Size() int64        { return 0 }
func (d dirInfo) Mode() fs.FileMode  { return fs.ModeDir | 0o755 }
func (d dirInfo) ModTime() time.Time { return time.Time{} }
func (d dirInfo) IsDir() bool        { return true }
func (d dirInfo) Sys() any           { return nil }

func (fakeFS) Stat(name string) (fs.FileInfo, error) { return dirInfo(name), nil }
func (fakeFS) ReadFile(name string) ([]byte, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}
func (fakeFS) Glob(string) ([]string, error) { return nil, errors.New("no glob") }

func fakeOptions() Options {
	return Options{
		FS:            fakeFS{},
		Env:           testEnv,
		InterfaceAddr: func(string) (string, error) { return "192.0.2.9", nil },
	}
}
