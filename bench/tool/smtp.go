package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// smtpSink is an SMTP server that accepts every message and discards it:
// greeting, EHLO (multi-line: PIPELINING, 8BITMIME, SIZE), HELO, MAIL,
// RCPT, DATA, RSET, NOOP, QUIT. Replies are flushed when the client's
// bytes are all read, so pipelined commands get their replies together.
// Connections that close at once or after EHLO (health checks) are fine.
func smtpSink(args []string) error {
	fs := flag.NewFlagSet("smtpsink", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	name := fs.String("name", "sink.bench", "host name in the greeting and EHLO reply")
	fs.Parse(args)
	greeting := []byte("220 " + *name + " ESMTP bench sink\r\n")
	ehlo := []byte("250-" + *name + "\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 52428800\r\n")
	bufs := &sync.Pool{New: func() any {
		return &sinkBuf{r: bufio.NewReaderSize(nil, 16<<10), w: bufio.NewWriterSize(nil, 4<<10)}
	}}
	return serveTCP(*addr, func(c net.Conn) { sinkConn(c, bufs, greeting, ehlo) })
}

type sinkBuf struct {
	r *bufio.Reader
	w *bufio.Writer
}

func sinkConn(c net.Conn, bufs *sync.Pool, greeting, ehlo []byte) {
	defer c.Close()
	b := bufs.Get().(*sinkBuf)
	b.r.Reset(c)
	b.w.Reset(c)
	defer func() { b.r.Reset(nil); b.w.Reset(nil); bufs.Put(b) }()
	br, bw := b.r, b.w
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	bw.Write(greeting)
	if bw.Flush() != nil {
		return
	}
	inData, midLine := false, false
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			midLine = true // a long line: its rest comes next
			continue
		}
		if err != nil {
			return
		}
		if midLine {
			midLine = false
			if !inData {
				bw.WriteString("500 5.5.2 line too long\r\n")
			}
		} else if inData {
			if (len(line) == 3 && line[0] == '.' && line[1] == '\r') || (len(line) == 2 && line[0] == '.') {
				inData = false
				bw.WriteString("250 2.0.0 Ok: queued\r\n")
			}
		} else {
			var verb []byte
			if len(line) >= 4 {
				verb = line[:4]
			}
			switch {
			case bytes.EqualFold(verb, []byte("EHLO")):
				bw.Write(ehlo)
			case bytes.EqualFold(verb, []byte("HELO")):
				bw.WriteString("250 sink.bench\r\n")
			case bytes.EqualFold(verb, []byte("MAIL")), bytes.EqualFold(verb, []byte("RCPT")),
				bytes.EqualFold(verb, []byte("RSET")), bytes.EqualFold(verb, []byte("NOOP")):
				bw.WriteString("250 2.0.0 Ok\r\n")
			case bytes.EqualFold(verb, []byte("DATA")):
				inData = true
				bw.WriteString("354 End data with <CR><LF>.<CR><LF>\r\n")
			case bytes.EqualFold(verb, []byte("QUIT")):
				bw.WriteString("221 2.0.0 Bye\r\n")
				bw.Flush()
				return
			default:
				bw.WriteString("502 5.5.2 Error: command not recognized\r\n")
			}
		}
		if br.Buffered() == 0 && bw.Flush() != nil {
			return
		}
	}
}

// tally counts errors by kind. Safe from any goroutine.
type tally struct {
	mu sync.Mutex
	n  map[string]int64
}

func (t *tally) add(kind string) {
	t.mu.Lock()
	if t.n == nil {
		t.n = map[string]int64{}
	}
	t.n[kind]++
	t.mu.Unlock()
}

func (t *tally) total() (n int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, v := range t.n {
		n += v
	}
	return n
}

// String lists the kinds, most frequent first: "dial: 3, greeting 421: 1".
func (t *tally) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	kinds := make([]string, 0, len(t.n))
	for k := range t.n {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return t.n[kinds[i]] > t.n[kinds[j]] })
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%s: %d", k, t.n[k])
	}
	return strings.Join(parts, ", ")
}

