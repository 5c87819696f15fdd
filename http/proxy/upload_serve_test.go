package proxy

import (
	"fmt"
	"net"
	nethttp "net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/internal/testhttp"
)

// uploadProxy runs a proxy with buffer_uploads spooling into a fresh
// directory, PERLBAL_DEBUG_BUFFERED_UPLOADS set, over an echo backend that
// also reports the reason header it got.
func uploadProxy(t *testing.T, keys ...string) (addr, dir string, be *testhttp.Backend) {
	t.Helper()
	dir = t.TempDir()
	be = testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		testhttp.Respond(c, 200, "X-Reason: "+req.Header.Get("X-Perlbal-Buffered-Upload-Reason")+"\r\n", string(body))
		return true
	})
	all := append([]string{"buffer_uploads = true", fmt.Sprintf("buffer_uploads_path = %q", dir),
		"buffer_upload_threshold_size = 0", "buffer_upload_threshold_time = 0", "buffer_upload_threshold_rate = 0"}, keys...)
	ts := startProxyTOML(t, strings.Replace(testhttp.ProxyTOML([]string{be.Addr}, "", testhttp.ServiceKeys(all...)), "workers = 2", "workers = 1", 1), harnessOptions{DebugUploads: true})
	return ts.addr(), dir, be
}

// spoolFiles lists the files in dir.
func spoolFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func waitSpool(t *testing.T, dir string, n int) {
	t.Helper()
	testhttp.WaitFor(t, fmt.Sprintf("%d files in %s", n, dir), func() bool { return len(spoolFiles(t, dir)) == n })
}

// body returns n bytes of a recognisable pattern.
func body(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%07d,", i)
	}
	return b.String()[:n]
}

// sendUpload sends a POST of data in pieces (sleeping between them), checks
// the spool and the backend after the pieces given by check, and returns
// the response.
func sendUpload(t *testing.T, addr string, data string, steps ...any) (*nethttp.Response, string) {
	t.Helper()
	c := testhttp.Dial(t, addr)
	c.Send(fmt.Sprintf("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n", len(data)))
	off := 0
	for _, s := range steps {
		switch s := s.(type) {
		case int:
			c.Send(data[off : off+s])
			off += s
		case time.Duration:
			time.Sleep(s)
		case func():
			s()
		}
	}
	c.Send(data[off:])
	resp, got := c.Read("POST")
	if got != data {
		t.Fatalf("echoed body differs: %d bytes, want %d", len(got), len(data))
	}
	return resp, got
}

// TestUploadThresholds: each of buffer_upload_threshold_size, _rate and
// _time sends the body to a spool file (named as Perlbal names it) before
// any backend connection is made; the backend then gets it whole with the
// reason header, and the file is gone.
func TestUploadThresholds(t *testing.T) {
	cases := []struct {
		name, key, reason string
		size              int
		steps             func(check func()) []any
	}{
		{"size", "buffer_upload_threshold_size = 100000", "size", 300_000,
			func(check func()) []any { return []any{150_000, check} }},
		{"rate", "buffer_upload_threshold_rate = 1000000", "rate", 400_000,
			// 110k in 0.4 s: under 1 MB/s once buffer_backend_connect (100k) is full.
			func(check func()) []any { return []any{10_000, 400 * time.Millisecond, 100_000, check} }},
		{"time", "buffer_upload_threshold_time = 2", "time", 1_000_000,
			// ~275 kB/s leaves 3.2 s for the rest: over 2 s.
			func(check func()) []any { return []any{10_000, 400 * time.Millisecond, 100_000, check} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr, dir, be := uploadProxy(t, tc.key)
			check := func() {
				waitSpool(t, dir, 1)
				name := spoolFiles(t, dir)[0]
				if !strings.HasPrefix(name, "proxy-127.0.0.1:0-client-") {
					t.Errorf("spool file %q", name)
				}
				time.Sleep(50 * time.Millisecond)
				if n := be.Accepted.Load(); n != 0 {
					t.Errorf("%d backend connections while spooling", n)
				}
			}
			resp, _ := sendUpload(t, addr, body(tc.size), tc.steps(check)...)
			if got := resp.Header.Get("X-Reason"); got != tc.reason {
				t.Errorf("reason %q, want %q", got, tc.reason)
			}
			if reqs := be.Requests(); len(reqs) != 1 || reqs[0].Header.Get("Content-Length") != fmt.Sprint(tc.size) {
				t.Errorf("backend requests %+v", reqs)
			}
			waitSpool(t, dir, 0)
		})
	}
}

