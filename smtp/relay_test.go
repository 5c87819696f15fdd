package smtp

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
	"github.com/plb/plb/internal/testutil"
	"github.com/plb/plb/pool"
	"github.com/plb/plb/smtp/proxyproto"
)

// testTimeout bounds every wait of these tests.
const testTimeout = 10 * time.Second

// relay is a running smtp_proxy or tcp_proxy on 127.0.0.1:0.
type relay struct {
	svc  *Service
	pool *pool.Pool
	addr string
	logs *syncBuffer
}

// syncBuffer is a log destination safe for the loop and the test.
type syncBuffer = testutil.SyncBuffer

// smtpService is an smtp_proxy's settings with the defaults and the edits
// of set.
func smtpService(role string, set func(*config.Service)) *config.Service {
	sc := &config.Service{
		Name: "mx", Role: role, ConnectTimeout: 2 * time.Second,
		ClientTimeout: 5 * time.Minute, ServerTimeout: 10 * time.Minute, BannerTimeout: 2 * time.Second,
		ClientIPForwarding: config.ForwardNone,
	}
	if set != nil {
		set(sc)
	}
	return sc
}

// startRelay runs a service of sc in front of nodes (balanced round robin,
// so that tests know the order) with server_retry retry.
func startRelay(t testing.TB, sc *config.Service, retry int, nodes ...string) *relay {
	t.Helper()
	eng, err := engine.New(engine.Config{Loops: 1, Tick: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pool.New("mtas", config.BalanceRoundRobin)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetNodes(nodes); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc := New(sc.Name, &Settings{Svc: sc, Pool: p, ServerRetry: retry, Hostname: "plb.test"}, log)
	ln, err := eng.Listen(engine.ListenConfig{Addr: "127.0.0.1:0", OnAccept: svc.Accept})
	if err != nil {
		t.Fatal(err)
	}
	eng.Start()
	t.Cleanup(func() {
		ln.Close()
		eng.Stop()
	})
	return &relay{svc: svc, pool: p, addr: ln.Addr().String(), logs: logs}
}

// backend is a scripted server on 127.0.0.1:0 running script for each
// connection.
type backend struct {
	addr  string
	conns atomic.Int64
	// got collects what the script records (the PROXY header, ...).
	mu  sync.Mutex
	got []string
}

func (b *backend) record(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = append(b.got, s)
}

func (b *backend) recorded() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.got...)
}

func startBackend(t testing.TB, script func(b *backend, c net.Conn, r *bufio.Reader)) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.conns.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(testTimeout))
				script(b, c, bufio.NewReader(c))
			}()
		}
	}()
	return b
}

// refusedAddr is an address nothing listens on.
func refusedAddr(t *testing.T) string {
	t.Helper()
	return testutil.ClosedAddr(t).String()
}

// mta is a small MTA: greeting, EHLO (with ehlo's extra lines), MAIL,
// RCPT, DATA (answered with the SHA-256 of the message), RSET, NOOP,
// STARTTLS (after which it echoes every byte, as a stand-in for TLS),
// QUIT.
func mta(greeting string, ehlo ...string) func(b *backend, c net.Conn, r *bufio.Reader) {
	return func(b *backend, c net.Conn, r *bufio.Reader) {
		io.WriteString(c, greeting)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			cmd := strings.ToUpper(strings.TrimSpace(line))
			switch {
			case strings.HasPrefix(cmd, "EHLO"):
				b.record(strings.TrimSpace(line))
				var sb strings.Builder
				sb.WriteString("250-mx.test hello\r\n")
				for _, e := range ehlo {
					sb.WriteString("250-" + e + "\r\n")
				}
				sb.WriteString("250 8BITMIME\r\n")
				io.WriteString(c, sb.String())
			case strings.HasPrefix(cmd, "XCLIENT"):
				b.record(strings.TrimRight(line, "\r\n"))
				io.WriteString(c, "220 mx.test ESMTP after XCLIENT\r\n")
			case strings.HasPrefix(cmd, "XFORWARD"):
				b.record(strings.TrimRight(line, "\r\n"))
				io.WriteString(c, "250 2.0.0 Ok\r\n")
			case strings.HasPrefix(cmd, "MAIL"), strings.HasPrefix(cmd, "RCPT"), cmd == "RSET", cmd == "NOOP":
				io.WriteString(c, "250 2.0.0 Ok\r\n")
			case cmd == "DATA":
				io.WriteString(c, "354 End data with <CR><LF>.<CR><LF>\r\n")
				h := sha256.New()
				for {
					l, err := r.ReadSlice('\n')
					if err != nil && err != bufio.ErrBufferFull {
						return
					}
					if string(l) == ".\r\n" {
						break
					}
					h.Write(l)
				}
				io.WriteString(c, "250 2.0.0 Ok: queued as "+hex.EncodeToString(h.Sum(nil))+"\r\n")
			case cmd == "STARTTLS":
				b.record("STARTTLS")
				io.WriteString(c, "220 2.0.0 Ready to start TLS\r\n")
				io.Copy(c, r) // the "TLS" bytes come back as they are
				return
			case cmd == "QUIT":
				io.WriteString(c, "221 2.0.0 Bye\r\n")
				return
			default:
				io.WriteString(c, "502 5.5.2 Error: command not recognized\r\n")
			}
		}
	}
}

