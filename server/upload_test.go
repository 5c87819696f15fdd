package server

import (
	"fmt"
	nethttp "net/http"
	"testing"
	"time"

	"github.com/plb/plb/internal/testhttp"
)

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
