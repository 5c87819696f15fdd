package proxy

import (
	"testing"
	"time"

	"github.com/plb/plb/config"
)

// TestBodyDeadline: client_body_timeout plus a second per
// client_body_min_rate bytes, counted from where the clock started, for
// bodies of many gigabytes too (their nanoseconds would overflow int64 if
// multiplied first).
func TestBodyDeadline(t *testing.T) {
	svc := &config.Service{ClientBodyTimeout: 60 * time.Second, ClientBodyMinRate: 500}
	cl := &client{st: &Settings{Svc: svc}, rs: &reqState{bodyClock: int64(time.Second), bodyClockAt: 1000}}
	for _, tc := range []struct {
		got  int64
		want time.Duration
	}{
		{0, 61 * time.Second},
		{1000, 61 * time.Second},
		{1250, 61*time.Second + 500*time.Millisecond},
		{1000 + 20<<30, 61*time.Second + time.Duration(20<<30/500)*time.Second + time.Duration(20<<30%500)*time.Second/500},
	} {
		if got := cl.bodyDeadline(tc.got); got != int64(tc.want) {
			t.Errorf("%d bytes: deadline %v, want %v", tc.got, time.Duration(got), tc.want)
		}
	}
	svc.ClientBodyTimeout = 0
	if got := cl.bodyDeadline(5000); got != 0 {
		t.Errorf("client_body_timeout 0: deadline %d, want none", got)
	}
}
