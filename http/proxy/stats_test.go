package proxy

import (
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/config"
)

// TestXFFExtras: with the plugin registered, X-Forwarded-Proto replaces
// what the client sent; without it nothing is added.
func TestXFFExtras(t *testing.T) {
	st := settings(func(s *config.Service) {
		s.Plugins = []string{"XFFExtras"}
		s.Extra = map[string]string{"send_backend_proto": "1"}
	})
	if !st.xffProto || st.xffPort {
		t.Fatalf("xffProto %v xffPort %v", st.xffProto, st.xffPort)
	}
	r := parseReq(t, "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: https\r\n\r\n")
	head := (&client{}).appendXFFExtras(appendBackendRequest(nil, r, st, peer, true), st)
	if got := string(head); strings.Count(got, "X-Forwarded-Proto") != 1 ||
		!strings.HasSuffix(got, "\r\nX-Forwarded-Proto: http\r\n\r\n") {
		t.Errorf("head:\n%s", got)
	}
	off := settings(func(s *config.Service) { s.Extra = map[string]string{"send_backend_proto": "1"} })
	if off.xffProto {
		t.Error("XFFExtras settings apply without the plugin")
	}
}

// TestLatencyHistogram: durations land in the bucket of their bound,
// across loops.
func TestLatencyHistogram(t *testing.T) {
	var h Latency
	h.init(2)
	h.Observe(0, 50*time.Microsecond)
	h.Observe(1, time.Millisecond) // on the bound: that bucket
	h.Observe(1, 2*time.Millisecond)
	h.Observe(0, 2*time.Minute) // above every bound
	h.Observe(5, time.Second)   // no such loop: ignored
	s := h.Snapshot()
	b := LatencyBounds()
	if s.Count != 4 || s.Sum != 2*time.Minute+3050*time.Microsecond {
		t.Fatalf("count %d sum %v", s.Count, s.Sum)
	}
	at := func(d time.Duration) int64 {
		for i, bound := range b {
			if bound == d {
				return s.Counts[i]
			}
		}
		t.Fatalf("no bound %v", d)
		return 0
	}
	if at(100*time.Microsecond) != 1 || at(time.Millisecond) != 1 || at(2500*time.Microsecond) != 1 || s.Counts[len(b)] != 1 {
		t.Errorf("counts %v", s.Counts)
	}
}
