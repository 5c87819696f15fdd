package accesslog

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var testTime = time.Date(2026, 11, 21, 10, 0, 0, 0, time.FixedZone("", 3600))

func TestAppendCombined(t *testing.T) {
	for _, tc := range []struct {
		e    Entry
		want string
	}{
		{Entry{Addr: netip.MustParseAddr("192.0.2.7"), Time: testTime, Method: []byte("GET"), URI: []byte("/a?b=c"), Minor: 1,
			Status: 200, Bytes: 512, Referer: []byte("http://x/"), Agent: []byte("curl/8.0")},
			`192.0.2.7 - - [21/Nov/2026:10:00:00 +0100] "GET /a?b=c HTTP/1.1" 200 512 "http://x/" "curl/8.0"` + "\n"},
		{Entry{Addr: netip.MustParseAddr("::ffff:10.0.0.1"), Time: testTime, Method: []byte("POST"), URI: []byte(`/"x"`), Status: 502},
			`10.0.0.1 - - [21/Nov/2026:10:00:00 +0100] "POST /\x22x\x22 HTTP/1.0" 502 0 "-" "-"` + "\n"},
		{Entry{Time: testTime, Status: 400, Agent: []byte("a\x01\xffb\\")},
			`- - - [21/Nov/2026:10:00:00 +0100] "-" 400 0 "-" "a\x01\xFFb\x5C"` + "\n"},
		{Entry{Addr: netip.MustParseAddr("2001:db8::1"), Time: testTime, Method: []byte("GET"), URI: []byte("/"), Minor: 1, Status: 304, Bytes: -1},
			`2001:db8::1 - - [21/Nov/2026:10:00:00 +0100] "GET / HTTP/1.1" 304 0 "-" "-"` + "\n"},
	} {
		if got := string(AppendCombined(nil, &tc.e)); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}

// TestAppendCombinedAllocs: a line is built without allocating.
func TestAppendCombinedAllocs(t *testing.T) {
	e := &Entry{Addr: netip.MustParseAddr("192.0.2.7"), Time: testTime, Method: []byte("GET"), URI: []byte("/a"), Minor: 1,
		Status: 200, Bytes: 5, Agent: []byte("ua")}
	buf := make([]byte, 0, 512)
	if n := testing.AllocsPerRun(100, func() { buf = AppendCombined(buf[:0], e) }); n != 0 {
		t.Errorf("%v allocs", n)
	}
}

func BenchmarkAppendCombined(b *testing.B) {
	e := &Entry{Addr: netip.MustParseAddr("192.0.2.7"), Time: testTime, Method: []byte("GET"), URI: []byte("/static/app.js?v=3"), Minor: 1,
		Status: 200, Bytes: 51234, Referer: []byte("https://example.com/"), Agent: []byte("Mozilla/5.0 (X11; Linux x86_64)")}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendCombined(buf[:0], e)
	}
}

// TestLogWriteReopen: lines from many goroutines all reach the file;
// after a rename and Reopen, new lines go to the new file; Close writes
// what is left.
func TestLogWriteReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				l.Add([]byte(strings.Repeat("x", g+1) + " " + string(rune('a'+i%26)) + "\n"))
			}
		}()
	}
	wg.Wait()
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Add([]byte("after\n"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path + ".1")
	if n := strings.Count(string(old), "\n"); n != 2000 {
		t.Errorf("rotated file has %d lines, want 2000", n)
	}
	now, _ := os.ReadFile(path)
	if string(now) != "after\n" {
		t.Errorf("new file %q", now)
	}
	l.Add([]byte("late\n"))
	if l.Dropped() != 1 {
		t.Errorf("dropped %d", l.Dropped())
	}
}
