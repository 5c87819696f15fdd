package smtp

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/plb/plb/config"
)

// BenchmarkRelaySession: one whole SMTP session per iteration through an
// smtp_proxy (connect, greeting after the backend's, QUIT, close), with
// the allocations of plb and of the Go client and backend in the same
// process.
func BenchmarkRelaySession(b *testing.B) {
	be := startBackend(b, func(_ *backend, c net.Conn, r *bufio.Reader) {
		io.WriteString(c, "220 bench ESMTP\r\n")
		if _, err := r.ReadString('\n'); err == nil {
			io.WriteString(c, "221 bye\r\n")
		}
	})
	r := startRelay(b, smtpService(config.RoleSMTPProxy, nil), 5, be.addr)
	buf := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		c, err := net.Dial("tcp", r.addr)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			b.Fatal(err)
		}
		io.WriteString(c, "QUIT\r\n")
		if _, err := c.Read(buf); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkRelaySplice: 16 KiB round trips through an established
// tcp_proxy session (the splice: the per-byte path).
func BenchmarkRelaySplice(b *testing.B) {
	be := startBackend(b, func(_ *backend, c net.Conn, r *bufio.Reader) {
		io.Copy(c, r)
	})
	r := startRelay(b, smtpService(config.RoleTCPProxy, nil), 5, be.addr)
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	block := make([]byte, 16<<10)
	back := make([]byte, len(block))
	b.SetBytes(int64(len(block)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(block); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, back); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRelayMessage: one message per iteration (pipelined MAIL,
// RCPT, DATA, 4 KiB of content, the dot) over an established session,
// plain splice (none) against plb reading the commands (xclient), with
// the allocations of plb and of the Go client and backend in the same
// process.
func BenchmarkRelayMessage(b *testing.B) {
	for _, fwd := range []string{config.ForwardNone, config.ForwardXClient} {
		b.Run(fwd, func(b *testing.B) {
			be := startBackend(b, mta("220 bench ESMTP\r\n", "XCLIENT ADDR PORT NAME"))
			r := startRelay(b, smtpService(config.RoleSMTPProxy, func(s *config.Service) { s.ClientIPForwarding = fwd }), 5, be.addr)
			c, err := net.Dial("tcp", r.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			line := func() string {
				l, err := br.ReadString('\n')
				if err != nil {
					b.Fatal(err)
				}
				return l
			}
			line()
			io.WriteString(c, "EHLO bench.test\r\n")
			for l := line(); len(l) > 3 && l[3] == '-'; l = line() {
			}
			msg := []byte("MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n")
			body := []byte("Subject: bench\r\n\r\n" + strings.Repeat("A line of a message, with a dot. And text.\r\n", 95) + ".\r\n")
			b.SetBytes(int64(len(msg) + len(body)))
			b.ReportAllocs()
			for b.Loop() {
				c.Write(msg)
				line()
				line()
				if l := line(); !strings.HasPrefix(l, "354") {
					b.Fatal(l)
				}
				c.Write(body)
				if l := line(); !strings.HasPrefix(l, "250") {
					b.Fatal(l)
				}
			}
		})
	}
}
