package server

// The life of a backend connection (issue 11, DESIGN.md "Backend
// connections: the rules"): reuse only after a clean exchange, the node
// before the connection, idle connections sized by the load, verification
// as Perlbal meant it, safe retries, blame for the node's own faults,
// hop-by-hop fields, and a graceful stop that answers what it received.

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	nethttp "net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plb/plb/internal/testhttp"
)

// leak is the body of the response an attacker tries to make a backend
// send unasked: whoever reads it got a response that was not theirs.
const leak = "LEAKED-PAGE Set-Cookie: session=another-users-secret"

// leakResponse is that response, complete and keep-alive.
var leakResponse = fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(leak), leak)

// misbehave writes a response to an attacker's request that leaves bytes
// behind on the connection, in one write or two; it returns false to
// close the connection.
type misbehave func(c net.Conn, br *bufio.Reader, req *nethttp.Request) bool

// dirtyBackend answers /victim* with "victim N" and hands /evil* to m. It
// reads requests with ReadRequest and leaves an unread body where it was,
// as a server that answers before reading would.
func dirtyBackend(t *testing.T, m misbehave) *testhttp.Backend {
	return testhttp.NewRequestBackend(t, func(b *testhttp.Backend, c net.Conn, br *bufio.Reader, req *nethttp.Request, id int64, n int) bool {
		if strings.HasPrefix(req.URL.Path, "/evil") {
			return m(c, br, req)
		}
		io.Copy(io.Discard, req.Body)
		testhttp.Respond(c, 200, "", "victim "+req.URL.Path)
		return true
	})
}

// verifyBackend answers OPTIONS * with optionsReply (then closes when it
// says so) and every other request 200.
func verifyBackend(t *testing.T, optionsReply string) *testhttp.Backend {
	return testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		if req.Method == "OPTIONS" {
			io.WriteString(c, optionsReply)
			return !strings.Contains(optionsReply, "close") && !strings.HasPrefix(optionsReply, "HTTP/1.0")
		}
		testhttp.Respond(c, 200, "", "ok")
		return true
	})
}

// flakyNode is a backend that answers "name METHOD path body"; when
// flaky, it resets the connection on /reset and never answers /hang.
func flakyNode(t *testing.T, name string, flaky bool) *testhttp.Backend {
	return testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		if flaky {
			switch req.URL.Path {
			case "/reset":
				c.(*net.TCPConn).SetLinger(0)
				return false
			case "/hang":
				io.Copy(io.Discard, c)
				return false
			}
		}
		testhttp.Respond(c, 200, "", name+" "+req.Method+" "+req.URL.Path+" "+string(body))
		return true
	})
}

// get502 sends raw on a new connection and returns the status and body.
func get502(t *testing.T, addr, raw string) (int, string) {
	t.Helper()
	c := testhttp.Dial(t, addr)
	defer c.NC.Close()
	resp, body := c.Do(raw)
	return resp.StatusCode, body
}

// keepAliveLoad runs clients keep-alive connections to addr, each sending
// each GETs one after the other, and returns how many failed (an error or
// a status but 200); done counts the good ones as they come.
func keepAliveLoad(addr string, clients, each int, done *atomic.Int64) int64 {
	var failed atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := testhttp.DialQuiet(addr)
			if c == nil {
				failed.Add(int64(each))
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			for j := 0; j < each; j++ {
				io.WriteString(c, "GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
				resp, err := nethttp.ReadResponse(br, nil)
				if err != nil {
					failed.Add(int64(each - j))
					return
				}
				io.Copy(io.Discard, resp.Body)
				if resp.StatusCode != 200 {
					failed.Add(1)
					continue
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	return failed.Load()
}

// TestOneURLDoesNotTakeNodesOut: a client whose URL makes every node reset
// or time out does not take the nodes out: after server_retry such
// failures a node is only suspect, a probe finds it answering, and it
// stays up; everyone else is served throughout.
func TestOneURLDoesNotTakeNodesOut(t *testing.T) {
	a, b := flakyNode(t, "a", true), flakyNode(t, "b", true)
	var logs logBuffer
	ts := startServerOpts(t, testhttp.ProxyTOML([]string{a.Addr, b.Addr}, "server_retry = 3",
		testhttp.ServiceKeys(`backend_timeout = "200ms"`)),
		Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	addr := ts.addrOf("proxy")
	for i := 0; i < 12; i++ {
		path := "/reset"
		if i%3 == 2 {
			path = "/hang"
		}
		code, _ := get502(t, addr, "GET "+path+" HTTP/1.1\r\nHost: t\r\n\r\n")
		if code != 502 && code != 504 {
			t.Fatalf("attack %d: %d", i, code)
		}
		if body := testhttp.MustGet(t, addr, "/page"); !strings.HasSuffix(body, " GET /page ") {
			t.Fatalf("others: %q", body)
		}
	}
	testhttp.WaitFor(t, "the suspicions cleared by a probe", func() bool {
		for _, n := range ts.Pool("web").Nodes() {
			if s, _ := n.Suspect(); s {
				return false
			}
		}
		return true
	})
	for _, n := range ts.Pool("web").Nodes() {
		if n.Down() {
			t.Fatalf("%s down: %s", n.Name, n.LastTransition().Reason)
		}
	}
	if !strings.Contains(logs.String(), `msg="node kept up"`) {
		t.Fatalf("no probe cleared a node:\n%s", logs.String())
	}
}

// TestGracefulStopAnswersReceived: during a graceful stop, responses say
// Connection: close, and a request already received (pipelined behind one
// in flight) is answered before its connection closes.
func TestGracefulStopAnswersReceived(t *testing.T) {
	release := make(chan struct{})
	var arrived atomic.Int64
	be := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		if req.URL.Path == "/slow" {
			arrived.Add(1)
			<-release
		}
		testhttp.Respond(c, 200, "", req.URL.Path)
		return true
	})
	ts := startProxy(t, []string{be.Addr}, "", testhttp.StdProxy)
	addr := ts.addrOf("proxy")
	const n = 8
	conns := make([]*testhttp.Client, n)
	for i := range conns {
		conns[i] = testhttp.Dial(t, addr)
		if i%2 == 0 {
			conns[i].Send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\nGET /after HTTP/1.1\r\nHost: t\r\n\r\n")
		} else {
			conns[i].Send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
		}
	}
	testhttp.WaitFor(t, "every request at the backend", func() bool { return arrived.Load() == n })
	time.Sleep(20 * time.Millisecond) // the pipelined ones read by plb
	ts.Shutdown(true)
	time.Sleep(50 * time.Millisecond)
	close(release)
	for i, c := range conns {
		resp, body := c.Read("GET")
		if resp.StatusCode != 200 || body != "/slow" {
			t.Fatalf("conn %d: %d %q", i, resp.StatusCode, body)
		}
		if i%2 == 1 {
			if !resp.Close {
				t.Fatalf("conn %d: a response during the drain without Connection: close", i)
			}
			c.ExpectClosed()
			continue
		}
		if resp.Close {
			t.Fatalf("conn %d: closed with a pipelined request received", i)
		}
		resp, body = c.Read("GET")
		if resp.StatusCode != 200 || body != "/after" || !resp.Close {
			t.Fatalf("conn %d, pipelined: %d %q close=%v", i, resp.StatusCode, body, resp.Close)
		}
		c.ExpectClosed()
	}
}
