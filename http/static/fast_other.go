//go:build !linux

package static

import "errors"

// Without openat2, every open goes through os.Root.

func openDirFD(string) (int, bool) { return -1, false }

func closeFD(int) {}

var errNoFast = errors.New("static: openat2 unavailable")

func openBeneath(int, []byte) (int, error) { return -1, errNoFast }

func fstatFD(int) (fileStat, error) { return fileStat{}, errNoFast }

func preadFD(int, []byte, int64) (int, error) { return 0, errNoFast }

func statBeneath(int, []byte) (fileID, fileKind, bool) { return fileID{}, kindOther, false }
