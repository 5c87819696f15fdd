package proxy

import (
	"strconv"

	"github.com/plb/plb/http"
)

// bodyRelay is a response body's framing on its way to the client, for a
// backend's response and a reproxied URL's alike.
type bodyRelay struct {
	mode    http.BodyMode
	left    int64
	chunks  http.ChunkedScanner
	rechunk bool // close-delimited body sent chunked to a 1.1 client
	dechunk bool // chunked body sent plain to a 1.0 client
	// held is the client's response head while it is held back: a chunked
	// body's head waits until its first chunk line parses, so that broken
	// framing still gets a clear 502 rather than a cut connection.
	held []byte
	hex  [18]byte // a rechunked chunk's size line
}

// relay writes to cl what of data belongs to the body (the held head
// first, once a chunk line parsed) and returns the bytes used and whether
// the body is complete; err is a broken chunked framing. data must not be
// empty.
func (b *bodyRelay) relay(cl *client, data []byte) (used int, done bool, err error) {
	switch b.mode {
	case http.BodyLength:
		used = len(data)
		if int64(used) > b.left {
			used = int(b.left)
		}
		cl.write(data[:used])
		b.left -= int64(used)
		return used, b.left == 0, nil
	case http.BodyChunked:
		for used < len(data) {
			n, payload, done, err := b.chunks.Scan(data[used:])
			if err != nil {
				return used, false, err
			}
			if len(b.held) > 0 && n > 0 {
				cl.write(b.held)
				b.held = b.held[:0]
			}
			if b.dechunk {
				if len(payload) > 0 {
					cl.write(payload)
				}
			} else {
				cl.write(data[used : used+n])
			}
			used += n
			if done || n == 0 {
				return used, done, nil
			}
		}
		return used, false, nil
	}
	// Until the close.
	if b.rechunk {
		cl.write(append(strconv.AppendInt(b.hex[:0], int64(len(data)), 16), "\r\n"...))
		cl.write(data)
		cl.write(crlf)
	} else {
		cl.write(data)
	}
	return len(data), false, nil
}
