package http

import (
	"bytes"
	"strconv"
)

// Bounds on the parts of a chunked body that carry no data.
const (
	// maxChunkSize is the largest chunk size accepted (2^62): anything
	// larger is an attack or a bug, and it keeps sums of sizes far from
	// overflowing.
	maxChunkSize = 1 << 62
	// maxChunkDigits bounds the hex digits of a size, leading zeros
	// included, as net/http does.
	maxChunkDigits = 16
	// maxChunkExtBytes bounds the extensions (and whitespace) after one
	// chunk size, like net/http's 4096-byte chunk line.
	maxChunkExtBytes = 4096
	// maxTrailerBytes bounds the trailer section.
	maxTrailerBytes = 16 << 10
)

// States of a ChunkedScanner.
const (
	csSizeStart    uint8 = iota // at the first hex digit of a size
	csSize                      // in the hex digits
	csSizeWS                    // in whitespace after the digits
	csExt                       // in chunk extensions
	csSizeLF                    // after the CR ending a size line
	csData                      // in chunk data
	csDataCR                    // expecting the CR after chunk data
	csDataLF                    // expecting its LF
	csTrailerStart              // at the start of a trailer line
	csTrailerName               // in a trailer field name
	csTrailerValue              // in a trailer field value
	csTrailerLF                 // after the CR ending a trailer line
	csEndLF                     // after the CR of the final empty line
	csDone                      // the body is complete
)

// ChunkedScanner finds the end of a body in chunked transfer coding
// (RFC 9112 7.1) without copying it: a proxy can forward the bytes it
// consumes as they are, and a server can take the payload out of them. It
// is an incremental state machine, so a body may arrive in pieces of any
// size, split anywhere.
//
// Framing is strict, as it is where request smuggling lives: sizes are hex
// without sign or whitespace before them, at most 16 digits and 2^62;
// every line ends in CRLF (unlike a head, a bare LF is refused, as in
// net/http and RFC 9112's errata 7633); extensions (";name=value") are
// skipped, bounded to 4096 bytes per size line; the trailer section is
// consumed, bounded to 16 KiB, each line a "name: value" field.
//
// The zero value is ready to scan a body. A ChunkedScanner is owned by one
// connection: it is not safe for concurrent use.
type ChunkedScanner struct {
	state  uint8
	digits uint8
	size   uint64 // the size being read, then the data left in the chunk
	extra  int    // extension bytes on this size line, or trailer bytes
	err    error
	// keep: the trailer section is kept in trailer (KeepTrailers).
	keep    bool
	trailer []byte
}

// Reset makes s ready to scan a new body (KeepTrailers stays set).
func (s *ChunkedScanner) Reset() {
	*s = ChunkedScanner{keep: s.keep, trailer: s.trailer[:0]}
}

// AppendChunk appends p to dst as one chunk of a chunked body (RFC 9112
// 7.1): its size in hex, CRLF, p, CRLF. p must not be empty (that is the
// last chunk).
func AppendChunk(dst, p []byte) []byte {
	dst = append(strconv.AppendInt(dst, int64(len(p)), 16), "\r\n"...)
	return append(append(dst, p...), "\r\n"...)
}

// KeepTrailers makes s keep the trailer section it scans (at most 16
// KiB), for Trailers: an HTTP/2 codec passes trailers on as fields where
// a proxy forwards them as bytes.
func (s *ChunkedScanner) KeepTrailers() { s.keep = true }

// Trailers is the trailer section scanned, with KeepTrailers: its field
// lines, each ending in CRLF, without the final empty line; a view valid
// until the next Reset. EachTrailer reads it.
func (s *ChunkedScanner) Trailers() []byte { return s.trailer }

// EachTrailer calls fn with the name and value (without surrounding
// whitespace) of each field line in a trailer section as Trailers
// returns it.
func EachTrailer(section []byte, fn func(name, value []byte)) {
	for len(section) > 0 {
		end := bytes.Index(section, crlf)
		if end < 0 {
			end = len(section)
		}
		line := section[:end]
		section = section[min(end+2, len(section)):]
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		fn(line[:colon], bytes.Trim(line[colon+1:], " \t"))
	}
}

var crlf = []byte("\r\n")

// Done reports whether the whole body, trailers included, has been
// scanned.
func (s *ChunkedScanner) Done() bool {
	return s.state == csDone
}

