package proxy

// The proxy's "done means" tests: spoon-feeding with bounded memory, whole
// bodies to closing and half-closing clients, descriptor exhaustion, and
// connect timeouts with fail-over.

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	nethttp "net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/plb/plb/internal/testhttp"
	"github.com/plb/plb/internal/testutil"
)

// heapSampler records the largest HeapInuse seen while it runs.
type heapSampler struct {
	max  atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func sampleHeap() *heapSampler {
	runtime.GC()
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > h.max.Load() {
				h.max.Store(ms.HeapInuse)
			}
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) Stop() uint64 {
	close(h.stop)
	<-h.done
	return h.max.Load()
}

// TestSlowReaderBoundedHeap: a client that reads a 200 MB response slowly
// at first, then fast, gets every byte, while the proxy's heap stays under
// 16 MB (the response goes to the spool file beyond buffer_size) and the
// backend connection is released long before the client is done
// (spoon-feeding).
func TestSlowReaderBoundedHeap(t *testing.T) {
	size := int64(200 << 20)
	bb := testhttp.NewBigBackend(t, size)
	ts := startProxy(t, []string{bb.Addr}, "", fmt.Sprintf(`persist_client = true
persist_backend = false
buffer_size = "256k"
buffer_dir = %q
connect_timeout = "1s"
backend_timeout = "10s"
idle_timeout = "30s"
`, t.TempDir()))
	heap := sampleHeap()
	c := testhttp.Dial(t, ts.addr())
	c.NC.SetDeadline(time.Now().Add(120 * time.Second))
	c.Send("GET /big HTTP/1.1\r\nHost: test\r\n\r\n")
	resp, err := nethttp.ReadResponse(c.BR, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.ContentLength != size {
		t.Fatalf("status %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	h := sha256.New()
	buf := make([]byte, 64<<10)
	var got, atRelease int64
	released := false
	slowUntil := time.Now().Add(15 * time.Second)
	start := time.Now()
	for got < size {
		if !released {
			select {
			case <-bb.ClosedAt:
				released, atRelease = true, got
			default:
				if time.Now().After(slowUntil) {
					t.Fatalf("backend still held after %v of slow reading (%d bytes read)", time.Since(start), got)
				}
				time.Sleep(20 * time.Millisecond) // slow: 64 KiB per 20 ms
			}
		}
		n, err := resp.Body.Read(buf)
		h.Write(buf[:n])
		got += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
	}
	elapsed := time.Since(start)
	maxHeap := heap.Stop()
	if got != size {
		t.Fatalf("got %d bytes, want %d", got, size)
	}
	bb.CheckSum(t, h.Sum(nil))
	t.Logf("%d MB in %v; backend released after the client read %d KB; max HeapInuse %.1f MB",
		size>>20, elapsed, atRelease>>10, float64(maxHeap)/(1<<20))
	if !released {
		t.Fatal("backend connection not released before the client finished")
	}
	if atRelease > size/4 {
		t.Errorf("backend released only after the client read %d of %d bytes", atRelease, size)
	}
	if maxHeap > 16<<20 {
		t.Errorf("heap in use reached %.1f MB, want < 16 MB", float64(maxHeap)/(1<<20))
	}
}

// TestSpoolBeyondLargeBufferSize: with buffer_size above the engine's
// default write watermark, the response still spills to the spool file
// past buffer_size instead of holding the backend.
func TestSpoolBeyondLargeBufferSize(t *testing.T) {
	size := int64(32 << 20)
	bb := testhttp.NewBigBackend(t, size)
	ts := startProxy(t, []string{bb.Addr}, "", testhttp.ServiceKeys(`buffer_size = "4m"`, "persist_backend = false"))
	c := testhttp.Dial(t, ts.addr())
	c.Send("GET /big HTTP/1.1\r\nHost: test\r\n\r\n")
	resp, err := nethttp.ReadResponse(c.BR, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-bb.ClosedAt: // released before the client read a byte of the body
	case <-time.After(10 * time.Second):
		t.Fatal("backend held while the client did not read")
	}
	bb.CheckBody(t, resp.Body)
}

// TestSpoolUnavailable: when the spool file cannot be created the proxy
// falls back to backpressure on the backend, and the body still arrives
// whole.
func TestSpoolUnavailable(t *testing.T) {
	size := int64(16 << 20)
	bb := testhttp.NewBigBackend(t, size)
	dir := t.TempDir()
	ts := startProxy(t, []string{bb.Addr}, "", testhttp.ServiceKeys(`buffer_size = "64k"`, fmt.Sprintf("buffer_dir = %q", dir)))
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	c := testhttp.Dial(t, ts.addr())
	c.Send("GET /big HTTP/1.1\r\nHost: test\r\n\r\n")
	resp, err := nethttp.ReadResponse(c.BR, nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the buffers fill up
	bb.CheckBody(t, resp.Body)
	if n := ts.svc.Stats.SpoolWrites.Load(); n != 0 {
		t.Fatalf("%d spool writes without a spool directory", n)
	}
}

// TestCloseClientWholeBody: a 50 MB response to a "Connection: close"
// client arrives whole and the connection then closes.
func TestCloseClientWholeBody(t *testing.T) {
	size := int64(50 << 20)
	bb := testhttp.NewBigBackend(t, size)
	ts := startProxy(t, []string{bb.Addr}, "", testhttp.StdProxy)
	c := testhttp.Dial(t, ts.addr())
	c.Send("GET /big HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
	resp, err := nethttp.ReadResponse(c.BR, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("status %d, close %v", resp.StatusCode, resp.Close)
	}
	bb.CheckBody(t, resp.Body)
	c.ExpectClosed()
}

// TestHalfCloseClient: a client that shuts down its write side right after
// its request still gets the whole response, small or spooled, then EOF.
func TestHalfCloseClient(t *testing.T) {
	for _, size := range []int64{1 << 10, 8 << 20} {
		t.Run(strconv.FormatInt(size, 10), func(t *testing.T) {
			bb := testhttp.NewBigBackend(t, size)
			ts := startProxy(t, []string{bb.Addr}, "", testhttp.ServiceKeys(`buffer_size = "64k"`))
			c := testhttp.Dial(t, ts.addr())
			c.Send("GET /big HTTP/1.1\r\nHost: test\r\n\r\n")
			if err := c.NC.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			resp, err := nethttp.ReadResponse(c.BR, nil)
			if err != nil {
				t.Fatal(err)
			}
			bb.CheckBody(t, resp.Body)
			c.ExpectClosed()
		})
	}
}

// TestHalfCloseDuringResponse: a client that half-closes after the
// response head arrived (so keep-alive was already granted) gets the rest,
// then the connection closes at once instead of idling to its timeout.
func TestHalfCloseDuringResponse(t *testing.T) {
	gate := make(chan struct{})
	be := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
		select {
		case <-gate:
		case <-time.After(testTimeout):
		}
		io.WriteString(c, "world")
		return true
	})
	ts := startProxy(t, []string{be.Addr}, "", testhttp.ServiceKeys(`persist_client_idle_timeout = "30s"`))
	c := testhttp.Dial(t, ts.addr())
	c.Send("GET /x HTTP/1.1\r\nHost: test\r\n\r\n")
	resp, err := nethttp.ReadResponse(c.BR, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Close {
		t.Fatal("keep-alive not granted")
	}
	c.NC.(*net.TCPConn).CloseWrite()
	time.Sleep(50 * time.Millisecond) // the proxy sees the EOF mid-response
	close(gate)
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "helloworld" {
		t.Fatalf("body %q: %v", b, err)
	}
	c.ExpectClosed()
}

// TestAcceptSurvivesEMFILE runs itself in a child process whose
// RLIMIT_NOFILE is lowered until accept fails with EMFILE: plb must keep
// running and serve again once descriptors are free.
func TestAcceptSurvivesEMFILE(t *testing.T) {
	if os.Getenv("PLB_TEST_EMFILE_CHILD") == "1" {
		emfileChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestAcceptSurvivesEMFILE$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "PLB_TEST_EMFILE_CHILD=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil || !strings.Contains(out.String(), "EMFILE child passed") {
			t.Fatalf("child: %v\n%s", err, out.String())
		}
		t.Logf("child:\n%s", out.String())
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("child hung:\n%s", out.String())
	}
}

func emfileChild(t *testing.T) {
	be := testhttp.OKBackend(t, "b")
	var logs testutil.SyncBuffer
	ts := startProxyTOML(t, testhttp.ProxyTOML([]string{be.Addr}, "", testhttp.ServiceKeys("persist_backend = false")),
		harnessOptions{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	addr := ts.addr()
	testhttp.MustGet(t, addr, "/warm")

	// Keep-alive clients, accepted while descriptors are plenty.
	var idle []*testhttp.Client
	for i := 0; i < 8; i++ {
		c := testhttp.Dial(t, addr)
		if resp, _ := c.Do("GET /first HTTP/1.1\r\nHost: t\r\n\r\n"); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		idle = append(idle, c)
	}
	be.WaitOpen(t, 0)

	// The sockets of the clients that will wait in the backlog, made
	// while descriptors are plenty: at the limit a dial needs one freed,
	// which the engine's accept, retrying, could take first (and then find
	// none for the backend: a 503 to a client the test expects served).
	var spare []int
	for range 3 {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		spare = append(spare, fd)
	}

	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	limit := uint64(testhttp.FDCount(t) + 32)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: limit, Max: old.Max}); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
				t.Error(err)
			}
		}
	}
	defer restore()

	// Fill the descriptor table.
	var files []*os.File
	closeFiles := func() {
		for _, f := range files {
			f.Close()
		}
		files = nil
	}
	defer closeFiles()
	fill := func() {
		for i := 0; ; i++ {
			f, err := os.Open(os.DevNull)
			if err != nil {
				if !errors.Is(err, syscall.EMFILE) {
					t.Fatal(err)
				}
				return
			}
			if i > 1000 {
				t.Fatal("descriptor limit not reached")
			}
			files = append(files, f)
		}
	}
	fill()

	// Requests that need a backend connection now get a clear 503, and
	// the node is not blamed for our own shortage. The table is filled
	// again first: a descriptor the backend's side or the runtime freed
	// meanwhile would let a backend connection through.
	time.Sleep(50 * time.Millisecond)
	fill()
	for _, c := range idle {
		c.Send("GET /starved HTTP/1.1\r\nHost: t\r\n\r\n")
	}
	for _, c := range idle {
		resp, _ := c.Read("GET")
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("without descriptors: status %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}

	// New clients wait in the backlog while accept fails with EMFILE.
	var queued []*testhttp.Client
	ap := netip.MustParseAddrPort(addr)
	for i, fd := range spare {
		// A loopback connect completes in the listener's backlog, accepted
		// or not, and takes no new descriptor.
		if err := syscall.Connect(fd, &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
			t.Fatalf("connect at the limit: %v", err)
		}
		nc := fileConn{os.NewFile(uintptr(fd), fmt.Sprintf("client %d", i))}
		c := testhttp.NewClient(t, nc) // blocking: the parent's timeout bounds it
		t.Cleanup(func() { nc.Close() })
		c.Send(fmt.Sprintf("GET /queued/%d HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", i))
		queued = append(queued, c)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "accept paused") {
		if time.Now().After(deadline) {
			t.Fatalf("accept never failed at the descriptor limit; log:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(250 * time.Millisecond) // a few accept back-offs at the limit

	// Free the descriptors: the queued clients are served, then new ones.
	// The files go first: a closing connection frees one descriptor and
	// lets accept resume at once, and a queued client accepted then would
	// find none left for its backend connection (a 503).
	closeFiles()
	restore()
	for _, c := range idle {
		c.NC.Close()
	}
	for i, c := range queued {
		resp, body := c.Read("GET")
		if resp.StatusCode != 200 || body != fmt.Sprintf("b GET /queued/%d", i) {
			t.Fatalf("queued client %d: %d %q; log:\n%s", i, resp.StatusCode, body, logs.String())
		}
	}
	for i := 0; i < 5; i++ {
		testhttp.MustGet(t, addr, "/again")
	}
	if n := ts.pool.Nodes()[0]; n.Down() || n.Failures.Load() != 0 {
		t.Fatalf("node blamed for local descriptor shortage: down %v, %d failures", n.Down(), n.Failures.Load())
	}
	t.Logf("log:\n%s", logs.String())
	fmt.Println("EMFILE child passed")
}

// fileConn is a connected socket made by hand as a net.Conn (without
// addresses: the client needs none).
type fileConn struct{ *os.File }

func (fileConn) LocalAddr() net.Addr  { return nil }
func (fileConn) RemoteAddr() net.Addr { return nil }

// blackhole returns a loopback address whose connects never complete: a
// listening socket with backlog 0 and a full accept queue drops SYNs.
func blackhole(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for i := 0; ; i++ {
		if i == 16 {
			t.Skip("cannot fill a loopback accept queue here")
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break // SYN dropped: the queue is full
		}
		t.Cleanup(func() { c.Close() })
	}
	return addr
}

// TestConnectTimeoutNextNode: a node that never completes the handshake
// costs connect_timeout, then the next node answers.
func TestConnectTimeoutNextNode(t *testing.T) {
	hole := blackhole(t)
	good := testhttp.OKBackend(t, "good")
	ts := startProxy(t, []string{hole, good.Addr}, `balance_method = "round_robin"`,
		testhttp.ServiceKeys(`connect_timeout = "300ms"`))
	addr := ts.addr()
	start := time.Now()
	body := testhttp.MustGet(t, addr, "/x")
	elapsed := time.Since(start)
	if !strings.HasPrefix(body, "good ") {
		t.Fatalf("body %q", body)
	}
	var holeNode = ts.pool.Nodes()[0]
	if holeNode.Attempts.Load() != 1 || holeNode.Connects.Load() != 0 {
		t.Fatalf("black hole: %d attempts, %d connects", holeNode.Attempts.Load(), holeNode.Connects.Load())
	}
	if elapsed < 250*time.Millisecond || elapsed > 3*time.Second {
		t.Fatalf("request took %v, want about connect_timeout (300ms)", elapsed)
	}
	t.Logf("answered by the second node after %v", elapsed)
}

// TestHalfCloseAfterBody: a client that sends a whole POST (Content-Length
// or chunked) and half-closes at once still gets the answer, even when the
// half-close arrives before the proxy reached a backend.
func TestHalfCloseAfterBody(t *testing.T) {
	be := testhttp.EchoBackend(t)
	ts := startProxy(t, []string{be.Addr}, "", testhttp.StdProxy)
	for name, raw := range map[string]string{
		"length":  "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
		"chunked": "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			for i := 0; i < 20; i++ {
				c := testhttp.Dial(t, ts.addr())
				c.Send(raw)
				if err := c.NC.(*net.TCPConn).CloseWrite(); err != nil {
					t.Fatal(err)
				}
				resp, body := c.Read("POST")
				if resp.StatusCode != 200 || !strings.Contains(body, "hello") {
					t.Fatalf("try %d: %d %q", i, resp.StatusCode, body)
				}
				c.NC.Close()
			}
		})
	}
}
