package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/internal/testhttp"
)

// livePoolTOML is a proxy over pool web (a, b, round robin) with a second
// pool other (c) to switch to.
func livePoolTOML(a, b, c *testhttp.Backend, extra string) string {
	return fmt.Sprintf(`[global]
workers = 2

[pool.web]
nodes = [%q, %q]
balance_method = "round_robin"

[pool.other]
nodes = [%q]

[service.proxy]
role = "reverse_proxy"
listen = "127.0.0.1:0"
pool = "web"
%s%s`, a.Addr, b.Addr, c.Addr, testhttp.StdProxy, extra)
}

// TestLivePoolChangesUnderLoad: under a running load, POOL REMOVE stops new
// requests to a node at once (and closes its idle backend connections),
// POOL ADD brings it back, and SET proxy.pool switches to another pool and
// back, with not one failed request.
func TestLivePoolChangesUnderLoad(t *testing.T) {
	a, b, c := testhttp.OKBackend(t, "a"), testhttp.OKBackend(t, "b"), testhttp.OKBackend(t, "c")
	ts := startServer(t, livePoolTOML(a, b, c, ""))
	g := startLoad(t, ts.addrOf("proxy"), 8, 2, 15*time.Second)
	waitServed(t, a, 50)
	waitServed(t, b, 50)

	ts.exec("POOL web REMOVE " + a.Addr)
	expectQuiet(t, a, "after POOL REMOVE")
	a.WaitOpen(t, 0) // idle backend connections to a removed node are closed
	waitServed(t, b, served(b)+100)

	ts.exec("POOL web ADD " + a.Addr)
	waitServed(t, a, served(a)+50)

	ts.exec("SET proxy.pool = other")
	expectQuiet(t, a, "after switching to pool other")
	expectQuiet(t, b, "after switching to pool other")
	waitServed(t, c, served(c)+100)
	a.WaitOpen(t, 0)
	b.WaitOpen(t, 0)

	ts.exec("SET proxy.pool = web")
	expectQuiet(t, c, "after switching back")
	waitServed(t, a, served(a)+50)
	waitServed(t, b, served(b)+50)
	g.check(t)
}

// TestLiveRemovedNodeFinishesInFlight: a node removed while it sends a slow
// response finishes it; its idle backend connection is closed at once, not
// reused, and the busy one is closed when its response is done.
func TestLiveRemovedNodeFinishesInFlight(t *testing.T) {
	const size = 512 << 10
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	a := testhttp.NewHTTPBackend(t, func(bk *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		if req.URL.Path != "/slow" {
			testhttp.Respond(c, 200, "", "a "+req.RequestURI)
			return true
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size)
		c.Write([]byte(strings.Repeat("x", size/2)))
		started <- struct{}{}
		<-release
		c.Write([]byte(strings.Repeat("y", size/2)))
		return true
	})
	b, other := testhttp.OKBackend(t, "b"), testhttp.OKBackend(t, "other")
	ts := startServer(t, livePoolTOML(a, b, other, ""))
	ts.exec("POOL web REMOVE " + b.Addr) // a alone to begin with
	addr := ts.addrOf("proxy")

	slow := testhttp.Dial(t, addr)
	slow.Send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
	<-started
	quick := testhttp.Dial(t, addr)
	if _, body := quick.Do("GET /q1 HTTP/1.1\r\nHost: t\r\n\r\n"); body != "a /q1" {
		t.Fatalf("first request: %q", body)
	}
	a.WaitOpen(t, 2) // one busy with /slow, one idle after /q1

	ts.exec("POOL web ADD "+b.Addr, "POOL web REMOVE "+a.Addr)
	a.WaitOpen(t, 1) // the idle one is closed at once
	for i := 0; i < 4; i++ {
		if _, body := quick.Do(fmt.Sprintf("GET /q%d HTTP/1.1\r\nHost: t\r\n\r\n", i+2)); !strings.HasPrefix(body, "b ") {
			t.Fatalf("request after the removal answered by %q", body)
		}
	}
	close(release)
	resp, body := slow.Read("GET")
	if resp.StatusCode != 200 || len(body) != size || body[size-1] != 'y' {
		t.Fatalf("in-flight response: %d, %d of %d bytes", resp.StatusCode, len(body), size)
	}
	a.WaitOpen(t, 0) // not kept for reuse
	if n := a.Accepted.Load(); n != 2 {
		t.Fatalf("removed node accepted %d connections, want 2", n)
	}
	// The client's connection goes on, to b.
	if _, body := slow.Do("GET /after HTTP/1.1\r\nHost: t\r\n\r\n"); body != "b GET /after" {
		t.Fatalf("next request on the slow client: %q", body)
	}
}

// TestLiveConsolePoolRemove: the same through a real management connection:
// "pool web remove" answers OK and the node gets no more requests; "pool
// web add" brings it back.
func TestLiveConsolePoolRemove(t *testing.T) {
	a, b, c := testhttp.OKBackend(t, "a"), testhttp.OKBackend(t, "b"), testhttp.OKBackend(t, "c")
	ts := startServer(t, livePoolTOML(a, b, c, `
[service.mgmt]
role = "management"
listen = "127.0.0.1:0"
`))
	g := startLoad(t, ts.addrOf("proxy"), 4, 1, 15*time.Second)
	waitServed(t, a, 20)
	mc, err := net.DialTimeout("tcp", ts.addrOf("mgmt"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	mc.SetDeadline(time.Now().Add(testTimeout))
	br := bufio.NewReader(mc)
	command := func(line string) {
		t.Helper()
		if _, err := io.WriteString(mc, line+"\r\n"); err != nil {
			t.Fatal(err)
		}
		reply, err := br.ReadString('\n')
		if err != nil || strings.TrimSpace(reply) != "OK" {
			t.Fatalf("%s: %q %v", line, reply, err)
		}
	}
	command("pool web remove " + a.Addr)
	expectQuiet(t, a, "after 'pool web remove'")
	waitServed(t, b, served(b)+50)
	command("pool web add " + a.Addr)
	waitServed(t, a, served(a)+20)
	g.check(t)
}
