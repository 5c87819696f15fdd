package smtp

import (
	"bufio"
	"io"
	"net"
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
