// Package builtin holds the plugins compiled into plb: Perlbal's
// AccessControl, AutoRemoveLeadingDir, EchoService, FlvStreaming, Highpri,
// Include, LazyCDN, MaxContentLength, NotModified, Queues, Redirect, Stats,
// Throttle, Vhosts, Vpaths and XFFExtras. New builds the registry the
// server uses.
package builtin

import (
	"github.com/plb/plb/config"
	"github.com/plb/plb/http/plugin"
)

// New returns a registry of every built-in plugin, with fresh state (the
// Stats counters, say): each server gets its own.
func New() *plugin.Registry {
	r, err := plugin.NewRegistry(Plugins()...)
	if err != nil {
		panic(err) // Plugins has no duplicate
	}
	return r
}

// Plugins returns new values of every built-in plugin, for a registry that
// adds plugins of its own.
func Plugins() []plugin.Plugin {
	return []plugin.Plugin{
		&accessControl{}, &autoRemoveLeadingDir{}, &echoService{}, &flvStreaming{},
		&highpri{}, &include{}, newLazyCDN(), &maxContentLength{}, &notModified{},
		&queues{}, &redirect{}, newStats(), newThrottle(), &vhosts{}, &vpaths{},
		&xffExtras{},
	}
}

// describe is the configuration-side description of one of Perlbal's
// plugins: config.DefaultPlugins is its single source, so that plb -n and
// the running server read files the same way.
func describe(name string) config.Plugin {
	pl, ok := config.DefaultPlugins(name)
	if !ok {
		panic("builtin: config.DefaultPlugins has no " + name)
	}
	return pl
}

// include is Perlbal's Include: INCLUDE = <glob> is run by the
// configuration interpreter; at run time there is nothing to do.
type include struct{}

func (*include) Describe() config.Plugin               { return describe("Include") }
func (*include) Register(*config.Service) (any, error) { return nil, nil }
