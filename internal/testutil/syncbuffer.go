// Package testutil holds what several packages' tests share.
package testutil

import (
	"strings"
	"sync"
)

// SyncBuffer is a log destination that goroutines (a loop, probes) and the
// test may write and read at once.
type SyncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
