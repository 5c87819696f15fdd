package pool

import (
	"errors"
	"strings"
)

// Balancing: each balance method is one file, balance_<name>.go, with its
// name constant, its Selector and its entry of the table below (as
// HAProxy's lb_*.c or Caddy's selection policies). Methods is the one list
// of the names: config's BalanceMethods and its check of balance_method
// read it (config imports pool; pool imports no plb package and must not
// import config).

// Key is what of a request a balance method may pick by: a hash
// (HashBytes) of the client's address, a header, a cookie or the URI, as
// the pool's HashKey says. Callers compute it only when HashKey asks for
// one, and pass NoKey otherwise, so a request computes nothing it does
// not need.
type Key uint64

// HashKey is what of a request hash picks by (HashKey.Source), parsed
// from hash_key by ParseHashKey.
type HashKey struct {
	Source KeySource
	// Name is the header's or the cookie's name.
	Name string
}

// KeySource is where a request's Key comes from.
type KeySource uint8

const (
	KeyNone     KeySource = iota // no key: NoKey
	KeySourceIP                  // the client's address, without the port
	KeyURI                       // the request target, query included
	KeyHeader                    // a header's value (its first field)
	KeyCookie                    // a cookie's value
)

// String is the key as hash_key writes it.
func (k HashKey) String() string {
	switch k.Source {
	case KeySourceIP:
		return "source_ip"
	case KeyURI:
		return "uri"
	case KeyHeader:
		return "header:" + k.Name
	case KeyCookie:
		return "cookie:" + k.Name
	}
	return ""
}

// ParseHashKey parses hash_key: "source_ip", "uri", "header:NAME" or
// "cookie:NAME" (NAME a token: letters, digits and !#$%&'*+-.^_`|~).
func ParseHashKey(s string) (HashKey, error) {
	switch s {
	case "source_ip":
		return HashKey{Source: KeySourceIP}, nil
	case "uri":
		return HashKey{Source: KeyURI}, nil
	}
	kind, name, ok := strings.Cut(s, ":")
	if ok && IsToken(name) {
		switch kind {
		case "header":
			return HashKey{Source: KeyHeader, Name: name}, nil
		case "cookie":
			return HashKey{Source: KeyCookie, Name: name}, nil
		}
	}
	return HashKey{}, errors.New("hash_key must be source_ip, uri, header:NAME or cookie:NAME")
}

// IsToken reports whether s is an HTTP token (RFC 9110 5.6.2), as a
// header's or a cookie's name must be (RFC 6265 4.1.1).
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// NoKey is the key of a request picked without one.
const NoKey Key = 0

// Selector is one balance method's policy, an instance per pool.
type Selector interface {
	// Select picks a node of nodes that is up and not rejected by skip
	// (nil skips nothing), for a request with key, or returns nil. It is
	// called from any goroutine and must not allocate.
	Select(nodes []*Node, key Key, skip func(*Node) bool) *Node
}

// NodesWatcher is implemented by a Selector that keeps state about the
// nodes (a hash ring, weights) instead of scanning them on each Select:
// the pool tells it the node list when it is installed and whenever the
// list changes (nodes come and go). The calls are serialized; a Select
// may run meanwhile and may see nodes not told yet, and it picks only
// from the list it is given.
type NodesWatcher interface {
	NodesChanged(nodes []*Node)
}

// ConnsWatcher is implemented by a Selector told when a request (an HTTP
// request, a relayed SMTP or TCP session) starts on a node and when it
// ends: Pool.Take and Pool.Release, which the proxy and the relay call,
// count Node.Active and then tell the pool's policy, with the node's new
// count. The calls come from any loop, concurrently, and must not block
// or allocate. A policy installed while requests are in flight is told
// releases of requests it was not told of, and nodes it may no longer
// have: it reads Node.Active at NodesChanged to start from the truth.
//
// least_conn and idle_first need only the count, and a scan of a pool's
// few nodes costs less than a structure kept in order on every start and
// end (BenchmarkPick): they read Node.Active in Select and implement
// neither watcher.
type ConnsWatcher interface {
	Took(n *Node, active int64)
	Released(n *Node, active int64)
}

// Method is one entry of the balance method table.
type Method struct {
	// Name is the balance_method name configuration accepts.
	Name string
	// Aliases are other spellings the pool accepts (configuration does
	// not).
	Aliases []string
	// ReuseFirst: a request takes an idle connection to any node before
	// the policy picks a node for a new one (idle_first; Pool.ReuseFirst).
	ReuseFirst bool
	// New makes the policy for one pool.
	New func() Selector
}

// Methods returns the balance method table, the default first: a new
// slice on each call, built from constants (nothing mutates a table).
func Methods() []Method {
	return []Method{idleFirstMethod(), randomMethod(), roundRobinMethod(), leastConnMethod(), hashMethod()}
}

// MethodNames returns the names of Methods, in its order: the default
// first.
func MethodNames() []string {
	ms := Methods()
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
	}
	return names
}

// LookupMethod returns the method named name or one of its aliases; ""
// is the default (the first of Methods).
func LookupMethod(name string) (Method, bool) {
	ms := Methods()
	if name == "" {
		return ms[0], true
	}
	for _, m := range ms {
		if m.Name == name {
			return m, true
		}
		for _, a := range m.Aliases {
			if a == name {
				return m, true
			}
		}
	}
	return Method{}, false
}

// errUnknownMethod is Perlbal's error for an unknown balance method; the
// config's check, which adds the valid names, catches a bad name before a
// pool sees it.
func errUnknownMethod() error { return errors.New("Unknown balance method") }

// NewSelector returns a new policy of the balance method named method
// (LookupMethod), or Perlbal's error for an unknown name.
func NewSelector(method string) (Selector, error) {
	m, ok := LookupMethod(method)
	if !ok {
		return nil, errUnknownMethod()
	}
	return m.New(), nil
}

// usable reports whether n may be picked: up, not drained (weight 0) and
// not rejected by skip.
func usable(n *Node, skip func(*Node) bool) bool {
	return n.Available() && (skip == nil || !skip(n))
}
