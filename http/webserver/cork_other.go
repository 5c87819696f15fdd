//go:build !linux

package webserver

// setCork does nothing where TCP_CORK does not exist.
func setCork(int, bool) bool { return false }
