package static

import (
	"strconv"
	"time"

	"github.com/plb/plb/http/status"
)

// builder appends one response head to the caller's buffer.
type builder struct {
	dst    []byte
	base   int // len(dst) when the builder started: reset goes back to it
	proto  string
	conn   func([]byte) []byte
	head   bool // HEAD request: never a body
	tokens bool
	now    time.Time
	date   *status.SharedDateCache
}

// reset drops what the builder appended, to answer differently.
func (b *builder) reset() { b.dst = b.dst[:b.base] }

// simple answers with a generated page in status.AppendSimple's format. The
// body follows the head in the same buffer.
func (b *builder) simple(code int, msg string) ([]byte, Response) {
	out := status.AppendSimple(b.dst, code, msg, status.Options{
		Proto:        b.proto,
		ServerTokens: b.tokens,
		Conn:         b.conn,
		Head:         true,
	})
	h := len(out)
	if !b.head && status.BodyAllowed(code) {
		out = status.AppendBody(out, code, msg)
	}
	b.dst = out
	resp := Response{Status: code}
	if len(out) > h {
		resp.Body = out[h:len(out):len(out)]
	}
	return out[:h:h], resp
}

// start appends the status line and the headers every file and listing
// response begins with, in Perlbal's order: Date, Server, Last-Modified.
func (b *builder) start(code int, lastMod []byte) {
	b.dst = status.AppendStatusLine(b.dst, b.proto, code)
	b.dst = append(b.dst, "Date: "...)
	b.dst = b.date.Append(b.dst, b.now)
	b.dst = append(b.dst, "\r\n"...)
	if b.tokens {
		b.dst = append(b.dst, "Server: "+status.ServerToken+"\r\n"...)
	}
	b.dst = append(b.dst, "Last-Modified: "...)
	b.dst = append(b.dst, lastMod...)
	b.dst = append(b.dst, "\r\n"...)
}

func (b *builder) header(name, value string) {
	b.dst = append(b.dst, name...)
	b.dst = append(b.dst, ": "...)
	b.dst = append(b.dst, value...)
	b.dst = append(b.dst, "\r\n"...)
}

func (b *builder) contentLength(n int64) {
	b.dst = append(b.dst, "Content-Length: "...)
	b.dst = strconv.AppendInt(b.dst, n, 10)
	b.dst = append(b.dst, "\r\n"...)
}

// end appends the caller's Connection lines and the blank line, and returns
// the finished head.
func (b *builder) end() []byte {
	if b.conn != nil {
		b.dst = b.conn(b.dst)
	} else {
		b.dst = status.AppendConnection(b.dst, false, 0)
	}
	b.dst = append(b.dst, "\r\n"...)
	return b.dst[:len(b.dst):len(b.dst)]
}
