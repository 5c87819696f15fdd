package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/internal/testhttp"
)

// waitDone waits for Run to return.
func (ts *testServer) waitDone(within time.Duration) {
	ts.t.Helper()
	select {
	case <-ts.done:
	case <-time.After(within):
		ts.t.Fatalf("Run did not return within %v", within)
	}
	if ts.runErr != nil {
		ts.t.Fatal(ts.runErr)
	}
}

// expectRunning checks that Run has not returned.
func (ts *testServer) expectRunning(what string) {
	ts.t.Helper()
	select {
	case <-ts.done:
		ts.t.Fatalf("Run returned %s", what)
	default:
	}
}

// TestShutdownGracefulConsole: "shutdown graceful" on the management port
// answers OK, closes idle keep-alive clients and the listeners, lets a slow
// proxied download and a slow web server download finish whole, then Run
// returns.
func TestShutdownGracefulConsole(t *testing.T) {
	const size = 4 << 20
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	be := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		if req.URL.Path != "/slow" {
			testhttp.Respond(c, 200, "", "ok")
			return true
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size)
		c.Write(bytes.Repeat([]byte("a"), size/2))
		started <- struct{}{}
		<-release
		c.Write(bytes.Repeat([]byte("b"), size/2))
		return true
	})
	docroot := t.TempDir()
	file := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	if err := os.WriteFile(filepath.Join(docroot, "big.bin"), file, 0o644); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, testhttp.ProxyTOML([]string{be.Addr}, "", testhttp.StdProxy)+fmt.Sprintf(`
[service.docs]
role = "web_server"
listen = "127.0.0.1:0"
docroot = %q
persist_client = true

[service.mgmt]
role = "management"
listen = "127.0.0.1:0"
`, docroot))
	addr, docs := ts.addrOf("proxy"), ts.addrOf("docs")

	idle := testhttp.Dial(t, addr)
	if resp, _ := idle.Do("GET /x HTTP/1.1\r\nHost: t\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	slow := testhttp.Dial(t, addr)
	slow.Send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
	<-started
	// A slow reader of a big static file: it reads the head and a little.
	web := testhttp.Dial(t, docs)
	web.Send("GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
	webResp, err := nethttp.ReadResponse(web.BR, nil)
	if err != nil || webResp.StatusCode != 200 {
		t.Fatalf("web server: %v %v", webResp, err)
	}
	var first [1000]byte
	if _, err := io.ReadFull(webResp.Body, first[:]); err != nil {
		t.Fatal(err)
	}

	mc := testhttp.Dial(t, ts.addrOf("mgmt"))
	mc.Send("shutdown graceful\r\n")
	if line, err := mc.BR.ReadString('\n'); err != nil || strings.TrimSpace(line) != "OK" {
		t.Fatalf("shutdown graceful: %q %v", line, err)
	}
	idle.ExpectClosed()
	idle.NC.Close() // else the server lingers for our FIN
	mc.NC.Close()
	testhttp.WaitFor(t, "the listeners to close", func() bool {
		for _, a := range []string{addr, docs} {
			if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
				c.Close()
				return false
			}
		}
		return true
	})
	time.Sleep(100 * time.Millisecond)
	ts.expectRunning("with downloads in flight")

	rest, err := io.ReadAll(webResp.Body)
	if err != nil || !bytes.Equal(append(first[:], rest...), file) {
		t.Fatalf("web server download: %d of %d bytes, %v", len(first)+len(rest), size, err)
	}
	close(release)
	resp, body := slow.Read("GET")
	if resp.StatusCode != 200 || len(body) != size || body[size-1] != 'b' {
		t.Fatalf("proxied download: %d, %d of %d bytes", resp.StatusCode, len(body), size)
	}
	slow.ExpectClosed()
	web.ExpectClosed()
	slow.NC.Close()
	web.NC.Close()
	ts.waitDone(5 * time.Second)
}

