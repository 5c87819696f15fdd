package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// echo is a TCP server that writes back what it reads.
func echo(args []string) error {
	fs := flag.NewFlagSet("echo", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	fs.Parse(args)
	bufs := sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}
	return serveTCP(*addr, func(c net.Conn) {
		defer c.Close()
		bp := bufs.Get().(*[]byte)
		defer bufs.Put(bp)
		buf := *bp
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if _, werr := c.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
}

// serveTCP listens on addr, prints the bound address, and serves every
// connection with handle on a goroutine of its own, until the listener
// fails (a failed accept, as EMFILE, only pauses it).
func serveTCP(addr string, handle func(net.Conn)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and the like
			continue
		}
		go handle(c)
	}
}

// tcpLoad runs c connections for d: each writes a block of size bytes,
// reads it back, checks it, and repeats. Prints round trips per second and
// the payload's MB/s (10^6 bytes, each way); a connection that fails is
// counted and replaced.
func tcpLoad(args []string) error {
	fs := flag.NewFlagSet("tcpload", flag.ExitOnError)
	addr := fs.String("addr", "", "server or proxy address")
	conc := fs.Int("c", 50, "concurrent connections")
	dur := fs.Duration("d", 10*time.Second, "duration")
	size := fs.Int("size", 16384, "block size in bytes")
	fs.Parse(args)
	if *addr == "" || *conc < 1 || *size < 1 {
		return errors.New("tcpload: -addr, -c ≥ 1 and -size ≥ 1 needed")
	}
	block := make([]byte, *size)
	for i := range block {
		block[i] = 'a' + byte(i%26)
	}
	var rts atomic.Int64
	var errs tally
	end := time.Now().Add(*dur)
	var wg sync.WaitGroup
	for range *conc {
		wg.Go(func() {
			back := make([]byte, *size)
			for time.Now().Before(end) {
				c, err := net.DialTimeout("tcp", *addr, 5*time.Second)
				if err != nil {
					errs.add("dial")
					time.Sleep(10 * time.Millisecond)
					continue
				}
				c.SetDeadline(end.Add(10 * time.Second))
				for time.Now().Before(end) {
					if _, err := c.Write(block); err != nil {
						errs.add("write")
						break
					}
					if _, err := io.ReadFull(c, back); err != nil {
						errs.add("read")
						break
					}
					if !bytes.Equal(back, block) {
						errs.add("mismatch")
						break
					}
					if time.Now().Before(end) {
						rts.Add(1)
					}
				}
				c.Close()
			}
		})
	}
	wg.Wait()
	secs := dur.Seconds()
	n := rts.Load()
	fmt.Printf("round_trips=%d rt_per_s=%.0f mb_per_s=%.1f errors=%d seconds=%.1f\n",
		n, float64(n)/secs, float64(n)*float64(*size)/secs/1e6, errs.total(), secs)
	if errs.total() > 0 {
		fmt.Fprintf(os.Stderr, "tcpload %s: errors: %s\n", *addr, errs.String())
	}
	return nil
}