// TestUploadNotSpooled: under every threshold the body streams to the
// backend once buffer_backend_connect is reached, without a file and
// without the reason header.
func TestUploadNotSpooled(t *testing.T) {
	addr, dir, be := uploadProxy(t, "buffer_upload_threshold_size = 2000000", "buffer_upload_threshold_time = 2",
		"buffer_upload_threshold_rate = 1000")
	check := func() {
		be.WaitOpen(t, 1) // the backend is asked for once 100k are in
		if f := spoolFiles(t, dir); len(f) != 0 {
			t.Errorf("spool files %v", f)
		}
	}
	resp, _ := sendUpload(t, addr, body(1_000_000), 300_000, check, 100*time.Millisecond)
	if got := resp.Header.Get("X-Reason"); got != "" {
		t.Errorf("reason %q", got)
	}
}

// TestUploadAbort: a client that leaves while its body is spooled leaves
// no file behind, and no backend connection was made.
func TestUploadAbort(t *testing.T) {
	addr, dir, be := uploadProxy(t, "buffer_upload_threshold_size = 100000")
	c := testhttp.Dial(t, addr)
	c.Send("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 500000\r\n\r\n" + body(200_000))
	waitSpool(t, dir, 1)
	c.NC.Close()
	waitSpool(t, dir, 0)
	if n := be.Accepted.Load(); n != 0 {
		t.Errorf("%d backend connections", n)
	}
	testhttp.MustGet(t, addr, "/next")
}

