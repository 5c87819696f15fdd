package status

import "strconv"

// DefaultProto is the HTTP version of plb's status lines unless a caller asks
// for another: Perlbal always answers HTTP/1.0.
const DefaultProto = "HTTP/1.0"

// ServerToken is the Server header value sent when server tokens are on. It
// stays Perlbal's so that clients and Perlbal's own test 13-server-tokens see
// what they expect.
const ServerToken = "Perlbal"

// Options shapes a generated response. The zero value gives an HTTP/1.0
// response with no Server header and "Connection: close".
type Options struct {
	// Proto is the version on the status line (default "HTTP/1.0").
	Proto string
	// ServerTokens adds "Server: Perlbal" (default off).
	ServerTokens bool
	// Extra holds additional header lines such as "Retry-After: 5", without
	// their CRLF. They go after Server and before the Connection lines.
	Extra []string
	// Conn, when non-nil, appends the Connection lines (each ending in CRLF)
	// in place of KeepAlive and KeepAliveTimeout. Roles that already decide
	// keep-alive per client pass their decision here.
	Conn func(dst []byte) []byte
	// KeepAlive selects "Connection: keep-alive" plus a Keep-Alive line
	// instead of "Connection: close" (default off). Ignored when Conn is set.
	KeepAlive bool
	// KeepAliveTimeout is the N of "Keep-Alive: timeout=N, max=100", in
	// seconds.
	KeepAliveTimeout int
	// Head marks a response to a HEAD request: the headers, Content-Length
	// included, are those of the GET response, but no body follows.
	Head bool
}

// Protocol is o.Proto, or DefaultProto when it is empty.
func (o Options) Protocol() string {
	if o.Proto == "" {
		return DefaultProto
	}
	return o.Proto
}

// AppendTail appends the end of a response head every generated response
// shares: Server (o.ServerTokens), o.Extra, the Connection line (o.Conn,
// or keep-alive as o says) and the blank line.
func (o Options) AppendTail(dst []byte) []byte {
	if o.ServerTokens {
		dst = append(dst, "Server: "+ServerToken+"\r\n"...)
	}
	for _, h := range o.Extra {
		dst = append(dst, h...)
		dst = append(dst, "\r\n"...)
	}
	if o.Conn != nil {
		return append(o.Conn(dst), "\r\n"...)
	}
	dst = AppendConnection(dst, o.KeepAlive, o.KeepAliveTimeout)
	return append(dst, "\r\n"...)
}

// AppendSimple appends a complete generated response to dst and returns the
// extended slice, as Perlbal's _simple_response builds it:
//
//	HTTP/1.0 404 Not Found
//	Content-Type: text/html
//	Content-Length: 25
//	Server: Perlbal             (if o.ServerTokens)
//	<o.Extra lines>
//	Connection: close           (or keep-alive + Keep-Alive)
//
//	<h1>404 - Not Found</h1>\n<msg>
//
// 204 and 304 have no Content-Type, no Content-Length and no body; a HEAD
// response (o.Head) has the headers of the GET one but no body. msg is
// inserted verbatim: it must be trusted HTML.
//
// It allocates nothing when dst has enough capacity.
func AppendSimple(dst []byte, code int, msg string, o Options) []byte {
	hasBody := BodyAllowed(code)
	dst = AppendStatusLine(dst, o.Protocol(), code)
	if hasBody {
		dst = append(dst, "Content-Type: text/html\r\nContent-Length: "...)
		dst = strconv.AppendInt(dst, int64(BodyLen(code, msg)), 10)
		dst = append(dst, "\r\n"...)
	}
	dst = o.AppendTail(dst)
	if hasBody && !o.Head {
		dst = AppendBody(dst, code, msg)
	}
	return dst
}

// BodyAllowed reports whether a response with this code carries a body (and
// so Content-Type and Content-Length) in a generated response: all but 1xx,
// 204 and 304.
func BodyAllowed(code int) bool {
	return code >= 200 && code != 204 && code != 304
}

// AppendStatusLine appends "<proto> <code> <text>\r\n". An unknown code keeps
// its trailing space, as Perlbal's does.
func AppendStatusLine(dst []byte, proto string, code int) []byte {
	dst = append(dst, proto...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, ' ')
	dst = append(dst, Text(code)...)
	return append(dst, "\r\n"...)
}

// AppendBody appends the body of a generated response:
// "<h1>404 - Not Found</h1>\n" followed by msg, or "<h1>201</h1>\n" plus msg
// for a code with no reason phrase. AppendSimple with o.Head set followed by
// AppendBody gives the same bytes as AppendSimple without it, so a caller can
// keep the head and the body apart.
func AppendBody(dst []byte, code int, msg string) []byte {
	dst = append(dst, "<h1>"...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	if t := Text(code); t != "" {
		dst = append(dst, " - "...)
		dst = append(dst, t...)
	}
	dst = append(dst, "</h1>\n"...)
	return append(dst, msg...)
}

// BodyLen is the length of the body AppendBody appends.
func BodyLen(code int, msg string) int {
	n := len("<h1>") + digits(code) + len("</h1>\n") + len(msg)
	if t := Text(code); t != "" {
		n += len(" - ") + len(t)
	}
	return n
}

// AppendConnection appends "Connection: close\r\n", or, when keepAlive is
// set, "Connection: keep-alive\r\nKeep-Alive: timeout=N, max=100\r\n" with N
// the idle timeout in seconds. Perlbal sends these explicitly on every
// response whatever the client's version, and never enforces max=100.
func AppendConnection(dst []byte, keepAlive bool, timeout int) []byte {
	if !keepAlive {
		return append(dst, "Connection: close\r\n"...)
	}
	dst = append(dst, "Connection: keep-alive\r\nKeep-Alive: timeout="...)
	dst = strconv.AppendInt(dst, int64(timeout), 10)
	return append(dst, ", max=100\r\n"...)
}

func digits(n int) int {
	d := 1
	if n < 0 {
		d++
		n = -n
	}
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}
