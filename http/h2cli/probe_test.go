package h2cli

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/plb/plb/health"
)

// check runs p against a with a 5 s deadline.
func check(p health.Probe, a netip.AddrPort) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return p.Check(ctx, a)
}

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
		probe Probe
		ok    bool
	}{
		{Probe{HTTP: health.HTTP{Path: "/up"}}, true},
		{Probe{HTTP: health.HTTP{Path: "/down"}}, false},
		{Probe{}, true},
	} {
		if err := check(c.probe, a); (err == nil) != c.ok {
			t.Errorf("%v: %v, want ok %v", c.probe, err, c.ok)
		}
	}
	// A server of HTTP/1.1 only: it answers the preface's first line.
	h1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer h1.Close()
	go func() {
		for {
			c, err := h1.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64)
				c.Read(buf)
				io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
				c.Read(buf)
			}()
		}
	}()
	start := time.Now()
	err = check(Probe{HTTP: health.HTTP{Path: "/up"}}, netip.MustParseAddrPort(h1.Addr().String()))
	if err == nil || time.Since(start) > 4*time.Second {
		t.Fatalf("an HTTP/1.1 server: %v after %v, want a prompt error", err, time.Since(start))
	}
	if !strings.Contains(err.Error(), "HTTP/2") && !strings.Contains(err.Error(), "status") {
		t.Errorf("error %q does not say what failed", err)
	}
}
