package proxy

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/plb/plb/http"
)

// reproxyCache is a service's X-REPROXY-CACHE-FOR cache (Perlbal's
// reproxy_cache): "Host|URI" → when it expires, the response headers the
// backend named, and the URLs to fetch. It is a bounded LRU shared by the
// service's loops, so it takes a lock; a service without
// reproxy_cache_maxsize never touches it. Safe from any goroutine.
type reproxyCache struct {
	mu      sync.Mutex
	max     int
	entries map[string]*cacheEntry
	head    cacheEntry // sentinel of the recency list: head.next is the newest

	hits, requests atomic.Int64
}

// cacheEntry is one cached answer. Its fields other than the list links
// never change once stored, so a caller may read them without the lock.
type cacheEntry struct {
	key     string
	expires time.Time
	// headers are the named headers, copies.
	headers []http.Header
	// lastMod is the cached Last-Modified value (nil: none was named).
	lastMod []byte
	// urls is the X-REPROXY-URL value.
	urls []byte

	prev, next *cacheEntry
}

// CacheStats are a reproxy cache's figures, for show service.
type CacheStats struct {
	Size, Max      int
	Hits, Requests int64
}

// resize sets the bound (0 empties the cache and turns it off).
func (rc *reproxyCache) resize(max int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.entries == nil {
		rc.entries = make(map[string]*cacheEntry)
		rc.head.prev, rc.head.next = &rc.head, &rc.head
	}
	rc.max = max
	for len(rc.entries) > max {
		rc.remove(rc.head.prev)
	}
}

// get returns the live entry for key (nil: none, or expired), counting
// the request and the hit.
func (rc *reproxyCache) get(key []byte, now time.Time) *cacheEntry {
	rc.requests.Add(1)
	rc.mu.Lock()
	e := rc.entries[string(key)] // no allocation for the lookup
	if e != nil && now.After(e.expires) {
		rc.remove(e)
		e = nil
	}
	if e != nil {
		rc.unlink(e)
		rc.pushFront(e)
	}
	rc.mu.Unlock()
	if e != nil {
		rc.hits.Add(1)
	}
	return e
}

// set stores e under e.key, replacing an older entry and evicting the
// least recently used one beyond the bound.
func (rc *reproxyCache) set(e *cacheEntry) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.max <= 0 {
		return
	}
	if old := rc.entries[e.key]; old != nil {
		rc.remove(old)
	}
	rc.entries[e.key] = e
	rc.pushFront(e)
	for len(rc.entries) > rc.max {
		rc.remove(rc.head.prev)
	}
}

func (rc *reproxyCache) pushFront(e *cacheEntry) {
	e.prev, e.next = &rc.head, rc.head.next
	rc.head.next.prev = e
	rc.head.next = e
}

func (rc *reproxyCache) unlink(e *cacheEntry) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
}

func (rc *reproxyCache) remove(e *cacheEntry) {
	rc.unlink(e)
	delete(rc.entries, e.key)
}

// stats returns the cache's figures.
func (rc *reproxyCache) stats() CacheStats {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return CacheStats{Size: len(rc.entries), Max: rc.max, Hits: rc.hits.Load(), Requests: rc.requests.Load()}
}

// ReproxyCacheStats returns the figures of the service's reproxy cache;
// ok is false when the service has none (reproxy_cache_maxsize 0). Safe
// from any goroutine.
func (s *Service) ReproxyCacheStats() (CacheStats, bool) {
	st := s.Settings()
	if st.Svc.ReproxyCacheMaxsize <= 0 {
		return CacheStats{}, false
	}
	s.reproxyCache(st)
	return s.rp.cache.stats(), true
}

// reproxyCache returns the service's cache sized as st says, or nil when
// st has no reproxy cache. Safe from any goroutine.
func (s *Service) reproxyCache(st *Settings) *reproxyCache {
	max := st.Svc.ReproxyCacheMaxsize
	if max <= 0 {
		if s.rp.cacheMax.Load() != 0 {
			s.rp.cacheMax.Store(0)
			s.rp.cache.resize(0)
		}
		return nil
	}
	if s.rp.cacheMax.Load() != int64(max) {
		s.rp.cacheMax.Store(int64(max))
		s.rp.cache.resize(max)
	}
	return &s.rp.cache
}