// TestShutdownCutShort: a stop at once ends a drain that waits for a
// backend that never answers; so does the drain's time limit.
func TestShutdownCutShort(t *testing.T) {
	hang := testhttp.NewBackend(t, func(b *testhttp.Backend, c net.Conn, id int64) {
		io.Copy(io.Discard, c)
	})
	for _, byLimit := range []bool{false, true} {
		t.Run(map[bool]string{false: "shutdown", true: "limit"}[byLimit], func(t *testing.T) {
			o := Options{}
			if byLimit {
				// Long enough that a loaded machine still finds it
				// running 100 ms after the stop began (it flaked at 300 ms).
				o.DrainTimeout = time.Second
			}
			ts := startServerOpts(t, testhttp.ProxyTOML([]string{hang.Addr}, "", testhttp.StdProxy), o)
			c := testhttp.Dial(t, ts.addrOf("proxy"))
			c.Send("GET /hang HTTP/1.1\r\nHost: t\r\n\r\n")
			hang.WaitOpen(t, 1)
			start := time.Now()
			ts.Shutdown(true)
			time.Sleep(100 * time.Millisecond)
			ts.expectRunning("with a request in flight")
			if !byLimit {
				ts.Shutdown(false)
			}
			ts.waitDone(5 * time.Second)
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("stop took %v", d)
			}
			c.NC.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := bufio.NewReader(c.NC).ReadByte(); err == nil {
				t.Fatal("client connection still open")
			}
		})
	}
}

// TestApplyRefusedWhileDraining: a reload or console change during a
// graceful stop does not reopen the closed listeners.
func TestApplyRefusedWhileDraining(t *testing.T) {
	hang := testhttp.NewBackend(t, func(b *testhttp.Backend, c net.Conn, id int64) { io.Copy(io.Discard, c) })
	ts := startServerOpts(t, testhttp.ProxyTOML([]string{hang.Addr}, "", testhttp.StdProxy), Options{DrainTimeout: 2 * time.Second})
	c := testhttp.Dial(t, ts.addrOf("proxy"))
	c.Send("GET /hang HTTP/1.1\r\nHost: t\r\n\r\n")
	hang.WaitOpen(t, 1)
	cfg := ts.Config()
	ts.Shutdown(true)
	testhttp.WaitFor(t, "the drain to start", func() bool { return ts.Addr("proxy") == nil })
	if err := ts.Apply(cfg.Clone()); err == nil {
		t.Fatal("Apply accepted during the drain")
	}
	if ts.Addr("proxy") != nil {
		t.Fatal("listener reopened")
	}
	ts.Shutdown(false)
	ts.waitDone(5 * time.Second)
}

// TestShutdownGrace: with shutdown_grace, a graceful stop first goes on
// serving with /healthz at 503 (so a VRRP peer or an upstream balancer
// moves traffic away), then drains; a stop at once cuts the grace short.
func TestShutdownGrace(t *testing.T) {
	a := testhttp.OKBackend(t, "a")
	ts := startServer(t, strings.Replace(consoleTOML([]string{a.Addr}, ""), "[global]\n", "[global]\nshutdown_grace = 1\n", 1))
	mgmt, addr := ts.addrOf("mgmt"), ts.addrOf("proxy")
	healthz := func() string {
		c, err := net.DialTimeout("tcp", mgmt, testTimeout)
		if err != nil {
			return "refused"
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(testTimeout))
		io.WriteString(c, "GET /healthz HTTP/1.0\r\n\r\n")
		line, _ := bufio.NewReader(c).ReadString('\n')
		return strings.TrimSpace(line)
	}
	if got := healthz(); got != "HTTP/1.0 200 OK" {
		t.Fatalf("serving: %q", got)
	}
	start := time.Now()
	ts.Shutdown(true)
	testhttp.WaitFor(t, "healthz 503", func() bool { return healthz() == "HTTP/1.0 503 Service Unavailable" })
	if got := testhttp.MustGet(t, addr, "/during"); got != "a GET /during" {
		t.Fatalf("during the grace: %q", got)
	}
	ts.expectRunning("during the grace")
	ts.waitDone(testTimeout)
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("stopped after %v, before the grace", d)
	}

	// A stop at once during the grace: Run returns at once.
	ts2 := startServer(t, strings.Replace(consoleTOML([]string{a.Addr}, ""), "[global]\n", "[global]\nshutdown_grace = 60\n", 1))
	ts2.Shutdown(true)
	testhttp.WaitFor(t, "the grace", func() bool { return ts2.Draining() })
	start = time.Now()
	ts2.Shutdown(false)
	ts2.waitDone(testTimeout)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop at once took %v", d)
	}
}
