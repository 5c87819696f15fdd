package server

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
	env := func(k string) string {
		if k == "PERLBAL_DEBUG_BUFFERED_UPLOADS" {
			return "1"
		}
		return ""
	}
	ts := startServerOpts(t, strings.Replace(testhttp.ProxyTOML([]string{be.Addr}, "", testhttp.ServiceKeys(all...)), "workers = 2", "workers = 1", 1), Options{Env: env})
	return ts.addrOf("proxy"), dir, be
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

// upload sends a POST of data in pieces (sleeping between them), checks
// the spool and the backend after the pieces given by check, and returns
// the response.
func upload(t *testing.T, addr string, data string, steps ...any) (*nethttp.Response, string) {
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

// TestUploadStateNames: the console shows a client reading its body
// first in Perlbal's words.
func TestUploadStateNames(t *testing.T) {
	dir := t.TempDir()
	be := testhttp.EchoBackend(t)
	ts := startProxy(t, []string{be.Addr}, "", testhttp.ServiceKeys("buffer_uploads = true", fmt.Sprintf("buffer_uploads_path = %q", dir),
		"buffer_upload_threshold_size = 100000"))
	addr := ts.addrOf("proxy")
	state := func(want string) {
		t.Helper()
		testhttp.WaitFor(t, "a client in state "+want, func() bool {
			for _, s := range ts.Socks() {
				if s.Info.Class == "Perlbal::ClientProxy" && s.Info.State == want {
					return true
				}
			}
			return false
		})
	}
	c := testhttp.Dial(t, addr)
	c.Send("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 500000\r\n\r\nxx")
	state("buffering_upload")
	c2 := testhttp.Dial(t, addr)
	c2.Send("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\nxx")
	state("buffering_request")
}
