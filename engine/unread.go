//go:build linux

package engine

// Unread puts p back in front of the connection's buffered input, as if it
// had never been consumed: a role that read a request and then hands the
// connection to another one (Perlbal's X-REPROXY-SERVICE) gives it the
// request again. p is copied. It must not be called from inside c's own
// OnData (whose unconsumed rest is kept after the call returns). Runs on
// the loop.
func (c *Conn) Unread(p []byte) {
	if len(p) == 0 || c.closed || c.closing {
		return
	}
	in := make([]byte, 0, max(len(p)+len(c.in), 4096))
	in = append(in, p...)
	c.in = append(in, c.in...)
}
