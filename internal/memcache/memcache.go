// Package memcache is a small memcached client for plb's shared state
// (Throttle's memcached_servers): get and set over memcached's text
// protocol, one connection per call in flight, kept for the next, each
// call bounded by a timeout. A key goes to one server of the list, by a
// hash of the key, as Perlbal's Cache::Memcached::Async did.
package memcache

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// Limits of the protocol and of what plb stores.
const (
	// MaxKey is memcached's longest key.
	MaxKey = 250
	// MaxValue bounds a value read back: plb stores a few numbers.
	MaxValue = 1024
	// maxIdle bounds the connections kept per server.
	maxIdle = 16
)

// ErrMiss is a get of a key memcached does not have.
var ErrMiss = errors.New("memcache: miss")

// ErrProtocol is an answer that is not memcached's.
var ErrProtocol = errors.New("memcache: malformed answer")

// Client talks to a list of servers ("host:port"). Safe from any
// goroutine.
type Client struct {
	servers []string
	timeout time.Duration
	mu      sync.Mutex
	idle    map[string][]*conn
}

type conn struct {
	nc net.Conn
	r  *bufio.Reader
}

// New returns a client of servers, each call bounded by timeout.
func New(servers []string, timeout time.Duration) *Client {
	return &Client{servers: servers, timeout: timeout, idle: map[string][]*conn{}}
}

// ValidKey reports whether k may be a key: 1 to MaxKey bytes, none a
// space or control character.
func ValidKey(k string) bool {
	if k == "" || len(k) > MaxKey {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] <= ' ' || k[i] == 0x7f {
			return false
		}
	}
	return true
}

// server is the server of key k.
func (c *Client) server(k string) string {
	return c.servers[crc32.ChecksumIEEE([]byte(k))%uint32(len(c.servers))]
}

// get takes an idle connection to addr, or dials one.
func (c *Client) get(addr string) (*conn, error) {
	c.mu.Lock()
	if l := c.idle[addr]; len(l) > 0 {
		cn := l[len(l)-1]
		c.idle[addr] = l[:len(l)-1]
		c.mu.Unlock()
		return cn, nil
	}
	c.mu.Unlock()
	nc, err := net.DialTimeout("tcp", addr, c.timeout)
	if err != nil {
		return nil, err
	}
	return &conn{nc: nc, r: bufio.NewReaderSize(nc, 4096)}, nil
}

// put keeps cn for the next call, or closes it.
func (c *Client) put(addr string, cn *conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.idle[addr]) < maxIdle {
		c.idle[addr] = append(c.idle[addr], cn)
		return
	}
	cn.nc.Close()
}

// Close closes the idle connections.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for a, l := range c.idle {
		for _, cn := range l {
			cn.nc.Close()
		}
		delete(c.idle, a)
	}
}

// do runs one exchange on a connection to k's server: a failed one is
// closed, a clean one kept.
func (c *Client) do(k string, fn func(cn *conn) error) error {
	if !ValidKey(k) {
		return fmt.Errorf("memcache: bad key %q", k)
	}
	addr := c.server(k)
	cn, err := c.get(addr)
	if err != nil {
		return err
	}
	cn.nc.SetDeadline(time.Now().Add(c.timeout))
	err = fn(cn)
	if err != nil && !errors.Is(err, ErrMiss) {
		cn.nc.Close()
		return err
	}
	c.put(addr, cn)
	return err
}

// Get returns k's value, or ErrMiss.
func (c *Client) Get(k string) ([]byte, error) {
	var v []byte
	err := c.do(k, func(cn *conn) error {
		if _, err := fmt.Fprintf(cn.nc, "get %s\r\n", k); err != nil {
			return err
		}
		var err error
		v, err = readGet(cn.r, k)
		return err
	})
	return v, err
}

// maxTTL is memcached's longest relative expiry: a larger number is read
// as a Unix time, long past.
const maxTTL = 30 * 24 * time.Hour

// Set stores v under k for ttl (at least a second, at most 30 days).
func (c *Client) Set(k string, v []byte, ttl time.Duration) error {
	return c.do(k, func(cn *conn) error {
		secs := min(max(int64((ttl+time.Second-1)/time.Second), 1), int64(maxTTL/time.Second))
		if _, err := fmt.Fprintf(cn.nc, "set %s 0 %d %d\r\n%s\r\n", k, secs, len(v), v); err != nil {
			return err
		}
		line, err := readLine(cn.r)
		if err != nil {
			return err
		}
		if string(line) != "STORED" {
			return fmt.Errorf("memcache: set %s: %q", k, line)
		}
		return nil
	})
}

// readLine reads one CRLF-ended line, at most 512 bytes.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, ErrProtocol
		}
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' || len(line) > 512 {
		return nil, ErrProtocol
	}
	return line[:len(line)-2], nil
}

// readGet reads the answer to "get k": "END" (a miss), or one VALUE line,
// its data, and "END".
func readGet(r *bufio.Reader, k string) ([]byte, error) {
	line, err := readLine(r)
	if err != nil {
		return nil, err
	}
	if string(line) == "END" {
		return nil, ErrMiss
	}
	n, ok := ParseValueLine(line, k)
	if !ok {
		return nil, ErrProtocol
	}
	data := make([]byte, n+2)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, err
	}
	if data[n] != '\r' || data[n+1] != '\n' {
		return nil, ErrProtocol
	}
	end, err := readLine(r)
	if err != nil {
		return nil, err
	}
	if string(end) != "END" {
		return nil, ErrProtocol
	}
	return data[:n], nil
}

// ParseValueLine reads "VALUE <key> <flags> <bytes>" (a VALUE line less
// its CRLF) for key k, and returns the data's length, at most MaxValue.
// It allocates nothing.
func ParseValueLine(line []byte, k string) (int, bool) {
	rest, ok := bytes.CutPrefix(line, []byte("VALUE "))
	if !ok {
		return 0, false
	}
	rest, ok = bytes.CutPrefix(rest, []byte(k))
	if !ok || len(rest) == 0 || rest[0] != ' ' {
		return 0, false
	}
	flags, size, ok := bytes.Cut(rest[1:], []byte{' '})
	if !ok || !digits(flags) || !digits(size) || len(size) > 4 {
		return 0, false
	}
	n, err := strconv.Atoi(string(size)) // no allocation: the compiler converts in place
	if err != nil || n > MaxValue {
		return 0, false
	}
	return n, true
}

// digits reports whether b is one or more ASCII digits.
func digits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