// Scan consumes the longest prefix of buf it can: framing bytes and at
// most one contiguous piece of chunk data, which it returns as payload (a
// view of buf[:consumed], valid until buf is modified; copy to keep; empty
// when there is none). Bytes consumed are never needed again, so the
// caller drops buf[:consumed] (after forwarding it, for a proxy) and
// calls Scan again with what remains, plus new bytes when buf is used up,
// until done.
//
// done reports that the body ended at buf[consumed]; bytes after it belong
// to the next message. An error is an *Error (status 400: a proxy maps it
// to 502 for a response) and is returned again by every later call until
// Reset; consumed is then the offset of the offending byte.
//
// It is one long function on purpose: a byte-wise state machine over the
// whole chunk grammar (size, extension, CRLFs, trailers) in one loop keeps
// the per-byte path free of calls on every proxied chunked body.
func (s *ChunkedScanner) Scan(buf []byte) (consumed int, payload []byte, done bool, err error) {
	if s.err != nil {
		return 0, nil, false, s.err
	}
	for i := 0; i < len(buf); i++ {
		c := buf[i]
		switch s.state {
		case csData:
			n := len(buf) - i
			if uint64(n) >= s.size {
				n = int(s.size)
				s.state = csDataCR
			}
			s.size -= uint64(n)
			return i + n, buf[i : i+n : i+n], false, nil
		case csSizeStart, csSize:
			d, ok := unhex(c)
			if ok {
				s.digits++
				if s.digits > maxChunkDigits {
					return s.fail(i, errChunkTooLarge)
				}
				if s.size > (maxChunkSize-uint64(d))>>4 {
					return s.fail(i, errChunkTooLarge)
				}
				s.size = s.size<<4 | uint64(d)
				s.state = csSize
				continue
			}
			if s.state == csSizeStart {
				return s.fail(i, errChunkSize)
			}
			s.extra = 0
			s.state = csSizeWS
			fallthrough
		case csSizeWS:
			switch {
			case c == '\r':
				s.state = csSizeLF
			case c == ';':
				s.state = csExt
			case isOWS(c):
				if s.extra++; s.extra > maxChunkExtBytes {
					return s.fail(i, errChunkExtLong)
				}
			case c == '\n':
				return s.fail(i, errChunkCRLF)
			default:
				return s.fail(i, errChunkSize)
			}
		case csExt:
			switch {
			case c == '\r':
				s.state = csSizeLF
			case isValueByte(c):
				if s.extra++; s.extra > maxChunkExtBytes {
					return s.fail(i, errChunkExtLong)
				}
			case c == '\n':
				return s.fail(i, errChunkCRLF)
			default:
				return s.fail(i, errChunkExt)
			}
		case csSizeLF:
			if c != '\n' {
				return s.fail(i, errChunkCRLF)
			}
			if s.size == 0 {
				s.extra = 0
				s.state = csTrailerStart
			} else {
				s.state = csData
			}
		case csDataCR:
			if c != '\r' {
				return s.fail(i, errChunkCRLF)
			}
			s.state = csDataLF
		case csDataLF:
			if c != '\n' {
				return s.fail(i, errChunkCRLF)
			}
			s.state = csSizeStart
			s.digits = 0
		case csTrailerStart:
			switch {
			case c == '\r':
				s.state = csEndLF
			case isToken(c):
				s.state = csTrailerName
				s.keepByte(c)
			default:
				return s.fail(i, errTrailer)
			}
			if s.extra++; s.extra > maxTrailerBytes {
				return s.fail(i, errTrailerLarge)
			}
		case csTrailerName:
			switch {
			case c == ':':
				s.state = csTrailerValue
			case !isToken(c):
				return s.fail(i, errTrailer)
			}
			s.keepByte(c)
			if s.extra++; s.extra > maxTrailerBytes {
				return s.fail(i, errTrailerLarge)
			}
		case csTrailerValue:
			switch {
			case c == '\r':
				s.state = csTrailerLF
			case !isValueByte(c):
				return s.fail(i, errTrailer)
			}
			s.keepByte(c)
			if s.extra++; s.extra > maxTrailerBytes {
				return s.fail(i, errTrailerLarge)
			}
		case csTrailerLF:
			if c != '\n' {
				return s.fail(i, errChunkCRLF)
			}
			s.keepByte(c)
			s.state = csTrailerStart
		case csEndLF:
			if c != '\n' {
				return s.fail(i, errChunkCRLF)
			}
			s.state = csDone
			return i + 1, nil, true, nil
		case csDone:
			return 0, nil, true, nil
		}
	}
	return len(buf), nil, s.state == csDone, nil
}

// keepByte keeps a byte of the trailer section, with KeepTrailers.
func (s *ChunkedScanner) keepByte(c byte) {
	if s.keep {
		s.trailer = append(s.trailer, c)
	}
}

func (s *ChunkedScanner) fail(i int, err *Error) (int, []byte, bool, error) {
	s.err = err
	return i, nil, false, err
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
