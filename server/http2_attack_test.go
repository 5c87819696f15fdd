package server

import (
	"bytes"
	"fmt"
	"net"
	nethttp "net/http"
	"os"
	"path/filepath"
	"strings"
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
	testhttp.WaitFor(t, "the reset streams' exchanges gone", func() bool { return sv.h2Stats.Streams.Load() == 0 })
}

// TestHTTP2GracefulStop: a graceful stop sends GOAWAY on an HTTP/2
// connection, lets its stream in flight finish, then closes it and ends.
func TestHTTP2GracefulStop(t *testing.T) {
	be, release := testhttp.HoldBackend(t, "done", "/slow")
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

// TestHTTP2FloodsThroughPLB: a CONTINUATION flood ends its connection
// (GOAWAY ENHANCE_YOUR_CALM); a PING flood from a client that does not
// read its answers makes plb stop reading it once its output is full,
// then close it when none of that output went for idle_timeout; an HPACK
// bomb is answered 431; another client is served all along.
func TestHTTP2FloodsThroughPLB(t *testing.T) {
	be := testhttp.OKBackend(t, "b")
	ts := startProxy(t, []string{be.Addr}, "", testhttp.ServiceKeys("http2 = true",
		`idle_timeout = "1s"`, `persist_client_idle_timeout = "1s"`))
	addr := ts.addrOf("proxy")
	served := func() {
		t.Helper()
		o := dialH2(t, addr)
		o.get(1, "/other")
		h := o.until("a response", func(f http2.Frame) bool { _, ok := f.(*http2.MetaHeadersFrame); return ok }).(*http2.MetaHeadersFrame)
		if h.PseudoValue("status") != "200" {
			t.Fatalf("another client got %s", h.PseudoValue("status"))
		}
	}
	goneOrGoAway := func(c *h2Client, what string) {
		t.Helper()
		for {
			f, err := c.fr.ReadFrame()
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("%s: the connection is still open", what)
			}
			if err != nil {
				return // closed
			}
			if ga, ok := f.(*http2.GoAwayFrame); ok {
				if ga.ErrCode != http2.ErrCodeEnhanceYourCalm {
					t.Fatalf("%s: GOAWAY %v", what, ga.ErrCode)
				}
				return
			}
		}
	}

	c := dialH2(t, addr)
	c.eb.Reset()
	c.he.WriteField(hpack.HeaderField{Name: ":method", Value: "GET"})
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: c.eb.Bytes()})
	junk := bytes.Repeat([]byte{0x40, 0x01, 'a', 0x01, 'b'}, 3000)
	for range 100 {
		if c.fr.WriteContinuation(1, false, junk) != nil {
			break // closed by plb
		}
	}
	goneOrGoAway(c, "CONTINUATION flood")
	served()

	// A PING flood without reading: plb's answers fill the socket
	// buffers, then pile up in plb until it ends the connection. At most
	// 64 MB of PINGs (4 M frames), a megabyte per write.
	p := dialH2(t, addr)
	pings := make([]byte, 0, 1<<20)
	for len(pings)+17 <= cap(pings) {
		pings = append(pings, 0, 0, 8, 6, 0, 0, 0, 0, 0, 'p', 'i', 'n', 'g', 'p', 'o', 'n', 'g')
	}
	p.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	for range 64 {
		if _, err := p.nc.Write(pings); err != nil {
			break
		}
	}
	goneOrGoAway(p, "PING flood")
	served()

	b := dialH2(t, addr)
	b.eb.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "t"}, {":path", "/"}} {
		b.he.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	b.he.WriteField(hpack.HeaderField{Name: "x-big", Value: string(bytes.Repeat([]byte("b"), 3000))})
	block := append(b.eb.Bytes(), bytes.Repeat([]byte{0x80 | 62}, 4000)...)
	b.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: true, EndHeaders: true})
	h := b.until("the answer", func(f http2.Frame) bool { _, ok := f.(*http2.MetaHeadersFrame); return ok }).(*http2.MetaHeadersFrame)
	if h.PseudoValue("status") != "431" {
		t.Fatalf("an HPACK bomb got %s", h.PseudoValue("status"))
	}
	served()
}

