package builtin

import (
	"math"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/http/plugin"
)

// lazyCDN is Perlbal's LazyCDN on a web server: a GET or HEAD whose file
// is missing, or whose URI carries v=<unix time> newer than the file (or,
// for a concatenated GET, than the newest of its files), is handed to
// SET fallback_service (say a proxy to the origin that fetches and stores
// the new file) instead of being answered from the docroot. With
// SET fallback_udp_ping_addr = a.b.c.d:port, the URI goes in a UDP
// datagram to that address first. A fallback_service that does not exist
// leaves the web server to answer.
//
// The sockets of the pings live in the plugin, one per address, for the
// life of the registry; a datagram is written without waiting (one the
// socket cannot take at once is dropped).
type lazyCDN struct {
	mu    sync.Mutex
	pings map[string]*net.UDPConn // by fallback_udp_ping_addr
}

func newLazyCDN() *lazyCDN { return &lazyCDN{pings: map[string]*net.UDPConn{}} }

func (*lazyCDN) Describe() config.Plugin { return describe("LazyCDN") }

func (l *lazyCDN) Register(svc *config.Service) (any, error) {
	fb := svc.Extra["fallback_service"]
	if fb == "" {
		return nil, nil
	}
	return &lazyFallback{plugin: l, service: fb, ping: svc.Extra["fallback_udp_ping_addr"]}, nil
}

type lazyFallback struct {
	plugin  *lazyCDN
	service string
	ping    string
}

// StaticFileMissing hands a request for a missing file on.
func (f *lazyFallback) StaticFileMissing(r *plugin.Request) bool { return f.fallBack(r) }

// StaticPreSend hands a request on when its v= is newer than the file.
func (f *lazyFallback) StaticPreSend(r *plugin.Request, mtime time.Time) bool {
	v, ok := uriVersion(r.URI())
	if !ok || v == 0 || v <= mtime.Unix() {
		return false
	}
	return f.fallBack(r)
}

func (f *lazyFallback) fallBack(r *plugin.Request) bool {
	if r.Exists != nil && !r.Exists(f.service) {
		return false
	}
	if f.ping != "" {
		f.plugin.send(f.ping, r.URI())
	}
	r.SetTarget(f.service)
	return true
}

// uriVersion finds Perlbal's \bv=(\d+)\b in uri: digits after "v=" that
// starts a word and ending one. A number beyond int64 is MaxInt64.
func uriVersion(uri []byte) (int64, bool) {
	for i := 0; i+2 < len(uri); i++ {
		if uri[i] != 'v' || uri[i+1] != '=' || i > 0 && isWordByte(uri[i-1]) {
			continue
		}
		j := i + 2
		var v int64
		for j < len(uri) && '0' <= uri[j] && uri[j] <= '9' {
			d := int64(uri[j] - '0')
			if v > (math.MaxInt64-d)/10 {
				v = math.MaxInt64
			} else {
				v = v*10 + d
			}
			j++
		}
		if j == i+2 || j < len(uri) && isWordByte(uri[j]) {
			continue
		}
		return v, true
	}
	return 0, false
}

func isWordByte(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_'
}

// send writes uri to the UDP address addr, without blocking; errors are
// dropped (as Perlbal's, whose socket warned once when it could not be
// made).
func (l *lazyCDN) send(addr string, uri []byte) {
	c := l.socket(addr)
	if c == nil {
		return
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	rc.Write(func(fd uintptr) bool {
		syscall.Write(int(fd), uri) // EAGAIN: dropped rather than waited for
		return true
	})
}

// socket returns the socket for addr, made on first use (a UDP connect
// does no I/O).
func (l *lazyCDN) socket(addr string) *net.UDPConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c, ok := l.pings[addr]; ok {
		return c
	}
	var c *net.UDPConn
	if ra, err := net.ResolveUDPAddr("udp4", addr); err == nil {
		if c, err = net.DialUDP("udp4", nil, ra); err == nil {
			if rc, err := c.SyscallConn(); err == nil {
				rc.Control(func(fd uintptr) { // Perlbal's Broadcast => 1
					syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
				})
			}
		}
	}
	l.pings[addr] = c // nil too: not tried again
	return c
}
