// Package errs holds error helpers several packages share.
package errs

import (
	"errors"
	"io/fs"
)

// UnwrapPath drops the *fs.PathError wrapper (os.PathError is the same
// type), whose path the caller's message already names.
func UnwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
