package proxy

import (
	"strconv"

	"github.com/plb/plb/config"
)

// setXFFExtras reads the XFFExtras plugin's settings: with the plugin
// registered, send_backend_port adds X-Forwarded-Port (the port the client
// connected to) and send_backend_proto adds X-Forwarded-Proto to backend
// requests, replacing what a client sent under those names.
func (s *Settings) setXFFExtras(svc *config.Service) {
	if !svc.HasPlugin("XFFExtras") {
		return
	}
	s.xffPort = svc.Extra["send_backend_port"] == "1"
	s.xffProto = svc.Extra["send_backend_proto"] == "1"
	if s.xffPort {
		s.removes = append(s.removes, []byte("X-Forwarded-Port"))
	}
	if s.xffProto {
		s.removes = append(s.removes, []byte("X-Forwarded-Proto"))
	}
}

// appendXFFExtras adds the XFFExtras fields to a backend request head
// (which ends with its blank line).
func (cl *client) appendXFFExtras(head []byte, st *Settings) []byte {
	head = head[:len(head)-2]
	if st.xffPort {
		head = append(head, "X-Forwarded-Port: "...)
		head = strconv.AppendUint(head, uint64(cl.conn.LocalAddr().Port()), 10)
		head = append(head, "\r\n"...)
	}
	if st.xffProto {
		proto := "http"
		if st.Svc.EnableSSL {
			proto = "https"
		}
		head = append(head, "X-Forwarded-Proto: "+proto+"\r\n"...)
	}
	return append(head, "\r\n"...)
}
