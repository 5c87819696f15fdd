package static

import (
	"bytes"
	"time"
)

// FileCache keeps the contents of small files an event loop served, so that
// serving one again costs a single statx(2), to check that its name still
// leads to the same unchanged file (inode, size, modification and change
// times to the nanosecond), instead of an open, fstat, read and close.
//
// Only files read whole through the openat2 path are kept, and only once
// they have not changed for a few seconds: on a file system whose clock
// ticks coarsely, a file rewritten twice within one tick keeps its times,
// and would otherwise be served stale.
//
// A FileCache is owned by one loop and not safe for concurrent use; the
// zero value is ready. Pass it in Request.Cache. It empties itself when
// used with another Server (new settings).
type FileCache struct {
	srv     *Server
	entries map[string]*cachedFile
	bytes   int
}

type cachedFile struct {
	st   fileStat
	data []byte // never modified once cached: responses point into it
}

const (
	// cacheMaxEntries and cacheMaxBytes bound a loop's cache.
	cacheMaxEntries = 256
	cacheMaxBytes   = 2 << 20
	// cacheSettle is how long a file must have been left alone before it
	// is cached.
	cacheSettle = 2 * time.Second
)

// Len returns the number of files cached.
func (c *FileCache) Len() int { return len(c.entries) }

func (c *FileCache) use(s *Server) {
	if c.srv != s {
		*c = FileCache{srv: s}
	}
}

// lookup returns the cached file rel if its name, resolved from the
// docroot of e, still leads to it; nil otherwise (and drops a stale one).
// It does not allocate.
func (c *FileCache) lookup(s *Server, e *rootEntry, rel []byte) *cachedFile {
	c.use(s)
	f := c.entries[string(rel)]
	if f == nil || len(rel) >= pathBufSize || e.dir == nil || !e.dir.acquire() {
		return nil
	}
	var nbuf [pathBufSize]byte
	name := append(append(nbuf[:0], rel...), 0)
	id, kind, ok := statBeneath(e.dir.fd, name)
	e.dir.release()
	if !ok || kind != kindRegular || id != f.st.id {
		c.bytes -= len(f.data)
		delete(c.entries, string(rel))
		return nil
	}
	return f
}

// add caches data, the whole content of the regular file rel described by
// st, read at now.
func (c *FileCache) add(s *Server, rel []byte, st fileStat, data []byte, now time.Time) {
	c.use(s)
	if st.id == (fileID{}) || st.kind != kindRegular || st.size != int64(len(data)) ||
		len(data) > cacheMaxBytes/8 || now.UnixNano()-max(st.id.mtime, st.id.ctime) < int64(cacheSettle) {
		return
	}
	if old := c.entries[string(rel)]; old != nil {
		c.bytes -= len(old.data)
		delete(c.entries, string(rel))
	}
	for k, v := range c.entries {
		// Map order is random: a random victim, which keeps no
		// bookkeeping on the hot path.
		if len(c.entries) < cacheMaxEntries && c.bytes+len(data) <= cacheMaxBytes {
			break
		}
		c.bytes -= len(v.data)
		delete(c.entries, k)
	}
	if c.entries == nil {
		c.entries = make(map[string]*cachedFile)
	}
	c.entries[string(rel)] = &cachedFile{st: st, data: bytes.Clone(data)}
	c.bytes += len(data)
}

// serveCached answers from a cached file, as serveFile would from the
// file itself; Body points into the cache.
func (s *Server) serveCached(b *builder, r *Request, f *cachedFile, name []byte) ([]byte, Response) {
	code, off, n := s.fileHead(b, r, f.st, name)
	head := b.end()
	resp := Response{Status: code}
	if (code == 200 || code == 206) && !b.head && n > 0 {
		resp.Body = f.data[off : off+n : off+n]
	}
	return head, resp
}
