package health

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

// TestH2CProbe: the http check over h2c (backend_protocol h2c) against
// Go's h2c server: a 2xx passes, a 503 fails, OPTIONS * passes; a
// server that speaks only HTTP/1.1 fails with an error, not a hang.
func TestH2CProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			w.WriteHeader(500)
			return
		}
		if r.URL.Path == "/down" {
			w.WriteHeader(503)
		}
	})
	srv := &http.Server{Handler: h2c.NewHandler(h, &http2.Server{})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	a := netip.MustParseAddrPort(ln.Addr().String())
	for _, c := range []struct {
		probe HTTP
		ok    bool
	}{
		{HTTP{Path: "/up", H2C: true}, true},
		{HTTP{Path: "/down", H2C: true}, false},
		{HTTP{H2C: true}, true},
	} {
		if err := check(c.probe, a, 5*time.Second); (err == nil) != c.ok {
			t.Errorf("%v: %v, want ok %v", c.probe, err, c.ok)
		}
	}
	h1, _ := scriptedServer(t, func(string) string { return "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" })
	start := time.Now()
	err = check(HTTP{Path: "/up", H2C: true}, h1, 5*time.Second)
	if err == nil || time.Since(start) > 4*time.Second {
		t.Fatalf("an HTTP/1.1 server: %v after %v, want a prompt error", err, time.Since(start))
	}
	if !strings.Contains(err.Error(), "HTTP/2") && !strings.Contains(err.Error(), "status") {
		t.Errorf("error %q does not say what failed", err)
	}
}
