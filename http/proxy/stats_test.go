package proxy

import (
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/http/handoff"
	"github.com/plb/plb/http/plugin"
)

// TestHeaderEditOrder: the selector's HEADER rules apply first, then the
// edits of backend_client_assigned hooks, then the service's own rules
// (Perlbal's order); an edit replaces what the client sent.
func TestHeaderEditOrder(t *testing.T) {
	st := settings(func(s *config.Service) {
		s.Headers = []config.HeaderRule{{Insert: true, Name: "X-Svc", Value: "svc"}, {Name: "X-Sel"}}
	})
	sel := handoff.NewRules([]config.HeaderRule{{Insert: true, Name: "X-Sel", Value: "sel"}, {Insert: true, Name: "X-Both", Value: "sel"}, {Name: "X-Drop"}})
	var plug plugin.HeaderEdits
	plug.Set("X-Forwarded-Proto", []byte("http"))
	plug.Set("X-Both", []byte("plug"))
	r := parseReq(t, "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: https\r\nX-Drop: 1\r\nX-Both: client\r\n\r\n")
	got := string(appendBackendRequestEx(nil, r, st, peer, true, sel, &plug.Rules))
	for _, want := range []string{"\r\nX-Forwarded-Proto: http\r\n", "\r\nX-Both: plug\r\n", "\r\nX-Svc: svc\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in\n%s", want, got)
		}
	}
	for _, gone := range []string{"https", "X-Drop", "X-Sel", "client", "X-Both: sel"} {
		if strings.Contains(got, gone) {
			t.Errorf("%q still in\n%s", gone, got)
		}
	}
	// No edits: the same bytes as before.
	if a, b := string(appendBackendRequestEx(nil, r, st, peer, true, nil, nil)), string(appendBackendRequest(nil, r, st, peer, true)); a != b {
		t.Errorf("nil edits change the head:\n%s\n%s", a, b)
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
