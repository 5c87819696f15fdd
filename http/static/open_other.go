//go:build !unix

package static

import "os"

// openFlags are the flags docroot files are opened with.
const openFlags = os.O_RDONLY
