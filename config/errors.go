package config

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrNotConfigCommand is returned by Interp.Exec for a command it does not
// know (output commands such as show, nodes or proc, and plugin commands of
// plugins not loaded), so that the management console can dispatch it.
var ErrNotConfigCommand = errors.New("config: not a configuration command")

// Error is a configuration error at a place in a file. Its text reads
// "file:line: message" (or "file: message" without a line).
type Error struct {
	File string
	Line int
	Err  error
}

// Error returns "file:line: message".
func (e *Error) Error() string {
	switch {
	case e.File == "" && e.Line == 0:
		return e.Err.Error()
	case e.Line == 0:
		return e.File + ": " + e.Err.Error()
	}
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Err.Error()
}

// Unwrap returns the message error.
func (e *Error) Unwrap() error { return e.Err }

// at wraps err with a place, unless it already carries one (an error from an
// included file keeps the place inside that file).
func at(file string, line int, err error) error {
	if err == nil {
		return nil
	}
	var ce *Error
	if errors.As(err, &ce) {
		return err
	}
	return &Error{File: file, Line: line, Err: err}
}

// errorf formats a message error; messages are Perlbal's where Perlbal has one.
func errorf(format string, args ...any) error {
	if len(args) == 0 {
		return errors.New(format)
	}
	return fmt.Errorf(format, args...)
}
