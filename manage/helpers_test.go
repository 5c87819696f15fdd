package manage

import (
	"bufio"
	"maps"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
	"github.com/plb/plb/pool"
)

// fakeRT is a Runtime with a model, real pools and canned figures.
type fakeRT struct {
	mu        sync.Mutex
	cfg       *config.Config
	pools     map[string]*pool.Pool
	status    map[string]ServiceStatus
	socks     func() []Sock
	mime      map[string]string
	shutdowns []bool
	stopAfter time.Duration
	start     time.Time
	applyErr  error
	draining  bool
	sources   map[string]SourceStatus // the pools' node sources (PoolSource)
}

func newFakeRT(t *testing.T, perlbal string) *fakeRT {
	t.Helper()
	cfg, err := config.Parse("test.conf", []byte(perlbal), nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	rt := &fakeRT{
		pools:  map[string]*pool.Pool{},
		status: map[string]ServiceStatus{},
		socks:  func() []Sock { return nil },
		mime:   map[string]string{"html": "text/html", "txt": "text/plain"},
		start:  time.Now().Add(-90 * time.Second),
	}
	if err := rt.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	return rt
}

func (rt *fakeRT) Config() *config.Config {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.cfg
}

func (rt *fakeRT) Apply(c *config.Config) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.applyErr != nil {
		return rt.applyErr
	}
	for _, pc := range c.Pools {
		p := rt.pools[pc.Name]
		if p == nil {
			p, _ = pool.New(pc.Name, pc.BalanceMethod)
			rt.pools[pc.Name] = p
		}
		p.SetNodes(pc.Nodes)
	}
	rt.cfg = c
	return nil
}

func (rt *fakeRT) ConfigOptions() config.Options { return config.Options{} }

func (rt *fakeRT) Pool(name string) *pool.Pool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.pools[name]
}

func (rt *fakeRT) ServiceStatus(name string) ServiceStatus {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.status[name]
}

func (rt *fakeRT) setStatus(name string, st ServiceStatus) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.status[name] = st
}

func (rt *fakeRT) Requests() int64 { return 7 }

func (rt *fakeRT) StartTime() time.Time { return rt.start }
func (rt *fakeRT) Now() time.Time       { return time.Now() }

func (rt *fakeRT) Socks() []Sock { return rt.socks() }

func (rt *fakeRT) MIME() map[string]string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return maps.Clone(rt.mime)
}

func (rt *fakeRT) SetMIME(m map[string]string) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.mime = m
}

func (rt *fakeRT) Shutdown(graceful bool) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.shutdowns = append(rt.shutdowns, graceful)
}

func (rt *fakeRT) Draining() bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.draining
}

func (rt *fakeRT) PoolSource(name string) (SourceStatus, bool) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	st, ok := rt.sources[name]
	return st, ok
}

func (rt *fakeRT) StopAfter(d time.Duration) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.stopAfter = d
}

// startConsole serves svc on an engine of its own on 127.0.0.1 and returns
// the address.
func startConsole(t *testing.T, svc *Service) string {
	t.Helper()
	eng, err := engine.New(engine.Config{Loops: 2})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := eng.Listen(engine.ListenConfig{Addr: "127.0.0.1:0", OnAccept: svc.Accept})
	if err != nil {
		t.Fatal(err)
	}
	eng.Start()
	t.Cleanup(eng.Stop)
	return ln.Addr().String()
}

// client is a console connection.
type client struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialConsole(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &client{t: t, c: c, r: bufio.NewReader(c)}
}

// sentinel is a command whose one-line answer ends every reply read.
const (
	sentinel      = "uptime sentinel"
	sentinelReply = "ERROR: The 'uptime' command takes no arguments"
)

// do sends one command and returns its whole reply, lines joined by "\n"
// (each line must end in CRLF).
func (cl *client) do(cmd string) string {
	cl.t.Helper()
	if _, err := cl.c.Write([]byte(cmd + "\r\n" + sentinel + "\r\n")); err != nil {
		cl.t.Fatal(err)
	}
	var lines []string
	for {
		line, err := cl.r.ReadString('\n')
		if err != nil {
			cl.t.Fatalf("%s: reading reply: %v (so far %q)", cmd, err, lines)
		}
		if !strings.HasSuffix(line, "\r\n") {
			cl.t.Fatalf("%s: line without CRLF: %q", cmd, line)
		}
		line = strings.TrimSuffix(line, "\r\n")
		if line == sentinelReply {
			return strings.Join(lines, "\n")
		}
		lines = append(lines, line)
	}
}
