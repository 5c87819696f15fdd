package source

import (
	"context"
	"os"
	"slices"
	"time"

	"github.com/plb/plb/config"
)

// Nodefile is a file of nodes, one per line (config.ParseNodeFile), looked
// at every Options.Every and re-read when its modification time changes.
// A line without a node is logged as a warning naming file:line and
// skipped; a file that cannot be read is logged and the pool keeps its
// nodes; a file that cannot be found (stat fails) is skipped quietly
// until it is back.
type Nodefile struct {
	path    string
	initial []string
	o       Options
}

var _ Source = (*Nodefile)(nil)

// NewNodefile returns a source watching path, starting from initial (the
// file's nodes as read when the config was parsed).
func NewNodefile(path string, initial []string, o Options) *Nodefile {
	return &Nodefile{path: path, initial: slices.Clone(initial), o: o.withDefaults()}
}

// Path returns the file watched.
func (n *Nodefile) Path() string { return n.path }

// String implements Source.
func (n *Nodefile) String() string { return "nodefile " + n.path }

// Nodes implements Source.
func (n *Nodefile) Nodes() []string { return slices.Clone(n.initial) }

// Continues implements Source: next watches the same file as often.
func (n *Nodefile) Continues(next Source) bool {
	o, ok := next.(*Nodefile)
	return ok && o.path == n.path && o.o.Every == n.o.Every
}

// Run implements Source. The first look re-reads the file whatever its
// time: it may have changed since the config was parsed (publishing the
// same nodes again changes nothing in a pool).
func (n *Nodefile) Run(ctx context.Context, publish Publish) {
	tick, stop := n.o.Ticker(n.o.Every)
	defer stop()
	var seen bool
	var mtime time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
		fi, err := os.Stat(n.path)
		if err != nil {
			continue
		}
		if seen && mtime.Equal(fi.ModTime()) {
			continue
		}
		seen, mtime = true, fi.ModTime()
		n.read(ctx, publish)
	}
}

// read reads the file and publishes its nodes.
func (n *Nodefile) read(ctx context.Context, publish Publish) {
	log := n.o.Log
	data, err := os.ReadFile(n.path)
	if err != nil {
		log.Warn("nodefile unreadable", "file", n.path, "err", err)
		return
	}
	nodes, bad := config.ParseNodeFile(n.path, data)
	for _, err := range bad {
		log.Warn("nodefile line ignored", "err", err)
	}
	if ctx.Err() != nil {
		return // stopped meanwhile: the pool is someone else's now
	}
	if err := publish(nodes); err != nil {
		log.Warn("nodefile", "err", err)
		return
	}
	log.Debug("nodefile read", "nodes", len(nodes))
}
