package server

// Helpers for the live-operation tests: console-like changes, a bounded
// load generator, and request counting per backend.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/internal/testhttp"
)

// exec runs Perlbal configuration commands on a clone of the live model and
// applies it: exactly what a management connection does.
func (ts *testServer) exec(lines ...string) {
	ts.t.Helper()
	cfg := ts.Config().Clone()
	o := ts.ConfigOptions()
	o.Running = true
	in := config.NewInterp(cfg, o)
	for _, l := range lines {
		if _, err := in.Exec(l); err != nil {
			ts.t.Fatalf("%s: %v", l, err)
		}
	}
	if err := ts.Apply(cfg); err != nil {
		ts.t.Fatalf("apply %q: %v", lines, err)
	}
}

// served counts the requests a backend received, health checks aside.
func served(b *testhttp.Backend) int {
	n := 0
	for _, r := range b.Requests() {
		if r.URI != "/health" && r.Method != "OPTIONS" {
			n++
		}
	}
	return n
}

// waitServed waits until b has served more than n requests.
func waitServed(t *testing.T, b *testhttp.Backend, n int) {
	t.Helper()
	testhttp.WaitFor(t, fmt.Sprintf("backend %s to serve more than %d requests", b.Addr, n), func() bool { return served(b) > n })
}

// expectQuiet checks that b gets no new request: once the requests in
// flight when the change was applied are done (settle), the count must not
// move for a while.
func expectQuiet(t *testing.T, b *testhttp.Backend, what string) {
	t.Helper()
	time.Sleep(200 * time.Millisecond) // requests in flight finish
	n := served(b)
	time.Sleep(400 * time.Millisecond)
	if m := served(b); m != n {
		t.Fatalf("%s: backend %s got %d new requests", what, b.Addr, m-n)
	}
}

// loadGen is a bounded HTTP load against one address: keep-alive clients
// (one connection each, reconnecting only after a failure) and clients
// that open a connection per request (to see refused connections). Every
// request must get a 200 whose body starts with one of the backend names.
type loadGen struct {
	addr     string
	stop     chan struct{}
	deadline time.Time
	wg       sync.WaitGroup
	ok       atomic.Int64
	failed   atomic.Int64
	mu       sync.Mutex
	errs     []string
}

// loadMaxPerClient bounds the requests of one load client.
const loadMaxPerClient = 200000

// startLoad starts keepAlive + fresh clients for at most limit.
func startLoad(t *testing.T, addr string, keepAlive, fresh int, limit time.Duration) *loadGen {
	g := &loadGen{addr: addr, stop: make(chan struct{}), deadline: time.Now().Add(limit)}
	for i := 0; i < keepAlive+fresh; i++ {
		g.wg.Add(1)
		go g.client(i, i >= keepAlive)
	}
	t.Cleanup(func() { g.finish() })
	return g
}

func (g *loadGen) fail(format string, a ...any) {
	g.failed.Add(1)
	g.mu.Lock()
	if len(g.errs) < 10 {
		g.errs = append(g.errs, fmt.Sprintf(format, a...))
	}
	g.mu.Unlock()
}

func (g *loadGen) running() bool {
	select {
	case <-g.stop:
		return false
	default:
		return time.Now().Before(g.deadline)
	}
}

func (g *loadGen) client(id int, fresh bool) {
	defer g.wg.Done()
	var c net.Conn
	var br *bufio.Reader
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	for i := 0; i < loadMaxPerClient && g.running(); i++ {
		if c == nil {
			var err error
			c, err = net.DialTimeout("tcp", g.addr, 5*time.Second)
			if err != nil {
				g.fail("client %d: connect: %v", id, err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			br = bufio.NewReader(c)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		req := fmt.Sprintf("GET /c%d/%d HTTP/1.1\r\nHost: load\r\n", id, i)
		if fresh {
			req += "Connection: close\r\n"
		}
		err := func() error {
			if _, err := io.WriteString(c, req+"\r\n"); err != nil {
				return err
			}
			resp, err := nethttp.ReadResponse(br, nil)
			if err != nil {
				return err
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			if resp.StatusCode != 200 || !strings.Contains(string(body), fmt.Sprintf("/c%d/%d", id, i)) {
				return fmt.Errorf("%s %q", resp.Status, body)
			}
			if resp.Close && !fresh {
				return fmt.Errorf("keep-alive connection closed by the proxy")
			}
			return nil
		}()
		if err != nil {
			g.fail("client %d request %d: %v", id, i, err)
		} else {
			g.ok.Add(1)
		}
		if fresh || err != nil {
			c.Close()
			c = nil
		}
	}
}

// finish stops the load and returns the counts. Idempotent.
func (g *loadGen) finish() (ok, failed int64, errs []string) {
	select {
	case <-g.stop:
	default:
		close(g.stop)
	}
	g.wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ok.Load(), g.failed.Load(), g.errs
}

// check stops the load and fails the test on any failed request.
func (g *loadGen) check(t *testing.T) {
	t.Helper()
	ok, failed, errs := g.finish()
	t.Logf("load: %d requests ok, %d failed", ok, failed)
	if failed > 0 {
		t.Fatalf("%d failed requests (of %d), first: %s", failed, ok+failed, strings.Join(errs, "; "))
	}
	if ok == 0 {
		t.Fatal("no request went through")
	}
}