// TestUploadChunked: with buffer_uploads a chunked body (Expect:
// 100-continue answered by plb) is de-chunked into the spool and the
// backend gets a Content-Length; max_chunked_request_size is enforced.
func TestUploadChunked(t *testing.T) {
	addr, dir, be := uploadProxy(t, "max_chunked_request_size = 300000")
	data := body(250_000)
	c := testhttp.Dial(t, addr)
	c.Send("POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
	line, err := c.BR.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("interim response %q, %v", line, err)
	}
	if blank, _ := c.BR.ReadString('\n'); blank != "\r\n" {
		t.Fatalf("after 100 Continue: %q", blank)
	}
	c.Send(fmt.Sprintf("1f4;ext=1\r\n%s\r\n", data[:500]))
	waitSpool(t, dir, 1)
	for off := 500; off < len(data); off += 60_000 {
		end := min(off+60_000, len(data))
		c.Send(fmt.Sprintf("%x\r\n%s\r\n", end-off, data[off:end]))
	}
	c.Send("0\r\n\r\n")
	resp, got := c.Read("POST")
	if resp.StatusCode != 200 || got != data {
		t.Fatalf("status %d, %d bytes", resp.StatusCode, len(got))
	}
	r := be.Requests()[0]
	if r.Header.Get("Content-Length") != "250000" || r.Header.Get("Transfer-Encoding") != "" || r.Header.Get("Expect") != "" {
		t.Errorf("backend head %v", r.Header)
	}
	if r.Header.Get("X-Perlbal-Buffered-Upload-Reason") != "" {
		t.Errorf("a chunked upload has a reason header")
	}
	waitSpool(t, dir, 0)

	// HTTP/1.0 and empty, as 52-chunked-upload.t sends it.
	c = testhttp.Dial(t, addr)
	resp, got = c.Do("POST /empty HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	if resp.StatusCode != 200 || got != "" {
		t.Fatalf("empty chunked: %d %q", resp.StatusCode, got)
	}
	if r := be.Requests()[1]; r.Header.Get("Content-Length") != "0" {
		t.Errorf("empty chunked: backend head %v", r.Header)
	}

	// Over max_chunked_request_size: 413, no file left.
	c = testhttp.Dial(t, addr)
	c.Send("POST /big HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
	big := body(200_000)
	c.Send(fmt.Sprintf("%x\r\n%s\r\n%x\r\n%s\r\n", len(big), big, len(big), big))
	resp, _ = c.Read("POST")
	if resp.StatusCode != 413 {
		t.Fatalf("over max_chunked_request_size: %d", resp.StatusCode)
	}
	waitSpool(t, dir, 0)
	if n := len(be.Requests()); n != 2 {
		t.Errorf("%d backend requests", n)
	}
}

// TestBufferBackendConnect: without buffer_uploads the body is held in
// memory and the backend connection is opened only once
// buffer_backend_connect bytes arrived (or the whole body did);
// Expect: 100-continue is answered by plb meanwhile.
func TestBufferBackendConnect(t *testing.T) {
	be := testhttp.EchoBackend(t)
	ts := startProxy(t, []string{be.Addr}, "", testhttp.ServiceKeys("buffer_backend_connect = 64000"))
	addr := ts.addr()
	data := body(200_000)
	c := testhttp.Dial(t, addr)
	c.Send("POST /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 200000\r\n\r\n")
	if line, _ := c.BR.ReadString('\n'); line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("interim response %q", line)
	}
	c.BR.ReadString('\n')
	c.Send(data[:30_000])
	time.Sleep(200 * time.Millisecond)
	if n := be.Accepted.Load(); n != 0 {
		t.Fatalf("backend connected after 30k of 64k")
	}
	c.Send(data[30_000:70_000])
	be.WaitOpen(t, 1)
	c.Send(data[70_000:])
	resp, got := c.Read("POST")
	if resp.StatusCode != 200 || got != data {
		t.Fatalf("status %d, %d bytes", resp.StatusCode, len(got))
	}
	if r := be.Requests()[0]; r.Header.Get("Expect") != "" {
		t.Errorf("Expect reached the backend")
	}

	// A small body complete with the head goes at once; a held small body
	// goes when complete.
	c.Do("POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
	c.Send("POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhello")
	time.Sleep(50 * time.Millisecond)
	c.Send("world")
	if _, got := c.Read("POST"); got != "helloworld" {
		t.Fatalf("held small body: %q", got)
	}

	// A chunked body is held the same way, then streamed as it came.
	c.Send("POST /chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
	time.Sleep(50 * time.Millisecond)
	c.Send("0\r\n\r\n")
	if _, got := c.Read("POST"); got != "hello" {
		t.Fatalf("held chunked body: %q", got)
	}
}

// TestChunkedLimitStreamed: without buffer_uploads a chunked body streams
// to the backend; past max_chunked_request_size the client gets 413 and
// the backend's request is abandoned (the node is not blamed).
func TestChunkedLimitStreamed(t *testing.T) {
	be := testhttp.EchoBackend(t)
	ts := startProxy(t, []string{be.Addr}, "", testhttp.ServiceKeys("max_chunked_request_size = 100000", "buffer_backend_connect = 0"))
	addr := ts.addr()
	c := testhttp.Dial(t, addr)
	small := body(50_000)
	c.Send(fmt.Sprintf("POST /ok HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(small), small))
	if resp, got := c.Read("POST"); resp.StatusCode != 200 || !strings.Contains(got, small[:100]) {
		t.Fatalf("under the limit: %d (%d bytes)", resp.StatusCode, len(got))
	}
	c2 := testhttp.Dial(t, addr)
	c2.Send("POST /big HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
	big := body(60_000)
	for range 3 {
		c2.Send(fmt.Sprintf("%x\r\n%s\r\n", len(big), big))
	}
	resp, _ := c2.Read("POST")
	if resp.StatusCode != 413 {
		t.Fatalf("over the limit: %d", resp.StatusCode)
	}
	if n := ts.pool.Nodes()[0]; n.Failures.Load() != 0 || n.Down() {
		t.Errorf("node blamed: %d failures", n.Failures.Load())
	}
	testhttp.MustGet(t, addr, "/after")
}