// client is a test SMTP client.
type client struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(testTimeout))
	return &client{t: t, c: c, r: bufio.NewReader(c)}
}

// reply reads one whole reply, lines joined.
func (c *client) reply() string {
	c.t.Helper()
	var sb strings.Builder
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("reading a reply after %q: %v", sb.String(), err)
		}
		sb.WriteString(l)
		if len(l) < 4 || l[3] != '-' {
			return sb.String()
		}
	}
}

func (c *client) cmd(line string) string {
	c.t.Helper()
	if _, err := io.WriteString(c.c, line+"\r\n"); err != nil {
		c.t.Fatal(err)
	}
	return c.reply()
}

// expectClosed checks the server closed after what was read.
func (c *client) expectClosed() {
	c.t.Helper()
	if b, err := c.r.ReadByte(); err != io.EOF {
		c.t.Fatalf("not closed: %q %v", b, err)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSMTPSession: a whole session passes through, the greeting and
// multi-line replies as the MTA sent them, and ends with one log line.
func TestSMTPSession(t *testing.T) {
	be := startBackend(t, mta("220-mx.test ESMTP\r\n220-second line\r\n220 third\r\n", "PIPELINING", "SIZE 10240000"))
	r := startRelay(t, smtpService(config.RoleSMTPProxy, nil), 5, be.addr)
	c := dial(t, r.addr)
	if got := c.reply(); got != "220-mx.test ESMTP\r\n220-second line\r\n220 third\r\n" {
		t.Fatalf("greeting %q", got)
	}
	if got := c.cmd("EHLO client.test"); got != "250-mx.test hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n" {
		t.Fatalf("EHLO %q", got)
	}
	// Pipelined (RFC 2920): all three in one write.
	io.WriteString(c.c, "MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n")
	for _, want := range []string{"250", "250", "354"} {
		if got := c.reply(); !strings.HasPrefix(got, want) {
			t.Fatalf("pipelined: %q, want %s", got, want)
		}
	}
	msg := "Subject: hi\r\n\r\nhello\r\n"
	sum := sha256.Sum256([]byte(msg))
	if got := c.cmd(msg + "."); !strings.Contains(got, hex.EncodeToString(sum[:])) {
		t.Fatalf("after the dot: %q", got)
	}
	if got := c.cmd("QUIT"); !strings.HasPrefix(got, "221") {
		t.Fatalf("QUIT: %q", got)
	}
	c.expectClosed()
	waitFor(t, "the session line", func() bool { return strings.Contains(r.logs.String(), "msg=session") })
	line := r.logs.String()
	for _, want := range []string{"client=" + c.c.LocalAddr().String(), "backend=" + be.addr, "tries=1", "term=server_closed", "bytes_in=", "connect_ms=", "wait_ms=", "total_ms="} {
		if !strings.Contains(line, want) {
			t.Errorf("log line lacks %q:\n%s", want, line)
		}
	}
	st := &r.svc.Stats
	if st.Sessions.Load() != 1 || st.Relayed.Load() != 1 || st.BytesIn.Load() == 0 || st.BytesOut.Load() == 0 {
		t.Errorf("stats: sessions %d relayed %d in %d out %d", st.Sessions.Load(), st.Relayed.Load(), st.BytesIn.Load(), st.BytesOut.Load())
	}
	waitFor(t, "no session open", func() bool { return st.Active.Load() == 0 })
}

// TestSMTPBannerFailover: a refused node, a silent one, one greeting 554
// and one sending garbage are each tried and skipped; the client only ever
// sees the good node's greeting; each bad node counts a failure.
func TestSMTPBannerFailover(t *testing.T) {
	silent := startBackend(t, func(b *backend, c net.Conn, r *bufio.Reader) { r.ReadByte() })
	busy := startBackend(t, mta("554 5.3.2 busy, go away\r\n"))
	garbage := startBackend(t, mta("HTTP/1.0 200 OK\r\n"))
	good := startBackend(t, mta("220 good.test ESMTP\r\n"))
	refused := refusedAddr(t)
	sc := smtpService(config.RoleSMTPProxy, func(s *config.Service) { s.BannerTimeout = 200 * time.Millisecond })
	r := startRelay(t, sc, 100, refused, silent.addr, busy.addr, garbage.addr, good.addr)
	for i := range 5 {
		c := dial(t, r.addr)
		if got := c.reply(); got != "220 good.test ESMTP\r\n" {
			t.Fatalf("session %d: greeting %q", i, got)
		}
		if got := c.cmd("QUIT"); !strings.HasPrefix(got, "221") {
			t.Fatalf("QUIT %q", got)
		}
		c.expectClosed()
	}
	for _, n := range r.pool.Nodes() {
		want := int64(1) // each bad node is tried once at least
		if n.Name == good.addr {
			if n.Failures.Load() != 0 {
				t.Errorf("good node: %d failures", n.Failures.Load())
			}
			continue
		}
		if n.Failures.Load() < want {
			t.Errorf("%s: %d failures", n.Name, n.Failures.Load())
		}
	}
	logs := r.logs.String()
	for _, want := range []string{"connection refused", "greeting: timeout", "greeting 554", "greeting: smtp: malformed reply"} {
		if !strings.Contains(logs, want) {
			t.Errorf("no %q in the logs:\n%s", want, logs)
		}
	}
}

// TestSMTPAllDown: with no node answering, the client gets 421 and the
// connection closes; after server_retry sessions the first node is down
// and the 421 comes without trying it, while the last node is only
// suspect: passive evidence alone never takes out most of a pool (the
// health monitor's probe decides, which this harness does not run).
func TestSMTPAllDown(t *testing.T) {
	r := startRelay(t, smtpService(config.RoleSMTPProxy, nil), 2, refusedAddr(t), refusedAddr(t))
	for range 3 {
		c := dial(t, r.addr)
		if got := c.reply(); got != "421 plb.test Service not available\r\n" {
			t.Fatalf("got %q", got)
		}
		c.expectClosed()
	}
	down, suspect := 0, 0
	for _, n := range r.pool.Nodes() {
		s, _ := n.Suspect()
		switch {
		case n.Down() && n.Failures.Load() == 2:
			down++
		case s && n.Failures.Load() == 3:
			suspect++
		default:
			t.Errorf("%s: down %v, suspect %v, %d failures", n.Name, n.Down(), s, n.Failures.Load())
		}
	}
	if down != 1 || suspect != 1 {
		t.Errorf("%d down (2 failures, then not tried), %d suspect (tried by every session); want 1 and 1", down, suspect)
	}
	if n := r.svc.Stats.NoBackend.Load(); n != 3 {
		t.Errorf("no_backend %d", n)
	}
}

// TestSMTPEarlyTalker: bytes a client sends before the greeting reach the
// backend after it; with smtp_reject_early_talkers the client gets 554
// and the backend nothing.
func TestSMTPEarlyTalker(t *testing.T) {
	slow := func(b *backend, c net.Conn, r *bufio.Reader) {
		time.Sleep(200 * time.Millisecond)
		if r.Buffered() > 0 {
			b.record("bytes before the greeting")
		}
		mta("220 slow.test ESMTP\r\n")(b, c, r)
	}
	be := startBackend(t, slow)
	r := startRelay(t, smtpService(config.RoleSMTPProxy, nil), 5, be.addr)
	c := dial(t, r.addr)
	io.WriteString(c.c, "EHLO early.test\r\n")
	if got := c.reply(); got != "220 slow.test ESMTP\r\n" {
		t.Fatalf("greeting %q", got)
	}
	if got := c.reply(); !strings.HasPrefix(got, "250-mx.test") {
		t.Fatalf("EHLO reply %q", got)
	}
	if got := be.recorded(); len(got) != 1 || got[0] != "EHLO early.test" {
		t.Fatalf("backend saw %q", got)
	}

	be2 := startBackend(t, slow)
	r2 := startRelay(t, smtpService(config.RoleSMTPProxy, func(s *config.Service) { s.SMTPRejectEarlyTalkers = true }), 5, be2.addr)
	c2 := dial(t, r2.addr)
	io.WriteString(c2.c, "EHLO early.test\r\n")
	if got := c2.reply(); !strings.HasPrefix(got, "554 5.5.1 plb.test ") {
		t.Fatalf("early talker: %q", got)
	}
	c2.expectClosed()
	time.Sleep(300 * time.Millisecond)
	if got := be2.recorded(); len(got) != 0 {
		t.Fatalf("backend saw %q", got)
	}
	if r2.svc.Stats.EarlyTalkers.Load() != 1 {
		t.Errorf("early talkers %d", r2.svc.Stats.EarlyTalkers.Load())
	}
	waitFor(t, "the session line", func() bool { return strings.Contains(r2.logs.String(), "term=early_talker") })
}

// proxyHeaderBackend records the PROXY header (v1 line or v2 block) its
// clients send first, then runs mta.
func proxyHeaderBackend(v2 bool) func(b *backend, c net.Conn, r *bufio.Reader) {
	return func(b *backend, c net.Conn, r *bufio.Reader) {
		if v2 {
			head := make([]byte, 16)
			if _, err := io.ReadFull(r, head); err != nil {
				return
			}
			rest := make([]byte, int(head[14])<<8|int(head[15]))
			if _, err := io.ReadFull(r, rest); err != nil {
				return
			}
			b.record(string(head) + string(rest))
		} else {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			b.record(l)
		}
		mta("220 proxied.test ESMTP\r\n")(b, c, r)
	}
}

// TestSMTPProxyProtocol: the header is the first bytes the backend gets,
// exactly, naming the client and plb's listening address.
func TestSMTPProxyProtocol(t *testing.T) {
	for _, tc := range []struct {
		mode string
		v2   bool
	}{{config.ForwardProxyV1, false}, {config.ForwardProxyV2, true}} {
		t.Run(tc.mode, func(t *testing.T) {
			be := startBackend(t, proxyHeaderBackend(tc.v2))
			r := startRelay(t, smtpService(config.RoleSMTPProxy, func(s *config.Service) { s.ClientIPForwarding = tc.mode }), 5, be.addr)
			c := dial(t, r.addr)
			if got := c.reply(); got != "220 proxied.test ESMTP\r\n" {
				t.Fatalf("greeting %q", got)
			}
			c.cmd("QUIT")
			src := netip.MustParseAddrPort(c.c.LocalAddr().String())
			dst := netip.MustParseAddrPort(r.addr)
			var want string
			if tc.v2 {
				want = string(proxyproto.AppendV2(nil, src, dst))
				// The bytes of the specification, not only our writer's.
				lit := "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\x7f\x00\x00\x01\x7f\x00\x00\x01" +
					string([]byte{byte(src.Port() >> 8), byte(src.Port()), byte(dst.Port() >> 8), byte(dst.Port())})
				if want != lit {
					t.Fatalf("writer %q, spec %q", want, lit)
				}
			} else {
				want = fmt.Sprintf("PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\n", src.Port(), dst.Port())
			}
			if got := be.recorded(); len(got) != 1 || got[0] != want {
				t.Fatalf("backend got %q, want %q", got, want)
			}
		})
	}
}

// TestSMTPXClient: plb says EHLO, sees XCLIENT offered, sends the
// client's address, and relays the 220 that follows as the greeting; a
// backend that does not offer XCLIENT is a failure (never a session that
// would show plb's address as the client's).
func TestSMTPXClient(t *testing.T) {
	be := startBackend(t, mta("220 first.test ESMTP\r\n", "XCLIENT NAME ADDR PORT PROTO HELO LOGIN"))
	xc := func(s *config.Service) { s.ClientIPForwarding = config.ForwardXClient }
	r := startRelay(t, smtpService(config.RoleSMTPProxy, xc), 5, be.addr)
	c := dial(t, r.addr)
	if got := c.reply(); got != "220 mx.test ESMTP after XCLIENT\r\n" {
		t.Fatalf("greeting %q", got)
	}
	if got := c.cmd("EHLO client.test"); !strings.HasPrefix(got, "250-mx.test") {
		t.Fatalf("EHLO %q", got)
	}
	c.cmd("QUIT")
	want := []string{"EHLO plb.test", "XCLIENT NAME=[UNAVAILABLE] ADDR=127.0.0.1 PORT=" + fmt.Sprint(c.c.LocalAddr().(*net.TCPAddr).Port), "EHLO client.test"}
	if got := be.recorded(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("backend saw %q, want %q", got, want)
	}

	plain := startBackend(t, mta("220 plain.test ESMTP\r\n", "PIPELINING"))
	r2 := startRelay(t, smtpService(config.RoleSMTPProxy, xc), 5, plain.addr)
	c2 := dial(t, r2.addr)
	if got := c2.reply(); !strings.HasPrefix(got, "421 ") {
		t.Fatalf("XCLIENT not offered: %q", got)
	}
	if !strings.Contains(r2.logs.String(), "XCLIENT not offered") {
		t.Errorf("logs:\n%s", r2.logs.String())
	}

	if got := string(AppendXClient(nil, netip.MustParseAddrPort("[2001:db8::1]:2525"))); got != "XCLIENT NAME=[UNAVAILABLE] ADDR=IPV6:2001:db8::1 PORT=2525\r\n" {
		t.Errorf("IPv6: %q", got)
	}
}

// TestSMTPBigData: a 50 MB message passes intact, both ways of the
// splice under flow control.
func TestSMTPBigData(t *testing.T) {
	be := startBackend(t, mta("220 big.test ESMTP\r\n"))
	r := startRelay(t, smtpService(config.RoleSMTPProxy, nil), 5, be.addr)
	c := dial(t, r.addr)
	c.reply()
	c.cmd("EHLO client.test")
	c.cmd("MAIL FROM:<a@b.test>")
	c.cmd("RCPT TO:<c@d.test>")
	if got := c.cmd("DATA"); !strings.HasPrefix(got, "354") {
		t.Fatal(got)
	}
	// 50 MB of 76-column base64-like lines.
	line := []byte(strings.Repeat("QUJDREVGR0hJSktMTU5P", 4)[:76] + "\r\n")
	const size = 50 << 20
	h := sha256.New()
	w := bufio.NewWriterSize(c.c, 64<<10)
	sent := 0
	for i := 0; sent < size; i++ {
		l := line
		l[0] = byte('A' + i%26)
		w.Write(l)
		h.Write(l)
		sent += len(l)
	}
	w.WriteString(".\r\n")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := c.reply(); got != "250 2.0.0 Ok: queued as "+hex.EncodeToString(h.Sum(nil))+"\r\n" {
		t.Fatalf("after 50 MB: %q", got)
	}
	c.cmd("QUIT")
	c.expectClosed()
	if in := r.svc.Stats.BytesIn.Load(); in < size {
		t.Errorf("bytes in %d", in)
	}
}

// TestSMTPStartTLS: after STARTTLS plb passes the bytes that follow
// untouched, whatever they are (a TLS handshake it does not read).
func TestSMTPStartTLS(t *testing.T) {
	be := startBackend(t, mta("220 tls.test ESMTP\r\n", "STARTTLS"))
	r := startRelay(t, smtpService(config.RoleSMTPProxy, nil), 5, be.addr)
	c := dial(t, r.addr)
	c.reply()
	if got := c.cmd("EHLO client.test"); !strings.Contains(got, "STARTTLS") {
		t.Fatal(got)
	}
	if got := c.cmd("STARTTLS"); !strings.HasPrefix(got, "220 2.0.0") {
		t.Fatal(got)
	}
	hello := make([]byte, 256<<10)
	rand.Read(hello)
	copy(hello, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03") // a ClientHello's start
	go func() { c.c.Write(hello) }()
	back := make([]byte, len(hello))
	if _, err := io.ReadFull(c.r, back); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, hello) {
		t.Fatal("bytes after STARTTLS changed")
	}
}

// TestSMTPTimeouts: the client's silence on its turn ends the session at
// client_timeout; the backend's silence on its turn at server_timeout.
func TestSMTPTimeouts(t *testing.T) {
	be := startBackend(t, mta("220 t.test ESMTP\r\n"))
	r := startRelay(t, smtpService(config.RoleSMTPProxy, func(s *config.Service) { s.ClientTimeout = 200 * time.Millisecond }), 5, be.addr)
	c := dial(t, r.addr)
	c.reply()
	start := time.Now()
	c.expectClosed()
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("closed after %v", d)
	}
	waitFor(t, "term=client_timeout", func() bool { return strings.Contains(r.logs.String(), "term=client_timeout") })

	mute := startBackend(t, func(b *backend, c net.Conn, r *bufio.Reader) {
		io.WriteString(c, "220 mute.test ESMTP\r\n")
		io.Copy(io.Discard, r) // never answers
	})
	r2 := startRelay(t, smtpService(config.RoleSMTPProxy, func(s *config.Service) {
		s.ServerTimeout = 200 * time.Millisecond
		s.ClientTimeout = time.Minute
	}), 5, mute.addr)
	c2 := dial(t, r2.addr)
	c2.reply()
	io.WriteString(c2.c, "EHLO client.test\r\n")
	c2.expectClosed()
	waitFor(t, "term=server_timeout", func() bool { return strings.Contains(r2.logs.String(), "term=server_timeout") })
}

// TestTCPProxy: a tcp_proxy splices at once (after a PROXY v2 header), and
// a client's half-close reaches the backend, whose answer still comes back.
func TestTCPProxy(t *testing.T) {
	be := startBackend(t, func(b *backend, c net.Conn, r *bufio.Reader) {
		head := make([]byte, 28)
		if _, err := io.ReadFull(r, head); err != nil {
			return
		}
		b.record(string(head))
		data, _ := io.ReadAll(r) // until the client's half-close
		fmt.Fprintf(c, "got %d bytes", len(data))
	})
	r := startRelay(t, smtpService(config.RoleTCPProxy, func(s *config.Service) { s.ClientIPForwarding = config.ForwardProxyV2 }), 5, be.addr)
	c := dial(t, r.addr)
	payload := bytes.Repeat([]byte("x"), 3<<20)
	if _, err := c.c.Write(payload); err != nil {
		t.Fatal(err)
	}
	c.c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c.r)
	if err != nil || string(got) != fmt.Sprintf("got %d bytes", len(payload)) {
		t.Fatalf("%q %v", got, err)
	}
	if h := be.recorded(); len(h) != 1 || !strings.HasPrefix(h[0], "\r\n\r\n\x00\r\nQUIT\n\x21\x11") {
		t.Fatalf("header %q", h)
	}
	waitFor(t, "the session line", func() bool { return strings.Contains(r.logs.String(), "msg=session") })
	if !strings.Contains(r.logs.String(), fmt.Sprintf("bytes_in=%d", len(payload))) {
		t.Errorf("log:\n%s", r.logs.String())
	}
}

// TestTCPProxyNoBackend: a tcp_proxy with nothing to reach closes the
// client without a byte.
func TestTCPProxyNoBackend(t *testing.T) {
	r := startRelay(t, smtpService(config.RoleTCPProxy, nil), 5, refusedAddr(t))
	c := dial(t, r.addr)
	c.expectClosed()
}
