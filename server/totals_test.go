package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
	"github.com/plb/plb/internal/testhttp"
)

// TestSlowUploadCutByDeadline: a body that arrives slower than
// client_body_min_rate gets 408 once client_body_timeout plus its bytes'
// allowance has passed, though every byte would reset the idle timeout;
// one at the rate goes through. Both ways a body is read: held before a
// backend is asked (buffer_backend_connect) and streamed to a backend.
func TestSlowUploadCutByDeadline(t *testing.T) {
	be := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		testhttp.Respond(c, 200, "", fmt.Sprintf("got %d", len(body)))
		return true
	})
	for _, held := range []bool{true, false} {
		bbc := `buffer_backend_connect = 0`
		if held {
			bbc = `buffer_backend_connect = "100k"`
		}
		ts := startServer(t, testhttp.OneLoop(testhttp.ProxyTOML([]string{be.Addr}, "server_retry = 100",
			testhttp.ServiceKeys(bbc, `client_body_timeout = "500ms"`, `client_body_min_rate = 100`, `idle_timeout = "10s"`))))
		addr := ts.addrOf("proxy")
		// 10 bytes every 200 ms: 50 bytes/s, half the rate. The deadline
		// is 0.5 s + got/100 s, reached after about 1 s of this.
		slow := testhttp.Dial(t, addr)
		slow.Send("POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
		start := time.Now()
		answered := make(chan *nethttp.Response, 1)
		go func() {
			resp, err := nethttp.ReadResponse(slow.BR, &nethttp.Request{Method: "POST"})
			if err != nil {
				resp = nil
			} else {
				io.Copy(io.Discard, resp.Body)
			}
			answered <- resp
		}()
		var resp *nethttp.Response
	trickle:
		for i := 0; i < 40; i++ {
			select {
			case resp = <-answered:
				break trickle
			case <-time.After(200 * time.Millisecond):
				slow.NC.Write([]byte(strings.Repeat("x", 10)))
			}
		}
		took := time.Since(start)
		if resp == nil {
			t.Fatalf("held=%v: a body at half the minimum rate got no answer in %v", held, took)
		}
		if resp.StatusCode != 408 {
			t.Errorf("held=%v: a body at half the minimum rate got %d, want 408", held, resp.StatusCode)
		}
		if took < 700*time.Millisecond || took > 4*time.Second {
			t.Errorf("held=%v: the slow body was cut after %v, want about 1 s", held, took)
		}
		slow.ExpectClosed()

		// 40 bytes every 200 ms (200 bytes/s) for 2.5 s: at twice the
		// rate, past the base timeout, it goes through.
		ok := testhttp.Dial(t, addr)
		ok.Send("POST /ok HTTP/1.1\r\nHost: t\r\nContent-Length: 500\r\n\r\n")
		for i := 0; i < 12; i++ {
			ok.Send(strings.Repeat("y", 40))
			time.Sleep(200 * time.Millisecond)
		}
		ok.Send(strings.Repeat("y", 20))
		if resp, body := ok.Read("POST"); resp.StatusCode != 200 || body != "got 500" {
			t.Errorf("held=%v: a body at twice the minimum rate got %d %q", held, resp.StatusCode, body)
		}
	}
}

