package server

import (
	"fmt"
	"testing"

	"github.com/plb/plb/internal/testhttp"
)

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
