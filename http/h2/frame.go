// Package h2 is plb's HTTP/2 codec (RFC 9113): it turns the bytes of a
// server connection into streams, each one exchange (a request, its
// response), and the exchanges' answers into frames. It owns framing,
// HPACK (golang.org/x/net/http2/hpack), stream states, flow control and
// the limits that keep one client from exhausting the server; it does
// no I/O. The caller feeds it what it read (Conn.Feed) and gives it an
// Output to write to, so that it runs on an event loop without
// blocking, or over a net.Conn in tests.
package h2

import (
	"encoding/binary"
	"fmt"
)

// Preface is what a client sends first (RFC 9113 3.4).
const Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// FrameType is a frame's type (RFC 9113 6).
type FrameType uint8

const (
	FrameData         FrameType = 0x0
	FrameHeaders      FrameType = 0x1
	FramePriority     FrameType = 0x2
	FrameRSTStream    FrameType = 0x3
	FrameSettings     FrameType = 0x4
	FramePushPromise  FrameType = 0x5
	FramePing         FrameType = 0x6
	FrameGoAway       FrameType = 0x7
	FrameWindowUpdate FrameType = 0x8
	FrameContinuation FrameType = 0x9
)

var frameNames = [...]string{"DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE",
	"PING", "GOAWAY", "WINDOW_UPDATE", "CONTINUATION"}

func (t FrameType) String() string {
	if int(t) < len(frameNames) {
		return frameNames[t]
	}
	return fmt.Sprintf("frame 0x%x", uint8(t))
}

// Frame flags.
const (
	FlagEndStream  = 0x1 // DATA, HEADERS
	FlagAck        = 0x1 // SETTINGS, PING
	FlagEndHeaders = 0x4 // HEADERS, CONTINUATION
	FlagPadded     = 0x8 // DATA, HEADERS
	FlagPriority   = 0x20
)

// ErrCode is an error code of RST_STREAM and GOAWAY (RFC 9113 7).
type ErrCode uint32

const (
	ErrNo                 ErrCode = 0x0
	ErrProtocol           ErrCode = 0x1
	ErrInternal           ErrCode = 0x2
	ErrFlowControl        ErrCode = 0x3
	ErrSettingsTimeout    ErrCode = 0x4
	ErrStreamClosed       ErrCode = 0x5
	ErrFrameSize          ErrCode = 0x6
	ErrRefusedStream      ErrCode = 0x7
	ErrCancel             ErrCode = 0x8
	ErrCompression        ErrCode = 0x9
	ErrConnect            ErrCode = 0xa
	ErrEnhanceYourCalm    ErrCode = 0xb
	ErrInadequateSecurity ErrCode = 0xc
	ErrHTTP11Required     ErrCode = 0xd
)

var errNames = [...]string{"NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
	"SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL",
	"COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"}

func (e ErrCode) String() string {
	if int(e) < len(errNames) {
		return errNames[e]
	}
	return fmt.Sprintf("error 0x%x", uint32(e))
}

// Settings identifiers (RFC 9113 6.5.2).
const (
	SettingHeaderTableSize      = 0x1
	SettingEnablePush           = 0x2
	SettingMaxConcurrentStreams = 0x3
	SettingInitialWindowSize    = 0x4
	SettingMaxFrameSize         = 0x5
	SettingMaxHeaderListSize    = 0x6
)

const (
	frameHeaderLen  = 9
	minMaxFrameSize = 1 << 14      // the default and least SETTINGS_MAX_FRAME_SIZE
	maxMaxFrameSize = 1<<24 - 1    // the largest
	maxWindow       = 1<<31 - 1    // the largest flow-control window
	defaultWindow   = 65535        // a window before SETTINGS and WINDOW_UPDATE
	defaultTable    = 4096         // SETTINGS_HEADER_TABLE_SIZE's default
	streamIDMask    = 1<<31 - 1    // the stream identifier without the reserved bit
	maxStreamID     = streamIDMask // the last stream identifier
	settingLen      = 6            // one setting in a SETTINGS payload
	pingLen         = 8            // a PING payload
	goAwayMinLen    = 8            // a GOAWAY payload without debug data
	rstLen          = 4            // a RST_STREAM payload
	windowUpdateLen = 4            // a WINDOW_UPDATE payload
	priorityLen     = 5            // a PRIORITY payload (and HEADERS' priority fields)
)

// FrameHeader is a frame's 9-byte header.
type FrameHeader struct {
	Length   uint32
	Type     FrameType
	Flags    uint8
	StreamID uint32
}

// Has reports whether the header has flag f.
func (h FrameHeader) Has(f uint8) bool { return h.Flags&f != 0 }

// parseFrameHeader reads a frame header from the first 9 bytes of b
// (len(b) >= 9), ignoring the reserved bit. It allocates nothing.
func parseFrameHeader(b []byte) FrameHeader {
	return FrameHeader{
		Length:   uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]),
		Type:     FrameType(b[3]),
		Flags:    b[4],
		StreamID: binary.BigEndian.Uint32(b[5:9]) & streamIDMask,
	}
}

// appendFrameHeader appends a frame header.
func appendFrameHeader(dst []byte, length int, t FrameType, flags uint8, stream uint32) []byte {
	return append(dst, byte(length>>16), byte(length>>8), byte(length), byte(t), flags,
		byte(stream>>24), byte(stream>>16), byte(stream>>8), byte(stream))
}

// appendU32 appends v big-endian.
func appendU32(dst []byte, v uint32) []byte {
	return binary.BigEndian.AppendUint32(dst, v)
}
