package http

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	nethttp "net/http"
	"net/http/httputil"
	"strings"
	"testing"
)

// browserRequest is what a current Firefox sends for a page: about 700
// bytes and 13 header fields.
const browserRequest = "GET /wiki/Special:Search?search=perlbal&go=Go HTTP/1.1\r\n" +
	"Host: en.wikipedia.org\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
	"Accept-Language: en-US,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Referer: https://en.wikipedia.org/wiki/Main_Page\r\n" +
	"Connection: keep-alive\r\n" +
	"Cookie: WMF-Last-Access=21-Nov-2025; GeoIP=US:CA:San_Francisco:37.77:-122.42:v4; enwikimwuser-sessionId=0123456789abcdef\r\n" +
	"Upgrade-Insecure-Requests: 1\r\n" +
	"Sec-Fetch-Dest: document\r\n" +
	"Sec-Fetch-Mode: navigate\r\n" +
	"Sec-Fetch-Site: same-origin\r\n" +
	"Priority: u=0, i\r\n" +
	"\r\n"

// typicalResponse is a backend's answer to it, without the body.
const typicalResponse = "HTTP/1.1 200 OK\r\n" +
	"Date: Fri, 21 Nov 2025 06:40:00 GMT\r\n" +
	"Server: Apache/2.4.62 (Debian)\r\n" +
	"Content-Type: text/html; charset=UTF-8\r\n" +
	"Content-Length: 48213\r\n" +
	"Cache-Control: private, s-maxage=0, max-age=0, must-revalidate\r\n" +
	"Vary: Accept-Encoding,Cookie\r\n" +
	"Last-Modified: Thu, 20 Nov 2025 18:12:44 GMT\r\n" +
	"Connection: keep-alive\r\n" +
	"Keep-Alive: timeout=5, max=100\r\n" +
	"\r\n"

// chunkedBody encodes total bytes of payload in chunks of size bytes.
func chunkedBody(total, size int) string {
	var b strings.Builder
	data := strings.Repeat("x", size)
	for total > 0 {
		k := min(total, size)
		fmt.Fprintf(&b, "%x\r\n%s\r\n", k, data[:k])
		total -= k
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

func BenchmarkParseRequest(b *testing.B) {
	buf := []byte(browserRequest)
	var p Parser
	var h RequestHead
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if n, err := p.ParseRequest(buf, &h); n != len(buf) || err != nil {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkParseRequestByteAtATime is the worst case of the incremental
// path: one call per byte.
func BenchmarkParseRequestByteAtATime(b *testing.B) {
	buf := []byte(browserRequest)
	var p Parser
	var h RequestHead
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		for k := 1; k <= len(buf); k++ {
			if n, err := p.ParseRequest(buf[:k], &h); err != nil || n != 0 && k != len(buf) {
				b.Fatal(n, err)
			}
		}
	}
}

func BenchmarkParseRequestNetHTTP(b *testing.B) {
	buf := []byte(browserRequest)
	rd := bytes.NewReader(buf)
	br := bufio.NewReader(rd)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(buf)
		br.Reset(rd)
		if _, err := nethttp.ReadRequest(br); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	var p Parser
	var h RequestHead
	if _, err := p.ParseRequest([]byte(browserRequest), &h); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if h.Get("priority") == nil {
			b.Fatal("not found")
		}
	}
}

func BenchmarkParseResponse(b *testing.B) {
	buf := []byte(typicalResponse)
	var p Parser
	var h ResponseHead
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if n, err := p.ParseResponse(buf, &h); n != len(buf) || err != nil {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkParseResponseNetHTTP(b *testing.B) {
	buf := []byte(typicalResponse)
	rd := bytes.NewReader(buf)
	br := bufio.NewReader(rd)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(buf)
		br.Reset(rd)
		if _, err := nethttp.ReadResponse(br, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChunked scans 64 KiB of payload in 4 KiB chunks, as a proxy
// forwarding it would.
func BenchmarkChunked(b *testing.B) {
	buf := []byte(chunkedBody(64<<10, 4<<10))
	var s ChunkedScanner
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		s.Reset()
		for in := buf; ; {
			n, _, done, err := s.Scan(in)
			if err != nil {
				b.Fatal(err)
			}
			in = in[n:]
			if done {
				break
			}
		}
	}
}

// BenchmarkChunkedSmall is the framing-heavy case: 16-byte chunks.
func BenchmarkChunkedSmall(b *testing.B) {
	buf := []byte(chunkedBody(64<<10, 16))
	var s ChunkedScanner
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		s.Reset()
		for in := buf; ; {
			n, _, done, err := s.Scan(in)
			if err != nil {
				b.Fatal(err)
			}
			in = in[n:]
			if done {
				break
			}
		}
	}
}

func BenchmarkChunkedNetHTTP(b *testing.B) {
	buf := []byte(chunkedBody(64<<10, 4<<10))
	rd := bytes.NewReader(buf)
	br := bufio.NewReader(rd)
	out := make([]byte, 32<<10)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(buf)
		br.Reset(rd)
		cr := httputil.NewChunkedReader(br)
		for {
			if _, err := cr.Read(out); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}
