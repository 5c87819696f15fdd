//go:build unix

package static

import (
	"os"
	"syscall"
)

// openFlags opens without blocking on a FIFO a docroot might contain (the
// fstat that follows turns it away). For regular files O_NONBLOCK changes
// nothing, and it spares the runtime's fcntl round trip around its poller
// registration attempt.
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK
