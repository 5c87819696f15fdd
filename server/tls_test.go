package server

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	nethttp "net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/internal/testhttp"
)

// testCA issues certificates for the TLS tests; everything lives in
// t.TempDir().
type testCA struct {
	t    testing.TB
	dir  string
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	pool *x509.CertPool
	pem  string // the CA certificate's file
	next atomic.Int64
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	ca := &testCA{t: t, dir: t.TempDir()}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "plb test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca.key = key
	ca.cert, _ = x509.ParseCertificate(der)
	ca.pool = x509.NewCertPool()
	ca.pool.AddCert(ca.cert)
	ca.pem = filepath.Join(ca.dir, "ca.pem")
	writePEM(t, ca.pem, "CERTIFICATE", der)
	ca.next.Store(1)
	return ca
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// issue writes a certificate for names (and 127.0.0.1) with its key as
// PEM files under prefix and returns their paths and serial number.
func (ca *testCA) issue(prefix string, client bool, names ...string) (certFile, keyFile string, serial int64) {
	t := ca.t
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial = ca.next.Add(1)
	usage := x509.ExtKeyUsageServerAuth
	if client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: prefix},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     names,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = filepath.Join(ca.dir, prefix+"-cert.pem")
	keyFile = filepath.Join(ca.dir, prefix+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", kder)
	return certFile, keyFile, serial
}

// clientConfig trusts ca and asks for name.
func (ca *testCA) clientConfig(name string) *tls.Config {
	return &tls.Config{RootCAs: ca.pool, ServerName: name}
}

// tlsConn is a TLS client connection to a service.
func dialTLS(t *testing.T, addr string, cfg *tls.Config) (*testhttp.Client, *tls.Conn) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(testTimeout))
	tc := tls.Client(nc, cfg)
	if err := tc.Handshake(); err != nil {
		nc.Close()
		t.Fatalf("handshake: %v", err)
	}
	t.Cleanup(func() { tc.Close() })
	return testhttp.NewClient(t, tc), tc
}

// tlsKeys are the TOML lines of a TLS listener with cert and key.
func tlsKeys(cert, key string, more ...string) string {
	return fmt.Sprintf("enable_ssl = true\nssl_cert_file = %q\nssl_key_file = %q\n%s\n", cert, key, strings.Join(more, "\n"))
}

// TestTLSProxyKeepAlive: requests over one TLS connection through a
// reverse_proxy (HTTP/1.1 keep-alive over TLS), the backend told
// X-Forwarded-Proto: https by XFFExtras, and an HTTP/1.0 client closed
// with close_notify (its read ends in a clean EOF).
func TestTLSProxyKeepAlive(t *testing.T) {
	ca := newTestCA(t)
	cert, key, _ := ca.issue("a", false, "a.test")
	be := testhttp.OKBackend(t, "b1")
	ts := startProxy(t, []string{be.Addr}, "", testhttp.ServiceKeys(tlsKeys(cert, key),
		`plugins = ["XFFExtras"]`, "send_backend_proto = true"))
	c, tc := dialTLS(t, ts.addrOf("proxy"), ca.clientConfig("a.test"))
	if p := tc.ConnectionState().NegotiatedProtocol; p != "" && p != "http/1.1" {
		t.Errorf("ALPN %q", p)
	}
	for i := 0; i < 5; i++ {
		resp, body := c.Do(fmt.Sprintf("GET /r%d HTTP/1.1\r\nHost: a.test\r\n\r\n", i))
		if resp.StatusCode != 200 || body != fmt.Sprintf("b1 GET /r%d", i) || resp.Close {
			t.Fatalf("request %d: %d %q close=%v", i, resp.StatusCode, body, resp.Close)
		}
	}
	reqs := be.Requests()
	if len(reqs) != 5 || reqs[0].Header.Get("X-Forwarded-Proto") != "https" {
		t.Fatalf("backend saw %d requests, X-Forwarded-Proto %q", len(reqs), reqs[0].Header.Get("X-Forwarded-Proto"))
	}
	c10, _ := dialTLS(t, ts.addrOf("proxy"), ca.clientConfig("a.test"))
	c10.Send("GET /old HTTP/1.0\r\n\r\n")
	all, err := io.ReadAll(c10.BR)
	if err != nil {
		t.Fatalf("HTTP/1.0 over TLS: %v (no close_notify?)", err)
	}
	if !bytes.HasSuffix(all, []byte("b1 GET /old")) {
		t.Fatalf("HTTP/1.0 over TLS: %q", all)
	}
}

// TestTLSWebServer: keep-alive requests to a web_server over TLS, then a
// 20 MB download (read from the file and encrypted: no sendfile through
// TLS) arriving intact, with a small request on the same connection after
// it.
func TestTLSWebServer(t *testing.T) {
	ca := newTestCA(t)
	cert, key, _ := ca.issue("a", false, "a.test")
	ts, docroot := startWeb(t, tlsKeys(cert, key))
	writeFile(t, filepath.Join(docroot, "small.txt"), "hello over tls")
	big := make([]byte, 20<<20)
	rand.Read(big)
	if err := os.WriteFile(filepath.Join(docroot, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	c, _ := dialTLS(t, ts.addrOf("web"), ca.clientConfig("a.test"))
	for i := 0; i < 3; i++ {
		resp, body := c.Do("GET /small.txt HTTP/1.1\r\nHost: a.test\r\n\r\n")
		if resp.StatusCode != 200 || body != "hello over tls" {
			t.Fatalf("small %d: %d %q", i, resp.StatusCode, body)
		}
	}
	c.Send("GET /big.bin HTTP/1.1\r\nHost: a.test\r\n\r\n")
	resp, err := nethttp.ReadResponse(c.BR, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil || n != int64(len(big)) {
		t.Fatalf("big: %d bytes, %v", n, err)
	}
	if want := sha256.Sum256(big); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("big: content differs")
	}
	if resp, body := c.Do("GET /small.txt HTTP/1.1\r\nHost: a.test\r\n\r\n"); resp.StatusCode != 200 || body != "hello over tls" {
		t.Fatalf("after big: %d %q", resp.StatusCode, body)
	}
	// A plain HTTP request to the TLS port gets a 400 saying so, in clear.
	plain := testhttp.Dial(t, ts.addrOf("web"))
	if resp, body := plain.Do("GET /small.txt HTTP/1.1\r\nHost: a.test\r\n\r\n"); resp.StatusCode != 400 ||
		!strings.Contains(body, "HTTP request to an HTTPS server") {
		t.Fatalf("plain HTTP to the TLS port: %d %q", resp.StatusCode, body)
	}
}

// TestTLSSNI: ssl_certificates adds certificates picked by the client's
// server name; without a match (or without SNI) ssl_cert_file's is sent.
func TestTLSSNI(t *testing.T) {
	ca := newTestCA(t)
	certA, keyA, serialA := ca.issue("a", false, "a.test")
	certB, keyB, serialB := ca.issue("b", false, "b.test", "*.b.test")
	be := testhttp.OKBackend(t, "b1")
	ts := startProxy(t, []string{be.Addr}, "", testhttp.ServiceKeys(tlsKeys(certA, keyA,
		fmt.Sprintf("ssl_certificates = [%q]", certB+":"+keyB))))
	addr := ts.addrOf("proxy")
	for _, tc := range []struct {
		name   string
		serial int64
	}{{"a.test", serialA}, {"b.test", serialB}, {"www.b.test", serialB}, {"", serialA}, {"other.test", serialA}} {
		cfg := &tls.Config{RootCAs: ca.pool, ServerName: tc.name, InsecureSkipVerify: tc.name == "" || tc.name == "other.test"}
		c, conn := dialTLS(t, addr, cfg)
		got := conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
		if got != tc.serial {
			t.Errorf("SNI %q: certificate %d, want %d", tc.name, got, tc.serial)
		}
		if resp, _ := c.Do("GET / HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 200 {
			t.Errorf("SNI %q: %d", tc.name, resp.StatusCode)
		}
	}
}

// TestTLSReload: the certificate files are replaced and the configuration
// reloaded: a new connection gets the new certificate, one opened before
// keeps working with the old.
func TestTLSReload(t *testing.T) {
	ca := newTestCA(t)
	cert, key, serial1 := ca.issue("a", false, "a.test")
	be := testhttp.OKBackend(t, "b1")
	path := filepath.Join(t.TempDir(), "plb.toml")
	text := testhttp.ProxyTOML([]string{be.Addr}, "", testhttp.ServiceKeys(tlsKeys(cert, key)))
	writeFile(t, path, text)
	ts := startServer(t, text)
	addr := ts.addrOf("proxy")
	old, _ := dialTLS(t, addr, ca.clientConfig("a.test"))
	if resp, _ := old.Do("GET /1 HTTP/1.1\r\nHost: a.test\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}

	// A reload that changes nothing keeps the running tls.Config (and its
	// session ticket keys).
	tlsOf := func() *tls.Config {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		return ts.services["proxy"].tls.Load()
	}
	before := tlsOf()
	if err := ts.Reload(path); err != nil {
		t.Fatal(err)
	}
	if tlsOf() != before || before == nil {
		t.Fatal("an unchanged reload rebuilt the TLS config")
	}

	// Renew: same paths, new certificate and key.
	newCert, newKey, serial2 := ca.issue("a2", false, "a.test")
	for from, to := range map[string]string{newCert: cert, newKey: key} {
		b, _ := os.ReadFile(from)
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := ts.Reload(path); err != nil {
		t.Fatal(err)
	}
	if got := ts.addrOf("proxy"); got != addr {
		t.Fatalf("listener moved to %s", got)
	}
	_, tc := dialTLS(t, addr, ca.clientConfig("a.test"))
	if got := tc.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); got != serial2 {
		t.Fatalf("after reload: certificate %d, want %d (old %d)", got, serial2, serial1)
	}
	if resp, body := old.Do("GET /2 HTTP/1.1\r\nHost: a.test\r\n\r\n"); resp.StatusCode != 200 || body != "b1 GET /2" {
		t.Fatalf("old connection after reload: %d %q", resp.StatusCode, body)
	}

	// A reload with a broken key fails with the file named, and changes
	// nothing.
	_, otherKey, _ := ca.issue("other", false, "a.test")
	b, _ := os.ReadFile(otherKey)
	os.WriteFile(key, b, 0o600)
	err := ts.Reload(path)
	if err == nil || !strings.Contains(err.Error(), cert) || !strings.Contains(err.Error(), key) ||
		!strings.Contains(err.Error(), "private key does not match") || !strings.Contains(err.Error(), path+":") {
		t.Fatalf("reload with a mismatched key: %v", err)
	}
	_, tc = dialTLS(t, addr, ca.clientConfig("a.test"))
	if got := tc.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); got != serial2 {
		t.Fatalf("after the failed reload: certificate %d, want %d", got, serial2)
	}
}

// TestTLSConfigErrors: Apply fails with a clear message naming the file
// (and the service's file:line).
func TestTLSConfigErrors(t *testing.T) {
	ca := newTestCA(t)
	cert, key, _ := ca.issue("a", false, "a.test")
	_, otherKey, _ := ca.issue("b", false, "b.test")
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	writeFile(t, garbage, "not a certificate\n")
	web := func(keys string) string {
		return fmt.Sprintf("[global]\nworkers = 1\n\n[service.web]\nrole = \"web_server\"\nlisten = \"127.0.0.1:0\"\ndocroot = %q\n%s", t.TempDir(), keys)
	}
	for _, tc := range []struct {
		keys string
		want []string
	}{
		{"enable_ssl = true\n", []string{"test.toml:4:", "ssl_cert_file 'certs/server-cert.pem'", "no such file"}},
		{tlsKeys(cert, otherKey), []string{"test.toml:4:", "service 'web'", cert, otherKey, "private key does not match"}},
		{tlsKeys(garbage, key), []string{"ssl_cert_file '" + garbage + "'", "PEM"}},
		{tlsKeys(cert, key, fmt.Sprintf("ssl_certificates = [%q]", garbage)), []string{"ssl_certificates '" + garbage + "'"}},
		{tlsKeys(cert, key, "ssl_verify_mode = 3", fmt.Sprintf("ssl_ca_path = %q", t.TempDir())), []string{"ssl_ca_path", "no PEM certificate"}},
	} {
		cfg, err := config.Parse("test.toml", []byte(web(tc.keys)), nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Apply(cfg)
		s.eng.Stop()
		if err == nil {
			t.Errorf("%s: Apply succeeded", tc.keys)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tc.keys, err, w)
			}
		}
	}
}

// TestTLSClientCertificate: with ssl_verify_mode = 3 a client without a
// certificate is refused; one with a certificate from ssl_ca_path's CA is
// served. With 1 a certificate is optional.
func TestTLSClientCertificate(t *testing.T) {
	ca := newTestCA(t)
	cert, key, _ := ca.issue("a", false, "a.test")
	ccert, ckey, _ := ca.issue("client", true)
	caDir := t.TempDir()
	b, _ := os.ReadFile(ca.pem)
	writeFile(t, filepath.Join(caDir, "ca.pem"), string(b))
	be := testhttp.OKBackend(t, "b1")
	for _, mode := range []int{3, 1} {
		ts := startProxy(t, []string{be.Addr}, "", testhttp.ServiceKeys(tlsKeys(cert, key,
			fmt.Sprintf("ssl_verify_mode = %d", mode), fmt.Sprintf("ssl_ca_path = %q", caDir))))
		addr := ts.addrOf("proxy")

		// Without a certificate: the handshake (or, in TLS 1.3, the first
		// read) fails for mode 3.
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(testTimeout))
		tc := tls.Client(nc, ca.clientConfig("a.test"))
		err = tc.Handshake()
		if err == nil {
			io.WriteString(tc, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
			_, err = nethttp.ReadResponse(bufio.NewReader(tc), nil)
		}
		if mode == 3 && (err == nil || !strings.Contains(err.Error(), "certificate")) {
			t.Errorf("mode 3 without a client certificate: %v", err)
		}
		if mode == 1 && err != nil {
			t.Errorf("mode 1 without a client certificate: %v", err)
		}
		tc.Close()

		pair, err := tls.LoadX509KeyPair(ccert, ckey)
		if err != nil {
			t.Fatal(err)
		}
		cfg := ca.clientConfig("a.test")
		cfg.Certificates = []tls.Certificate{pair}
		c, _ := dialTLS(t, addr, cfg)
		if resp, body := c.Do("GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n"); resp.StatusCode != 200 || body != "b1 GET /x" {
			t.Errorf("mode %d with a client certificate: %d %q", mode, resp.StatusCode, body)
		}
	}
}

// TestTLSHandshakesOffLoop: with one event loop, 50 TLS clients
// handshaking at once and 50 that stall in the middle of their
// ClientHello do not hold up a plain HTTP client on the same loop, and
// garbage instead of a ClientHello closes only that connection.
func TestTLSHandshakesOffLoop(t *testing.T) {
	ca := newTestCA(t)
	cert, key, _ := ca.issue("a", false, "a.test")
	be := testhttp.OKBackend(t, "b1")
	ts := startServer(t, fmt.Sprintf(`[global]
workers = 1
[pool.web]
nodes = [%q]
[service.tls]
role = "reverse_proxy"
listen = "127.0.0.1:0"
pool = "web"
%s
%s
[service.plain]
role = "reverse_proxy"
listen = "127.0.0.1:0"
pool = "web"
%s`, be.Addr, testhttp.StdProxy, tlsKeys(cert, key), testhttp.StdProxy))
	tlsAddr, plainAddr := ts.addrOf("tls"), ts.addrOf("plain")

	// Stalled clients: half a ClientHello, then silence.
	for i := 0; i < 50; i++ {
		nc, err := net.Dial("tcp", tlsAddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		nc.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00})
	}
	// Garbage.
	gc, err := net.Dial("tcp", tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	gc.SetDeadline(time.Now().Add(testTimeout))
	gc.Write([]byte("\x17\x03\x03\x00\x05hello, this is not a ClientHello"))

	plain := testhttp.Dial(t, plainAddr)
	var wg sync.WaitGroup
	var okTLS atomic.Int64
	start := make(chan struct{})
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			nc, err := net.DialTimeout("tcp", tlsAddr, 5*time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(testTimeout))
			tc := tls.Client(nc, ca.clientConfig("a.test"))
			io.WriteString(tc, "GET /tls HTTP/1.1\r\nHost: a.test\r\n\r\n")
			resp, err := nethttp.ReadResponse(bufio.NewReader(tc), nil)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode == 200 {
				okTLS.Add(1)
			}
		}()
	}
	close(start)
	var worst time.Duration
	for i := 0; i < 40; i++ {
		t0 := time.Now()
		if resp, _ := plain.Do("GET /plain HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 200 {
			t.Fatalf("plain: %d", resp.StatusCode)
		}
		worst = max(worst, time.Since(t0))
	}
	wg.Wait()
	if okTLS.Load() != 50 {
		t.Errorf("%d of 50 TLS clients served", okTLS.Load())
	}
	if worst > 2*time.Second {
		t.Errorf("a plain request took %v during the handshakes", worst)
	}
	t.Logf("slowest plain request during 50 handshakes: %v", worst)
	if b, _ := io.ReadAll(gc); len(b) != 0 {
		t.Errorf("garbage client got %q", b)
	}
}

// TestTLSBackend: backend_ssl to an httptest TLS server, verified with
// backend_ssl_ca_file against the node's IP, over persistent backend
// connections; an untrusted backend certificate fails the connect (the
// client gets a 503, no request reaches the backend).
func TestTLSBackend(t *testing.T) {
	var conns atomic.Int64
	hts := httptest.NewUnstartedServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		fmt.Fprintf(w, "tls backend %s %v", r.URL.Path, r.TLS != nil)
	}))
	hts.Config.ConnState = func(c net.Conn, st nethttp.ConnState) {
		if st == nethttp.StateNew {
			conns.Add(1)
		}
	}
	hts.StartTLS()
	defer hts.Close()
	caFile := filepath.Join(t.TempDir(), "backend-ca.pem")
	writePEM(t, caFile, "CERTIFICATE", hts.Certificate().Raw)
	node := strings.TrimPrefix(hts.URL, "https://")

	ts := startProxy(t, []string{node}, "", testhttp.ServiceKeys("backend_ssl = true", fmt.Sprintf("backend_ssl_ca_file = %q", caFile)))
	c := testhttp.Dial(t, ts.addrOf("proxy"))
	for i := 0; i < 5; i++ {
		resp, body := c.Do(fmt.Sprintf("GET /b%d HTTP/1.1\r\nHost: x\r\n\r\n", i))
		if resp.StatusCode != 200 || body != fmt.Sprintf("tls backend /b%d true", i) {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d backend connections for 5 requests (persist_backend)", n)
	}

	// Without the CA: verification fails.
	bad := startProxy(t, []string{node}, "server_retry = 100", testhttp.ServiceKeys("backend_ssl = true", `connect_timeout = "2s"`))
	resp, body := testhttp.Get(t, bad.addrOf("proxy"), "/nope")
	if resp.StatusCode < 500 {
		t.Fatalf("untrusted backend: %d %q", resp.StatusCode, body)
	}
	// backend_ssl_verify = false accepts it.
	insecure := startProxy(t, []string{node}, "", testhttp.ServiceKeys("backend_ssl = true", "backend_ssl_verify = false"))
	if body := testhttp.MustGet(t, insecure.addrOf("proxy"), "/insecure"); body != "tls backend /insecure true" {
		t.Fatalf("insecure: %q", body)
	}
}

// BenchmarkTLSProxyKeepAlive is BenchmarkProxyKeepAlive over TLS on the
// client side: one 100-byte response per request over a kept-alive TLS
// connection (1 loop). allocs/op counts the whole process, the
// benchmark's crypto/tls client and its backend too.
func BenchmarkTLSProxyKeepAlive(b *testing.B) {
	ca := newTestCA(b)
	cert, key, _ := ca.issue("bench", false)
	s := benchServer(b, benchProxyTOML(fixedBackend(b), tlsKeys(cert, key)))
	tc, err := tls.Dial("tcp", s.Addr("proxy").String(), ca.clientConfig("127.0.0.1"))
	if err != nil {
		b.Fatal(err)
	}
	defer tc.Close()
	benchRoundTrips(b, tc, "/x", 100)
}
