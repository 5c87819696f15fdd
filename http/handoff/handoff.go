// Package handoff is the contract between a selector (Perlbal's "base"
// service) and the services it hands client connections to: a selector
// reads a request head, picks a target service, and the target takes the
// connection over (engine.Conn.SetHandler) with the bytes still buffered;
// after each response the target gives the connection back to the base if
// the client keeps it (Perlbal's return_to_base), so that the next request
// is selected afresh.
package handoff

import (
	"slices"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
)

// Target is a running service a connection can be handed to: by a
// selector, by X-REPROXY-SERVICE, or by a web server's file hooks
// (LazyCDN's fallback_service). It is the one contract of the three.
type Target interface {
	// Role is the target's role (config.RoleReverseProxy, ...). A role
	// that cannot take HTTP clients (TakesHTTP) gets Perlbal's 500 "Can't
	// map to service type <role>" instead of the connection.
	Role() string
	// Adopt takes c over for the request at the start of its buffered
	// input (nothing of it was consumed), and later the ones hc allows.
	// Runs on c's loop.
	Adopt(c *engine.Conn, hc *Client)
}

// Resolver finds a running service by name (nil: none). It is called on
// the loops: it must not block.
type Resolver func(name string) Target

// Find is r(name), or nil when r is nil.
func (r Resolver) Find(name string) Target {
	if r == nil {
		return nil
	}
	return r(name)
}

// TakesHTTP reports whether a service of role can take an HTTP client
// handed to it: the reverse proxy, the web server, a selector, the
// console (which answers HTTP as Perlbal's does).
func TakesHTTP(role string) bool {
	switch role {
	case config.RoleReverseProxy, config.RoleWebServer, config.RoleSelector, config.RoleManagement:
		return true
	}
	return false
}

// Base is the service a connection came from and returns to.
type Base interface {
	// Return takes the connection back once a response is queued in full
	// and the client keeps the connection; the target must not touch c
	// afterwards. Runs on c's loop.
	Return(c *engine.Conn)
}

// Client describes a connection handed from a base to a target service.
// The target reads the request head again from the connection's buffered
// input (nothing was consumed), then applies what Client says.
type Client struct {
	// Base takes the connection back after each response (nil: the
	// target keeps it, as a connection it accepted itself).
	Base Base
	// Persist is the base's persist_client: with a selector, the
	// selector's value decides client keep-alive, not the target's.
	Persist bool
	// Rules are the base's HEADER rules (and edits its plugins made, such
	// as the Host of Vhosts' /__using/), applied to the request before the
	// target's own (nil: none).
	Rules *Rules
	// URI, when not nil, replaces the request target (a start_serve_request
	// plugin rewrote it).
	URI []byte
	// Hops counts the selectors the request went through after the
	// first (a bound against selectors leading to each other).
	Hops int
}

// MaxHops bounds Client.Hops: how many hand-offs one request may go
// through, so that services handing it to each other cannot loop.
const MaxHops = 8

// Header is one header line.
type Header struct{ Name, Value []byte }

// Rules are HEADER rules ready for the data path: the names to remove
// from a request (the inserted names included: an insert replaces), then
// the headers to add.
type Rules struct {
	Removes [][]byte
	Inserts []Header
}

// NewRules compiles a service's HEADER rules; nil when there are none.
func NewRules(hs []config.HeaderRule) *Rules {
	if len(hs) == 0 {
		return nil
	}
	r := &Rules{}
	for _, h := range hs {
		if h.Insert {
			name := []byte(h.Name)
			// A later insert of the same name replaces the earlier one.
			r.Inserts = slices.DeleteFunc(r.Inserts, func(o Header) bool { return EqualFold(o.Name, name) })
			r.Inserts = append(r.Inserts, Header{name, []byte(h.Value)})
		} else {
			r.Removes = append(r.Removes, []byte(h.Name))
		}
	}
	for _, h := range r.Inserts {
		r.Removes = append(r.Removes, h.Name)
	}
	return r
}

// With returns r plus an insert (replacing name); r is not modified.
func (r *Rules) With(name, value []byte) *Rules {
	n := &Rules{}
	if r != nil {
		n.Removes = append(n.Removes, r.Removes...)
		for _, h := range r.Inserts {
			if !EqualFold(h.Name, name) {
				n.Inserts = append(n.Inserts, h)
			}
		}
	}
	n.Removes = append(n.Removes, name)
	n.Inserts = append(n.Inserts, Header{name, value})
	return n
}

// Removed reports whether r removes (or replaces) the header name.
func (r *Rules) Removed(name []byte) bool {
	if r == nil {
		return false
	}
	for _, rm := range r.Removes {
		if EqualFold(name, rm) {
			return true
		}
	}
	return false
}

// EqualFold compares two header names without regard to ASCII case.
func EqualFold(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// Chain returns the rules of a applied, then those of b (either may be
// nil); neither is modified.
func Chain(a, b *Rules) *Rules {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	n := &Rules{Removes: append(append([][]byte(nil), a.Removes...), b.Removes...)}
	for _, h := range a.Inserts {
		if !b.Removed(h.Name) {
			n.Inserts = append(n.Inserts, h)
		}
	}
	n.Inserts = append(n.Inserts, b.Inserts...)
	return n
}
