package memcache

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plb/plb/internal/testutil"
)

// TestAgainstMemcached: set, get, a miss, an expiry, and a server gone
// (an error, promptly), against Debian's memcached.
func TestAgainstMemcached(t *testing.T) {
	addr, _ := testutil.StartMemcached(t)
	c := New([]string{addr}, time.Second)
	defer c.Close()
	if _, err := c.Get("plb:none"); err != ErrMiss {
		t.Fatalf("a key never set: %v", err)
	}
	if err := c.Set("plb:a", []byte("1 2 3"), time.Second); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get("plb:a"); err != nil || string(v) != "1 2 3" {
		t.Fatalf("get: %q %v", v, err)
	}
	for i := range 20 { // connections reused
		if err := c.Set("plb:b", []byte(strconv.Itoa(i)), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if v, _ := c.Get("plb:b"); string(v) != "19" {
		t.Fatalf("the last set: %q", v)
	}
	time.Sleep(2100 * time.Millisecond)
	if _, err := c.Get("plb:a"); err != ErrMiss {
		t.Fatalf("an expired key: %v", err)
	}
	if err := c.Set("bad key", nil, time.Second); err == nil {
		t.Fatal("a key with a space was sent")
	}
	dead := New([]string{"127.0.0.1:1"}, 200*time.Millisecond)
	start := time.Now()
	if _, err := dead.Get("plb:a"); err == nil || time.Since(start) > time.Second {
		t.Fatalf("a server gone: %v after %v", err, time.Since(start))
	}
}

// TestReadGet: answers that are not memcached's are errors, not hangs or
// panics.
func TestReadGet(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"END\r\n", "miss"},
		{"VALUE k 0 3\r\nabc\r\nEND\r\n", "abc"},
		{"VALUE k 0 3\r\nabcd\r\nEND\r\n", "error"},
		{"VALUE other 0 3\r\nabc\r\nEND\r\n", "error"},
		{"VALUE k 0 99999\r\n", "error"},
		{"VALUE k 0 3\r\nabc\r\n", "error"},
		{"SERVER_ERROR out of memory\r\n", "error"},
		{"END\n", "error"},
	} {
		v, err := readGet(bufio.NewReader(strings.NewReader(c.in)), "k")
		got := string(v)
		switch {
		case err == ErrMiss:
			got = "miss"
		case err != nil:
			got = "error"
		}
		if got != c.want {
			t.Errorf("%q: %q (%v), want %q", c.in, got, err, c.want)
		}
	}
}

// FuzzParseValueLine: any line gives a length within MaxValue or a
// refusal, never a panic.
func FuzzParseValueLine(f *testing.F) {
	f.Add([]byte("VALUE k 0 3"), "k")
	f.Add([]byte("VALUE k 12 1024"), "k")
	f.Add([]byte("VALUE k x 3"), "k")
	f.Fuzz(func(t *testing.T, line []byte, k string) {
		if n, ok := ParseValueLine(line, k); ok && (n < 0 || n > MaxValue) {
			t.Fatalf("%q: length %d", line, n)
		}
	})
}

// TestParseValueLineAllocatesNothing: reading a VALUE line.
func TestParseValueLineAllocatesNothing(t *testing.T) {
	line := []byte("VALUE Throttle:192.0.2.1 0 24")
	if a := testing.AllocsPerRun(1000, func() {
		if n, ok := ParseValueLine(line, "Throttle:192.0.2.1"); !ok || n != 24 {
			t.Fatal(fmt.Sprint(n, ok))
		}
	}); a != 0 {
		t.Errorf("%v allocations", a)
	}
}
