package pool

// MethodIdleFirst, the default, is Perlbal's way with a fairer new
// connection: a request takes an idle connection to any node no much
// busier than the least busy one (IdleFirstBusyLimit; the HTTP proxy keeps
// the idle connections, http/proxy/idle.go), else a new connection goes to
// the least busy node. Perlbal picked that node at random: with idle
// connections reused first, a random pick would leave a node added later
// without traffic for as long as the others have idle connections.
const MethodIdleFirst = "idle_first"

func idleFirstMethod() Method {
	return Method{Name: MethodIdleFirst, ReuseFirst: true, New: func() Selector { return IdleFirst{} }}
}

// IdleFirst picks the node for a new connection as LeastConn does; the
// preference for idle connections is the caller's (Pool.ReuseFirst).
type IdleFirst struct{ LeastConn }

var _ Selector = IdleFirst{}

// IdleFirstBusyLimit returns how many requests in flight a node may have
// for idle_first to reuse an idle connection to it, when the least busy
// node has least: a quarter more (one at least), so that a node added or
// come back, idle connections or not, gets its share.
func IdleFirstBusyLimit(least int64) int64 { return least + max(1, least/4) }
