package webserver

import (
	"strconv"

	"github.com/plb/plb/engine"
)

// count records one response of the given status and size.
func (s *Service) count(code int, bytes int64) {
	if c := code / 100; c >= 0 && c < len(s.Stats.Status) {
		s.Stats.Status[c].Add(1)
	}
	s.Stats.BytesOut.Add(bytes)
}

// Describe implements engine.Describer with Perlbal's ClientHTTP
// description. Runs on the loop.
func (wc *conn) Describe(c *engine.Conn) engine.ConnInfo {
	d := make([]byte, 0, 64)
	if la := c.LocalAddr(); la.IsValid() {
		d = append(d, ": localport="...)
		d = strconv.AppendUint(d, uint64(la.Port()), 10)
	}
	d = append(d, "; reqs="...)
	d = strconv.AppendInt(d, int64(wc.reqs), 10)
	file := c.SendingFile()
	var state string
	switch {
	case file:
		state = "xfer_disk"
	case c.Pending():
		state = "xfer_resp"
	case wc.reqs > 0 && len(c.Inbound()) == 0:
		state = "persist_wait"
	default:
		state = "reading_headers"
	}
	d = append(d, "; "...)
	d = append(d, state...)
	return engine.ConnInfo{Class: "Perlbal::ClientHTTP", Service: wc.svc.Name, State: state, Detail: string(d), OpenFile: file}
}