// TestHTTP2ZeroWindowStall: a client that opens no window for a
// response, large (its exchange still reading the backend) or small (the
// exchange over, the body all waiting in the stream), does not hold it
// for ever: the stream is reset once idle_timeout passed without any of
// it going out.
func TestHTTP2ZeroWindowStall(t *testing.T) {
	for _, size := range []int{8 << 20, 10 << 10} {
		big := bytes.Repeat([]byte("z"), size)
		be := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
			testhttp.Respond(c, 200, "", string(big))
			return true
		})
		ts := startProxy(t, []string{be.Addr}, "", testhttp.ServiceKeys("http2 = true", `idle_timeout = "1s"`, `buffer_size = "64k"`, "buffer_dir_size = 0"))
		c := dialH2(t, ts.addrOf("proxy"))
		c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		c.get(1, "/big")
		rst := c.until("RST_STREAM", func(f http2.Frame) bool { _, ok := f.(*http2.RSTStreamFrame); return ok })
		if rst.Header().StreamID != 1 {
			t.Fatalf("%d bytes: RST_STREAM on %d", size, rst.Header().StreamID)
		}
		sv := ts.services["proxy"]
		testhttp.WaitFor(t, "the stalled exchange gone", func() bool { return sv.h2Stats.Streams.Load() == 0 })
	}
}

// TestHTTP2EarlyAnswer: a role that answers before the request body is
// whole (a web_server's GET) leaves the stream half open: the body the
// client still sends is given back to its windows unread (20 streams of
// 64 KiB pass the 1 MiB connection window), and a client that never ends
// its request gets RST_STREAM NO_ERROR after idle_timeout.
func TestHTTP2EarlyAnswer(t *testing.T) {
	dir := webRoot(t, map[string]string{"f.txt": "early\n"})
	ts := startServer(t, webTOML(dir, "http2 = true\nidle_timeout = \"1s\""))
	c := dialH2(t, ts.addrOf("web"))
	chunk := make([]byte, 16<<10)
	for i := range 20 {
		id := uint32(2*i + 1)
		c.eb.Reset()
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "t"}, {":path", "/f.txt"}} {
			c.he.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.eb.Bytes(), EndHeaders: true})
		c.until("the answer", func(f http2.Frame) bool {
			d, ok := f.(*http2.DataFrame)
			return ok && d.StreamID == id && d.StreamEnded()
		})
		for k := range 4 {
			c.fr.WriteData(id, k == 3, chunk)
		}
	}
	c.eb.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "t"}, {":path", "/f.txt"}} {
		c.he.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 41, BlockFragment: c.eb.Bytes(), EndHeaders: true})
	f := c.until("RST_STREAM or GOAWAY", func(f http2.Frame) bool {
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			return f.StreamID == 41
		case *http2.GoAwayFrame:
			return true
		}
		return false
	})
	if rst, ok := f.(*http2.RSTStreamFrame); !ok || rst.ErrCode != http2.ErrCodeNo {
		t.Fatalf("the half-open stream ended with %v", f)
	}
}

// TestHTTP2Counted: show service and /metrics count a service's HTTP/2
// connections and streams.
func TestHTTP2Counted(t *testing.T) {
	be := testhttp.OKBackend(t, "b")
	ts := startServer(t, consoleTOML([]string{be.Addr}, testhttp.ServiceKeys("http2 = true")))
	c := dialH2(t, ts.addrOf("proxy"))
	for i := range 3 {
		c.get(uint32(2*i+1), "/x")
		c.until("an answer", func(f http2.Frame) bool { d, ok := f.(*http2.DataFrame); return ok && d.StreamEnded() })
	}
	con := dialConsole(t, ts.addrOf("mgmt"))
	found := false
	for _, l := range con.do("show service proxy") {
		if l == "         http2: 1 connections, 0 streams (3 in all)" {
			found = true
		}
	}
	if !found {
		t.Fatalf("show service: %q", con.do("show service proxy"))
	}
	m := scrape(t, ts.addrOf("mgmt"))
	if m[`plb_http2_connections{service="proxy"}`] != 1 || m[`plb_http2_streams_total{service="proxy"}`] != 3 {
		t.Fatalf("metrics: connections %v, streams %v", m[`plb_http2_connections{service="proxy"}`], m[`plb_http2_streams_total{service="proxy"}`])
	}
}

