package manage

import "fmt"

// CacheStatus are the figures of a reverse proxy's reproxy cache
// (X-REPROXY-CACHE-FOR with reproxy_cache_maxsize).
type CacheStatus struct {
	Size, Max      int   // entries held, and the bound
	Hits, Requests int64 // requests answered from it, and looked up in it
}

// ReproxyStater is the part of a Runtime that knows the reproxy fetch
// connections, for reproxy_state.
type ReproxyStater interface {
	// ReproxyState returns Perlbal's "connecting h:p 1", "bored h:p N",
	// "clients_queued h:p N" and "backends h:p N" lines.
	ReproxyState() []string
}

// showReproxyCache prints show service's cache lines, in Perlbal's format.
func (mc *console) showReproxyCache(c *CacheStatus) {
	if c == nil {
		return
	}
	mc.printf("    cache size: %d/%d (%s)", c.Size, c.Max, percent(int64(c.Size), int64(c.Max)))
	mc.printf("    cache hits: %d", c.Hits)
	mc.printf("cache hit rate: %s", percent(c.Hits, c.Requests))
}

// percent is n/of as Perlbal prints it ("12.50%"; "0.00%" when of is 0).
func percent(n, of int64) string {
	if of <= 0 {
		return "0.00%"
	}
	return fmt.Sprintf("%.2f%%", float64(n)*100/float64(of))
}

// reproxyConns prints reproxy_state's lines about connections.
func (mc *console) reproxyConns() {
	if rs, ok := mc.svc.rt.(ReproxyStater); ok {
		for _, l := range rs.ReproxyState() {
			mc.println(l)
		}
	}
}