// TestSpoolCapUnderSlowReaders: three clients that do not read a 32 MiB
// response would put 96 MiB in the spool; with buffer_dir_size = 2m the
// spool stays within it (plus the piece in flight), the backends are read
// only as fast as the clients take once it is full, and every byte still
// arrives exact.
func TestSpoolCapUnderSlowReaders(t *testing.T) {
	const size = 32 << 20
	pattern := func(i int) byte { return byte(i*7 + i>>13) }
	be := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size)
		buf := make([]byte, 64<<10)
		for off := 0; off < size; off += len(buf) {
			for i := range buf {
				buf[i] = pattern(off + i)
			}
			if _, err := c.Write(buf); err != nil {
				return false
			}
		}
		return true
	})
	dir := t.TempDir()
	const capBytes = 2 << 20
	ts := startServer(t, testhttp.OneLoop(testhttp.ProxyTOML([]string{be.Addr}, "server_retry = 100",
		testhttp.ServiceKeys(`buffer_size = "64k"`, `buffer_dir_size = "2m"`, fmt.Sprintf("buffer_dir = %q", dir), `idle_timeout = "30s"`))))
	addr := ts.addrOf("proxy")
	var readers []*testhttp.Client
	for i := 0; i < 3; i++ {
		c := testhttp.Dial(t, addr)
		c.NC.(*net.TCPConn).SetReadBuffer(32 << 10)
		c.Send("GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
		readers = append(readers, c)
	}
	// Nobody reads: the spool fills to its cap and stops there.
	testhttp.WaitFor(t, "spool full", func() bool { return ts.ServiceStatus("proxy").SpoolFull > 0 })
	var peak int64
	for i := 0; i < 20; i++ {
		if s := ts.ServiceStatus("proxy").Spooled; s > peak {
			peak = s
		}
		time.Sleep(25 * time.Millisecond)
	}
	// One piece (a read of the backend, at most 64 KiB) may be taken by
	// each loop before the check; one loop here.
	if peak > capBytes+64<<10 {
		t.Fatalf("spool at %d bytes with buffer_dir_size %d", peak, capBytes)
	}
	if peak == 0 {
		t.Fatal("the spool was never used")
	}
	// Now they read, one after another: every byte exact.
	for n, c := range readers {
		c.NC.SetReadDeadline(time.Now().Add(testTimeout))
		resp, err := nethttp.ReadResponse(c.BR, &nethttp.Request{Method: "GET"})
		if err != nil {
			t.Fatalf("reader %d: %v", n, err)
		}
		buf := make([]byte, 256<<10)
		off := 0
		for {
			k, err := resp.Body.Read(buf)
			for i := 0; i < k; i++ {
				if buf[i] != pattern(off+i) {
					t.Fatalf("reader %d: byte %d is %#x, want %#x", n, off+i, buf[i], pattern(off+i))
				}
			}
			off += k
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("reader %d after %d bytes: %v", n, off, err)
			}
		}
		if off != size {
			t.Fatalf("reader %d got %d bytes of %d", n, off, size)
		}
	}
	testhttp.WaitFor(t, "spool emptied", func() bool { return ts.ServiceStatus("proxy").Spooled == 0 })
}

// TestDefaultClientCap: without max_clients, the clients of all services
// together are capped from the descriptor limit (half of it, less a
// reserve: a proxied client holds its socket and a backend connection or
// a spool file), so plb refuses cleanly instead of running out of
// descriptors; the console is not counted. The global max_clients is the
// cap when set.
func TestDefaultClientCap(t *testing.T) {
	cfg, err := config.Parse("t.toml", []byte("[global]\nmax_clients = 5\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := clientCap(cfg, 1000); got != 5 {
		t.Errorf("global max_clients 5: cap %d", got)
	}
	cfg.Global.MaxClients = 0
	if got := clientCap(cfg, 1000); got != (1000-64)/2 {
		t.Errorf("1000 descriptors: cap %d, want %d", got, (1000-64)/2)
	}
	if got := clientCap(cfg, 0); got <= 0 {
		t.Errorf("the process's own limit gives cap %d", got)
	}

	be := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		testhttp.Respond(c, 200, "", "ok")
		return true
	})
	toml := testhttp.ProxyTOML([]string{be.Addr}, "", testhttp.StdProxy) + "\n[service.mgmt]\nrole = \"management\"\nlisten = \"127.0.0.1:0\"\n"
	ts := startServerOpts(t, toml, Options{NoFile: 64 + 2*2}) // a cap of 2
	addr := ts.addrOf("proxy")
	a, b := testhttp.Dial(t, addr), testhttp.Dial(t, addr)
	for _, c := range []*testhttp.Client{a, b} {
		if resp, _ := c.Do("GET / HTTP/1.1\r\nHost: t\r\n\r\n"); resp.StatusCode != 200 {
			t.Fatalf("client under the cap: %d", resp.StatusCode)
		}
	}
	third := testhttp.Dial(t, addr)
	third.Send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
	third.ExpectClosed()
	console := testhttp.Dial(t, ts.addrOf("mgmt"))
	if resp, _ := console.Do("GET /healthz HTTP/1.0\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatalf("console at the client cap: %d", resp.StatusCode)
	}
}

