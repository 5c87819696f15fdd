package server

import (
	"bytes"
	"net"
	nethttp "net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/plb/plb/internal/testhttp"
)

// h2Client is a raw HTTP/2 client of a test: frames written and read one
// by one.
type h2Client struct {
	t  *testing.T
	nc net.Conn
	fr *http2.Framer
	eb bytes.Buffer
	he *hpack.Encoder
}

// dialH2 connects to addr with h2c's prior knowledge: preface and
// SETTINGS sent.
func dialH2(t *testing.T, addr string) *h2Client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(testTimeout))
	if _, err := nc.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	c := &h2Client{t: t, nc: nc, fr: http2.NewFramer(nc, nc)}
	c.he = hpack.NewEncoder(&c.eb)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := c.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return c
}

// get opens stream id with a GET of path (end: no body follows).
func (c *h2Client) get(id uint32, path string) {
	c.t.Helper()
	c.eb.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "t"}, {":path", path}} {
		c.he.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.eb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		c.t.Fatal(err)
	}
}

// until reads frames until match returns true for one, and returns it;
// it fails the test at a read error (the connection closed first).
func (c *h2Client) until(what string, match func(http2.Frame) bool) http2.Frame {
	c.t.Helper()
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.t.Fatalf("waiting for %s: %v", what, err)
		}
		if match(f) {
			return f
		}
	}
}

// TestHTTP2RapidResetThroughPLB (CVE-2023-44487): a client opening
// streams to a reverse_proxy and resetting each at once gets GOAWAY
// ENHANCE_YOUR_CALM; its streams' exchanges are all gone, and another
// client is served meanwhile.
func TestHTTP2RapidResetThroughPLB(t *testing.T) {
	be := testhttp.OKBackend(t, "b")
	ts := startProxy(t, []string{be.Addr}, "", testhttp.ServiceKeys("http2 = true"))
	addr := ts.addrOf("proxy")
	c := dialH2(t, addr)
	for i := range 1000 {
		id := uint32(2*i + 1)
		c.get(id, "/r")
		c.fr.WriteRSTStream(id, http2.ErrCodeCancel)
	}
	ga := c.until("GOAWAY", func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok }).(*http2.GoAwayFrame)
	if ga.ErrCode != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("GOAWAY %v", ga.ErrCode)
	}
	other := dialH2(t, addr)
	other.get(1, "/other")
	h := other.until("a response", func(f http2.Frame) bool { _, ok := f.(*http2.MetaHeadersFrame); return ok }).(*http2.MetaHeadersFrame)
	if h.PseudoValue("status") != "200" {
		t.Fatalf("the other client got %s", h.PseudoValue("status"))
	}
	sv := ts.services["proxy"]
	testhttp.WaitFor(t, "the reset streams' exchanges gone", func() bool { return sv.h2Streams.Load() == 0 })
}

// TestHTTP2GracefulStop: a graceful stop sends GOAWAY on an HTTP/2
// connection, lets its stream in flight finish, then closes it and ends.
func TestHTTP2GracefulStop(t *testing.T) {
	release := make(chan struct{})
	be := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		if req.URL.Path == "/slow" {
			<-release
		}
		testhttp.Respond(c, 200, "", "done "+req.URL.Path)
		return true
	})
	ts := startProxy(t, []string{be.Addr}, "", testhttp.ServiceKeys("http2 = true"))
	c := dialH2(t, ts.addrOf("proxy"))
	c.get(1, "/slow")
	testhttp.WaitFor(t, "the request at the backend", func() bool { return len(be.Requests()) == 1 })
	ts.Shutdown(true)
	c.until("GOAWAY", func(f http2.Frame) bool { _, ok := f.(*http2.GoAwayFrame); return ok })
	close(release)
	d := c.until("the response's body", func(f http2.Frame) bool { _, ok := f.(*http2.DataFrame); return ok }).(*http2.DataFrame)
	if string(d.Data()) != "done /slow" || !d.StreamEnded() {
		t.Fatalf("body %q, end %v", d.Data(), d.StreamEnded())
	}
	if _, err := c.fr.ReadFrame(); err == nil {
		t.Fatal("the connection stayed open after its last stream")
	}
	c.nc.Close() // else the server lingers for its FIN
	ts.waitDone(5 * time.Second)
}