// TestHTTP2ExchangeParked: sequential GETs on one HTTP/2 connection reuse
// one exchange (the role keeps its pair open, as an HTTP/1.1 client's
// keep-alive connection); a request with a body is never followed by
// another on its pair (what the role left unread of it would be read as
// the next request), so the GET after it gets a new one; every answer is
// its own request's.
func TestHTTP2ExchangeParked(t *testing.T) {
	be := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		testhttp.Respond(c, 200, "", req.Method+" "+req.URL.Path+" "+string(body))
		return true
	})
	ts := startProxy(t, []string{be.Addr}, "", testhttp.ServiceKeys("http2 = true"))
	c := dialH2(t, ts.addrOf("proxy"))
	body := func(id uint32) string {
		t.Helper()
		d := c.until("an answer", func(f http2.Frame) bool { d, ok := f.(*http2.DataFrame); return ok && d.StreamID == id })
		return string(d.(*http2.DataFrame).Data())
	}
	id := uint32(1)
	for i := range 20 {
		c.get(id, fmt.Sprintf("/g%d", i))
		if got, want := body(id), fmt.Sprintf("GET /g%d ", i); got != want {
			t.Fatalf("stream %d: %q, want %q", id, got, want)
		}
		id += 2
	}
	st := &ts.services["proxy"].h2Stats
	if n := st.Pairs.Load(); n != 1 {
		t.Fatalf("20 sequential GETs made %d pairs", n)
	}
	c.eb.Reset()
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", "t"}, {":path", "/p"}, {"content-length", "4"}} {
		c.he.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.eb.Bytes(), EndHeaders: true})
	c.fr.WriteData(id, true, []byte("data"))
	if got := body(id); got != "POST /p data" {
		t.Fatalf("POST: %q", got)
	}
	id += 2
	c.get(id, "/after")
	if got := body(id); got != "GET /after " {
		t.Fatalf("GET after the POST: %q", got)
	}
	if n := st.Pairs.Load(); n != 2 {
		t.Fatalf("the POST's pair reused: %d pairs", n)
	}
}

// TestHTTP2AccessLog: the access log of a reverse_proxy and of a
// web_server says HTTP/2.0 for requests that came over HTTP/2.
func TestHTTP2AccessLog(t *testing.T) {
	be := testhttp.OKBackend(t, "b")
	dir := t.TempDir()
	plog, wlog := filepath.Join(dir, "proxy.log"), filepath.Join(dir, "web.log")
	docroot := webRoot(t, map[string]string{"f.txt": "hello"})
	ts := startServer(t, testhttp.ProxyTOML([]string{be.Addr}, "", testhttp.ServiceKeys("http2 = true", fmt.Sprintf("access_log = %q", plog)))+
		fmt.Sprintf("\n[service.files]\nrole = \"web_server\"\nlisten = \"127.0.0.1:0\"\ndocroot = %q\nhttp2 = true\naccess_log = %q\n", docroot, wlog))
	for _, tc := range []struct{ addr, path, log, want string }{
		{ts.addrOf("proxy"), "/x", plog, `"GET /x HTTP/2.0" 200 `},
		{ts.addrOf("files"), "/f.txt", wlog, `"GET /f.txt HTTP/2.0" 200 5 `},
	} {
		c := dialH2(t, tc.addr)
		c.get(1, tc.path)
		c.until("the answer", func(f http2.Frame) bool { d, ok := f.(*http2.DataFrame); return ok && d.StreamEnded() })
		testhttp.WaitFor(t, tc.log, func() bool {
			b, _ := os.ReadFile(tc.log)
			return strings.Contains(string(b), tc.want)
		})
	}
}

// TestHTTP2SlowClientWholeResponse: a client that opens its window slowly
// gets all of a 1 MiB response, whether the role keeps each stream's pair
// open after it (persist_client) or closes it (the default): a close
// behind a paused exchange is no reset.
func TestHTTP2SlowClientWholeResponse(t *testing.T) {
	const size = 1 << 20
	big := string(bytes.Repeat([]byte("y"), size))
	be := testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		testhttp.Respond(c, 200, "", big)
		return true
	})
	for _, persist := range []string{"true", "false"} {
		ts := startProxy(t, []string{be.Addr}, "", testhttp.ServiceKeys("http2 = true", "persist_client = "+persist))
		c := dialH2(t, ts.addrOf("proxy"))
		c.get(1, "/big")
		got, how := 0, ""
		for how == "" {
			f, err := c.fr.ReadFrame()
			if err != nil {
				how = "read error " + err.Error()
				break
			}
			switch f := f.(type) {
			case *http2.DataFrame:
				if f.StreamID != 1 {
					continue
				}
				got += len(f.Data())
				if n := uint32(len(f.Data())); n > 0 {
					time.Sleep(2 * time.Millisecond) // a slow reader
					c.fr.WriteWindowUpdate(0, n)
					c.fr.WriteWindowUpdate(1, n)
				}
				if f.StreamEnded() {
					how = "END_STREAM"
				}
			case *http2.RSTStreamFrame:
				if f.StreamID == 1 {
					how = "RST_STREAM " + f.ErrCode.String()
				}
			case *http2.GoAwayFrame:
				how = "GOAWAY"
			}
		}
		if got != size || how != "END_STREAM" {
			t.Errorf("persist_client=%s: a slow client got %d of %d bytes, then %s", persist, got, size, how)
		}
	}
}