// TestSpoolCapThroughSelector: behind a selector the proxy hands the
// connection back after each response, its spool file still queued on the
// connection. A client that pipelines requests for large responses and
// reads nothing must not get a new uncounted spool for each: the bytes
// count against buffer_dir_size until the connection has sent them. The
// spool files are unlinked, so their size on disk is read through this
// process's descriptors; when the client reads, everything arrives.
func TestSpoolCapThroughSelector(t *testing.T) {
	const size = 768 << 10
	be := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size)
		c.Write(make([]byte, size))
		return true
	})
	dir := t.TempDir()
	ts := startServer(t, testhttp.OneLoop(fmt.Sprintf(`[global]
workers = 2
[pool.web]
nodes = [%q]
[service.pr]
role = "reverse_proxy"
pool = "web"
persist_backend = true
idle_timeout = "30s"
buffer_size = "64k"
buffer_dir_size = "1m"
buffer_dir = %q
[service.ss]
role = "selector"
listen = "127.0.0.1:0"
persist_client = true
default_service = "pr"
`, be.Addr, dir)))
	c := testhttp.Dial(t, ts.addrOf("ss"))
	c.NC.(*net.TCPConn).SetReadBuffer(16 << 10)
	const n = 12
	c.Send(strings.Repeat("GET /big HTTP/1.1\r\nHost: x\r\n\r\n", n))
	var peak int64
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if d := spoolOnDisk(t, dir); d > peak {
			peak = d
		}
	}
	// The cap, plus one piece in flight.
	if peak > 1<<20+64<<10 {
		t.Fatalf("one client holds %d bytes of spool on disk with buffer_dir_size 1m (counted: %d)", peak, ts.ServiceStatus("pr").Spooled)
	}
	for i := 0; i < n; i++ {
		if resp, body := c.Read("GET"); resp.StatusCode != 200 || len(body) != size {
			t.Fatalf("response %d: %d, %d bytes", i, resp.StatusCode, len(body))
		}
	}
	testhttp.WaitFor(t, "spool given back", func() bool { return ts.ServiceStatus("pr").Spooled == 0 && spoolOnDisk(t, dir) == 0 })
}

// spoolOnDisk is the size of the files under dir this process holds open
// (spool files are unlinked once created).
func spoolOnDisk(t *testing.T, dir string) int64 {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	var sum int64
	for _, e := range ents {
		p := filepath.Join("/proc/self/fd", e.Name())
		if l, err := os.Readlink(p); err == nil && strings.HasPrefix(l, dir+"/") {
			if fi, err := os.Stat(p); err == nil {
				sum += fi.Size()
			}
		}
	}
	return sum
}

// TestBodyClockStopsWhilePlbPauses: a client as fast as plb reads is never
// late, though its backend takes seconds before it reads the body and plb
// stops reading the client meanwhile; the deadline (1 s, no allowance per
// byte) would have passed long before.
func TestBodyClockStopsWhilePlbPauses(t *testing.T) {
	const size = 32 << 20
	be := testhttp.NewRequestBackend(t, func(b *testhttp.Backend, c net.Conn, br *bufio.Reader, req *nethttp.Request, id int64, n int) bool {
		time.Sleep(3 * time.Second)
		got, _ := io.Copy(io.Discard, req.Body)
		testhttp.Respond(c, 200, "", fmt.Sprintf("got %d", got))
		return true
	})
	ts := startServer(t, testhttp.OneLoop(testhttp.ProxyTOML([]string{be.Addr}, "", testhttp.ServiceKeys(`buffer_backend_connect = 0`,
		`client_body_timeout = "1s"`, `client_body_min_rate = 0`, `idle_timeout = "20s"`, `backend_timeout = "20s"`))))
	c := testhttp.Dial(t, ts.addrOf("proxy"))
	c.Send(fmt.Sprintf("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n", size))
	go func() {
		chunk := make([]byte, 64<<10)
		for off := 0; off < size; off += len(chunk) {
			if _, err := c.NC.Write(chunk); err != nil {
				return
			}
		}
	}()
	if resp, body := c.Read("POST"); resp.StatusCode != 200 || body != fmt.Sprintf("got %d", size) {
		t.Fatalf("a client as fast as plb reads got %d %q", resp.StatusCode, body)
	}
}

// TestBodyDeadlineBehindSlowResponse: reading an earlier response slowly
// ("a slow reader still making progress") does not buy a pipelined
// request's body more time: 10 bytes of a 1000-byte body, then nothing,
// get 408 once their deadline has passed.
func TestBodyDeadlineBehindSlowResponse(t *testing.T) {
	const big = 32 << 20
	be := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		if req.Method == "GET" {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", big)
			c.Write(make([]byte, big))
			return true
		}
		testhttp.Respond(c, 200, "", fmt.Sprintf("got %d", len(body)))
		return true
	})
	ts := startServer(t, testhttp.OneLoop(testhttp.ProxyTOML([]string{be.Addr}, "", testhttp.ServiceKeys(`buffer_backend_connect = "100k"`,
		`client_body_timeout = "300ms"`, `client_body_min_rate = 100`, `idle_timeout = "1s"`, `buffer_size = "64k"`,
		`client_sndbuf_size = "16k"`))))
	c := testhttp.Dial(t, ts.addrOf("proxy"))
	c.NC.(*net.TCPConn).SetReadBuffer(8 << 10)
	c.Send("GET /big HTTP/1.1\r\nHost: t\r\n\r\nPOST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n0123456789")
	buf := make([]byte, 64<<10)
	for start := time.Now(); time.Since(start) < 4*time.Second && ts.ServiceStatus("proxy").Responses[4] == 0; {
		time.Sleep(300 * time.Millisecond)
		c.NC.Read(buf) // a little now and then
	}
	if ts.ServiceStatus("proxy").Responses[4] == 0 {
		t.Fatal("no 408 after 4 s for a body whose deadline was 0.4 s, its client reading an earlier response slowly")
	}
}

