package webserver

import "github.com/plb/plb/engine"

// cork holds back partial segments (TCP_CORK) until uncork, so that a
// response head and the file after it share full-sized segments, as
// nginx's tcp_nopush does. Runs on the loop.
func (wc *conn) cork(c *engine.Conn) {
	if wc.corked || c.Closed() {
		return
	}
	if setCork(c.Fd(), true) {
		wc.corked = true
	}
}

// uncork sends what cork held back once the output queue is empty (the
// kernel has it all); while it is not, OnDrain comes back here. Runs on
// the loop.
func (wc *conn) uncork(c *engine.Conn) {
	if !wc.corked || c.Closed() {
		wc.corked = false
		return
	}
	if c.Pending() {
		c.NotifyEmpty()
		return
	}
	wc.corked = false
	setCork(c.Fd(), false)
}
