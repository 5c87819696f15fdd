// Command tool is plb's benchmark helper: a fast HTTP backend, a slow-client
// load and an idle-connection load, used by bench/run.sh; an SMTP sink, an
// SMTP load, a TCP echo server and a TCP echo load, used by bench/smtp.sh.
// It only talks to loopback addresses given on its command line.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: tool backend|slow|idle|smtpsink|smtpload|echo|tcpload [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "backend":
		err = backend(os.Args[2:])
	case "slow":
		err = slow(os.Args[2:])
	case "idle":
		err = idle(os.Args[2:])
	case "smtpsink":
		err = smtpSink(os.Args[2:])
	case "smtpload":
		err = smtpLoad(os.Args[2:])
	case "echo":
		err = echo(os.Args[2:])
	case "tcpload":
		err = tcpLoad(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tool:", err)
		os.Exit(1)
	}
}

// backend serves /100b, /64k and /1m with Content-Length.
func backend(args []string) error {
	fs := flag.NewFlagSet("backend", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	h2cOn := fs.Bool("h2c", false, "speak h2c (prior knowledge) beside HTTP/1.1")
	fs.Parse(args)
	bodies := map[string][]byte{
		"/100b": make([]byte, 100),
		"/64k":  make([]byte, 64<<10),
		"/1m":   make([]byte, 1<<20),
	}
	for _, b := range bodies {
		for i := range b {
			b[i] = 'a' + byte(i%26)
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	var h nethttp.Handler = nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		b, ok := bodies[r.URL.Path]
		if !ok {
			nethttp.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
	})
	if *h2cOn {
		h = h2c.NewHandler(h, &http2.Server{MaxConcurrentStreams: 1000})
	}
	return nethttp.Serve(ln, h)
}

// slow opens n clients that each GET path and read it at rate bytes/s.
func slow(args []string) error {
	fs := flag.NewFlagSet("slow", flag.ExitOnError)
	addr := fs.String("addr", "", "proxy address")
	path := fs.String("path", "/1m", "path")
	n := fs.Int("n", 200, "clients")
	rate := fs.Int("rate", 32<<10, "bytes per second per client")
	limit := fs.Duration("timeout", 120*time.Second, "give up after")
	fs.Parse(args)
	var wg sync.WaitGroup
	var ok, failed, bytes atomic.Int64
	start := time.Now()
	for i := 0; i < *n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", *addr, 5*time.Second)
			if err != nil {
				failed.Add(1)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(*limit))
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n", *path)
			buf := make([]byte, *rate/10)
			var got int64
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				k, err := io.ReadFull(c, buf)
				got += int64(k)
				if err != nil {
					break
				}
				<-tick.C
			}
			bytes.Add(got)
			if got > 1<<20 {
				ok.Add(1)
			} else {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	fmt.Printf("ok=%d failed=%d bytes=%d seconds=%.1f\n", ok.Load(), failed.Load(), bytes.Load(), time.Since(start).Seconds())
	return nil
}

// idle opens n keep-alive connections, makes one request on each, keeps
// them open, prints "ready", and waits for a line on stdin (or timeout).
func idle(args []string) error {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	addr := fs.String("addr", "", "proxy address")
	path := fs.String("path", "/100b", "path")
	n := fs.Int("n", 10000, "connections")
	hold := fs.Duration("hold", 60*time.Second, "hold at most")
	src := fs.String("src", "", "comma-separated local loopback addresses to dial from in turn (more than one lifts the ~28k ephemeral ports of one)")
	fs.Parse(args)
	var dialers []*net.Dialer
	for _, a := range strings.Split(*src, ",") {
		d := &net.Dialer{Timeout: 5 * time.Second}
		if a != "" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(a)}
		}
		dialers = append(dialers, d)
	}
	conns := make([]net.Conn, 0, *n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	failed := 0
	for i := 0; i < *n; i++ {
		c, err := dialers[i%len(dialers)].Dial("tcp", *addr)
		if err != nil {
			failed++
			continue
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: bench\r\n\r\n", *path)
		br := bufio.NewReader(c)
		resp, err := nethttp.ReadResponse(br, nil)
		if err != nil {
			failed++
			c.Close()
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if strings.EqualFold(resp.Header.Get("Connection"), "close") {
			failed++
		}
		c.SetDeadline(time.Time{})
		conns = append(conns, c)
	}
	fmt.Printf("ready open=%d failed=%d\n", len(conns), failed)
	done := make(chan struct{})
	go func() { bufio.NewReader(os.Stdin).ReadString('\n'); close(done) }()
	select {
	case <-done:
	case <-time.After(*hold):
	}
	return nil
}
