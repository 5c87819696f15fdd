//go:build !race

package server

import (
	"bytes"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/plb/plb/internal/testhttp"
)

// TestIdleClientHeap: a keep-alive client waiting for its next request
// holds little of plb's heap: its connection, its handler and its timer.
// The request's memory (parser, heads, coalescing buffer, body and retry
// state) goes back to the loop between requests. The clients here are raw
// descriptors, so that nothing of theirs is on the heap measured; the
// figure is live heap after a GC, which bench/idle.sh's RSS per client
// exceeds by the collector's slack.
func TestIdleClientHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	const n = 2000
	if os.Getenv("PLB_HEAPPROF") != "" {
		runtime.MemProfileRate = 1
	}
	ts := startServer(t, benchProxyTOML(fixedBackend(t), "idle_timeout = \"60s\"\npersist_client_idle_timeout = \"60s\"\n"))
	addr := netip.MustParseAddrPort(ts.addrOf("proxy"))
	req := []byte("GET /x HTTP/1.1\r\nHost: bench\r\n\r\n")
	buf := make([]byte, 4096)
	oneRequest := func() int {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		tv := unix.Timeval{Sec: 5}
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		if err := unix.Connect(fd, &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()}); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.Write(fd, req); err != nil {
			t.Fatal(err)
		}
		got := 0
		for !bytes.HasSuffix(buf[:got], bytes.Repeat([]byte("x"), 100)) {
			k, err := unix.Read(fd, buf[got:])
			if err != nil || k == 0 {
				t.Fatalf("reading the response: %v (%q)", err, buf[:got])
			}
			got += k
		}
		return fd
	}
	var fds []int
	t.Cleanup(func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	})
	for i := 0; i < 100; i++ { // warm: free lists, pools, fd table
		unix.Close(oneRequest())
	}
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	fds = make([]int, 0, n)
	before := heap()
	for i := 0; i < n; i++ {
		fds = append(fds, oneRequest())
	}
	testhttp.WaitFor(t, "clients open", func() bool { return ts.ServiceStatus("proxy").Clients >= n })
	per := int64(heap()-before) / n
	if f := os.Getenv("PLB_HEAPPROF"); f != "" {
		out, _ := os.Create(f)
		pprof.WriteHeapProfile(out)
		out.Close()
	}
	t.Logf("%d bytes of live heap per idle keep-alive client", per)
	if per > idleClientHeapMax {
		t.Errorf("%d bytes of live heap per idle keep-alive client, want at most %d", per, idleClientHeapMax)
	}
}

// idleClientHeapMax bounds TestIdleClientHeap's figure: RSS per idle
// client must stay at or under 700 bytes (issue 12), and the collector
// needs its slack above the live heap.
const idleClientHeapMax = 560