// smtpLoad runs c workers for d: each opens a connection, reads the
// greeting, sends EHLO, then per-conn messages (MAIL, RCPT, DATA, the
// body, the dot; one command at a time, each waiting for its reply), then
// QUIT, and starts over. A message counts when the server answers 250 to
// its dot before d is over. Prints one line of figures; errors by kind on
// stderr.
func smtpLoad(args []string) error {
	fs := flag.NewFlagSet("smtpload", flag.ExitOnError)
	addr := fs.String("addr", "", "server or proxy address")
	conc := fs.Int("c", 50, "concurrent connections")
	dur := fs.Duration("d", 10*time.Second, "duration")
	size := fs.Int("size", 4096, "message size in bytes (headers and body)")
	perConn := fs.Int("per-conn", 1, "messages per connection")
	helo := fs.String("helo", "load.bench", "EHLO name")
	fs.Parse(args)
	if *addr == "" || *conc < 1 || *perConn < 1 {
		return errors.New("smtpload: -addr, -c ≥ 1 and -per-conn ≥ 1 needed")
	}
	msg := smtpMessage(*size)
	var msgs, conns atomic.Int64
	var errs tally
	start := time.Now()
	end := start.Add(*dur)
	var wg sync.WaitGroup
	for range *conc {
		wg.Go(func() {
			s := &smtpClient{helo: *helo, msg: msg, buf: make([]byte, 0, 512)}
			for time.Now().Before(end) {
				n, kind := s.session(*addr, *perConn, end)
				msgs.Add(int64(n))
				conns.Add(1)
				if kind != "" {
					errs.add(kind)
					if kind == "dial" {
						time.Sleep(10 * time.Millisecond)
					}
				}
			}
		})
	}
	wg.Wait()
	secs := dur.Seconds()
	fmt.Printf("msgs=%d msgs_per_s=%.0f conns=%d errors=%d seconds=%.1f\n",
		msgs.Load(), float64(msgs.Load())/secs, conns.Load(), errs.total(), secs)
	if errs.total() > 0 {
		fmt.Fprintf(os.Stderr, "smtpload %s: errors: %s\n", *addr, errs.String())
	}
	return nil
}

// smtpMessage returns headers and a body of about size bytes, in 76-column
// lines, ending with the dot line.
func smtpMessage(size int) []byte {
	var b bytes.Buffer
	b.WriteString("From: <load@bench.test>\r\nTo: <sink@bench.test>\r\nSubject: bench\r\n" +
		"Message-ID: <bench@load.bench>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n")
	line := []byte(strings.Repeat("abcdefghijklmnopqrstuvwxyz0123456789", 3)[:76] + "\r\n")
	for b.Len()+len(line) <= size {
		b.Write(line)
	}
	if k := size - b.Len() - 2; k > 0 {
		b.Write(line[:k])
		b.WriteString("\r\n")
	}
	b.WriteString(".\r\n")
	return b.Bytes()
}

// The load's commands, made once (the load shares the CPUs it measures).
var (
	cmdMail = []byte("MAIL FROM:<load@bench.test>\r\n")
	cmdRcpt = []byte("RCPT TO:<sink@bench.test>\r\n")
	cmdData = []byte("DATA\r\n")
	cmdQuit = []byte("QUIT\r\n")
)

type smtpClient struct {
	helo string
	msg  []byte
	buf  []byte
	br   *bufio.Reader
}

// session makes one connection; it returns the messages accepted before
// end and the kind of error that ended it early ("" if none).
func (s *smtpClient) session(addr string, perConn int, end time.Time) (accepted int, kind string) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, "dial"
	}
	defer c.Close()
	if s.br == nil {
		s.br = bufio.NewReaderSize(c, 4<<10)
	} else {
		s.br.Reset(c)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	step := func(what string, cmd []byte, want int) string {
		if cmd != nil {
			if _, err := c.Write(cmd); err != nil {
				return what + " write"
			}
		}
		code, err := readReply(s.br)
		if err != nil {
			if err == io.EOF {
				return what + " EOF"
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return what + " timeout"
			}
			return what + " read"
		}
		if code != want {
			return fmt.Sprintf("%s %d", what, code)
		}
		return ""
	}
	if k := step("greeting", nil, 220); k != "" {
		return 0, k
	}
	if k := step("EHLO", append(append(append(s.buf[:0], "EHLO "...), s.helo...), "\r\n"...), 250); k != "" {
		return 0, k
	}
	for i := 0; i < perConn && time.Now().Before(end); i++ {
		if k := step("MAIL", cmdMail, 250); k != "" {
			return accepted, k
		}
		if k := step("RCPT", cmdRcpt, 250); k != "" {
			return accepted, k
		}
		if k := step("DATA", cmdData, 354); k != "" {
			return accepted, k
		}
		if k := step("dot", s.msg, 250); k != "" {
			return accepted, k
		}
		if time.Now().Before(end) {
			accepted++
		}
	}
	if k := step("QUIT", cmdQuit, 221); k != "" {
		return accepted, k
	}
	return accepted, ""
}

// readReply reads one SMTP reply, multi-line or not, and returns its code.
func readReply(br *bufio.Reader) (int, error) {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) < 4 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' || line[2] < '0' || line[2] > '9' {
			return 0, fmt.Errorf("bad reply line %q", line)
		}
		if line[3] == ' ' || line[3] == '\r' || line[3] == '\n' {
			return int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0'), nil
		}
	}
}