// TestBodyDeadlineAfterPlbResumes: plb pauses a streamed body while its
// backend does not read; once the backend reads again and plb reads the
// client again, a client that sends nothing more is late as any other:
// 408 at client_body_timeout, not the backend's 504 after backend_timeout
// counted against a healthy node.
func TestBodyDeadlineAfterPlbResumes(t *testing.T) {
	gate := make(chan struct{})
	be := testhttp.NewRequestBackend(t, func(b *testhttp.Backend, c net.Conn, br *bufio.Reader, req *nethttp.Request, id int64, n int) bool {
		<-gate
		got, _ := io.Copy(io.Discard, req.Body)
		testhttp.Respond(c, 200, "", fmt.Sprintf("got %d", got))
		return false
	})
	ts := startServer(t, testhttp.OneLoop(testhttp.ProxyTOML([]string{be.Addr}, "server_retry = 100", testhttp.ServiceKeys(`buffer_backend_connect = 0`,
		`client_body_timeout = "300ms"`, `client_body_min_rate = 1000`, `idle_timeout = "2s"`, `backend_timeout = "3s"`))))
	c := testhttp.Dial(t, ts.addrOf("proxy"))
	c.Send("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000000\r\n\r\n")
	peer := c.NC.LocalAddr().String()
	chunk := make([]byte, 16<<10)
	paused := false
	for i := 0; i < 4000 && !paused; i++ {
		c.NC.Write(chunk)
		time.Sleep(3 * time.Millisecond)
		var unread int
		paused, unread = clientPaused(ts, peer)
		if paused && unread > 0 {
			t.Skipf("plb paused with %d bytes unread in the socket: the client is not silent after it resumes", unread)
		}
	}
	if !paused {
		t.Fatal("plb never paused the body")
	}
	close(gate) // the backend reads again; the client sends nothing more
	c.NC.SetReadDeadline(time.Now().Add(8 * time.Second))
	resp, err := nethttp.ReadResponse(c.BR, &nethttp.Request{Method: "POST"})
	if err != nil {
		t.Fatal(err)
	}
	if fails := ts.Pool("web").Nodes()[0].Failures.Load(); resp.StatusCode != 408 || fails != 0 {
		t.Fatalf("a client silent after plb resumed its body got %d; node failures %d (want 408, 0)", resp.StatusCode, fails)
	}
}

// clientPaused reports, from the loops, whether plb's side of the client
// connection from peer is paused, and the bytes waiting unread in its
// socket.
func clientPaused(ts *testServer, peer string) (paused bool, unread int) {
	done := make(chan struct{}, len(ts.eng.Loops()))
	for _, l := range ts.eng.Loops() {
		l.Run(func() {
			l.EachConn(func(c *engine.Conn) {
				if c.RemoteAddr().String() == peer {
					paused = c.Paused()
					unread, _ = unix.IoctlGetInt(c.Fd(), unix.SIOCINQ)
				}
			})
			done <- struct{}{}
		})
	}
	for range ts.eng.Loops() {
		<-done
	}
	return paused, unread
}

// TestRequestStateCarriesNothingOver: a client's request memory goes back
// to the loop's free list; the next client that takes it, its head still
// incomplete, is not described (console socks) with the previous client's
// host and path.
func TestRequestStateCarriesNothingOver(t *testing.T) {
	a := testhttp.OKBackend(t, "a")
	ts := startServer(t, testhttp.OneLoop(testhttp.ProxyTOML([]string{a.Addr}, "", testhttp.StdProxy)))
	addr := ts.addrOf("proxy")
	first := testhttp.Dial(t, addr)
	if _, body := first.Do("GET /reset-password/SECRET-TOKEN HTTP/1.1\r\nHost: victim.example\r\n\r\n"); !strings.Contains(body, "SECRET") {
		t.Fatal(body)
	}
	first.NC.Close()
	testhttp.WaitFor(t, "the first client gone", func() bool { return ts.ServiceStatus("proxy").Clients == 0 })
	second := testhttp.Dial(t, addr)
	second.Send("GET /") // a head in part: it takes a request state
	peer := second.NC.LocalAddr().String()
	seen := false
	for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		for _, s := range ts.Socks() {
			if s.Addr != peer {
				continue
			}
			seen = true
			if strings.Contains(s.Info.Detail, "SECRET-TOKEN") || strings.Contains(s.Info.Detail, "victim") {
				t.Fatalf("a new client is described with the previous client's request: %q", s.Info.Detail)
			}
		}
	}
	if !seen {
		t.Fatal("the second client never showed in socks")
	}
}
