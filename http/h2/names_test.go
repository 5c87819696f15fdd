package h2

import "testing"

// TestLowerCommonNamesAllocateNothing: the header names most responses
// carry, and most requests, are lower-cased without an allocation; others
// are still right.
func TestLowerCommonNamesAllocateNothing(t *testing.T) {
	names := [][]byte{[]byte("Content-Type"), []byte("Content-Length"), []byte("Date"), []byte("Set-Cookie"), []byte("ETag"), []byte("User-Agent"), []byte("X-Forwarded-For"), []byte("Grpc-Status")}
	if a := testing.AllocsPerRun(100, func() {
		for _, n := range names {
			LowerName(n)
		}
	}); a != 0 {
		t.Errorf("%v allocations", a)
	}
	for in, want := range map[string]string{"X-Backend": "x-backend", "ETag": "etag",
		"X-A-Very-Long-Header-Name-Past-Thirty-Two-Bytes": "x-a-very-long-header-name-past-thirty-two-bytes"} {
		if got := LowerName([]byte(in)); got != want {
			t.Errorf("%s: %q", in, got)
		}
	}
}
