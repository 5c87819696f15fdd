// Package status builds the responses that plb generates itself (error pages,
// "Directory listing disabled", redirects) in Perlbal's exact format, and
// formats HTTP dates. It is shared by every HTTP role.
//
// Every function here appends to a caller-supplied buffer and allocates
// nothing when the buffer has room, so it may run on an event loop's hot path.
package status

// Text returns the reason phrase plb sends for code.
//
// The phrases are Perlbal's (note "Bad request", "Permanent Redirect" and
// "Request range not satisfiable"); for the codes Perlbal has no phrase for
// but plb generates (408, 413, 414, 431, 502, 504, 505) it is the standard
// one. Any other code gives "", and the status line then ends in a space as
// Perlbal's does ("HTTP/1.0 201 ").
func Text(code int) string {
	switch code {
	case 200:
		return "OK"
	case 204:
		return "No Content"
	case 206:
		return "Partial Content"
	case 301:
		return "Permanent Redirect"
	case 302:
		return "Found"
	case 304:
		return "Not Modified"
	case 400:
		return "Bad request"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 408:
		return "Request Timeout"
	case 413:
		return "Payload Too Large"
	case 414:
		return "URI Too Long"
	case 416:
		return "Request range not satisfiable"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	}
	return ""
}
