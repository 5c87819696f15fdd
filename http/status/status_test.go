package status

import (
	"testing"
	"time"
)

func TestText(t *testing.T) {
	for code, want := range map[int]string{
		200: "OK", 204: "No Content", 206: "Partial Content", 301: "Permanent Redirect",
		302: "Found", 304: "Not Modified", 400: "Bad request", 403: "Forbidden",
		404: "Not Found", 416: "Request range not satisfiable", 500: "Internal Server Error",
		501: "Not Implemented", 503: "Service Unavailable",
		408: "Request Timeout", 413: "Payload Too Large", 414: "URI Too Long",
		431: "Request Header Fields Too Large", 502: "Bad Gateway", 504: "Gateway Timeout",
		505: "HTTP Version Not Supported",
		201: "", 100: "", 418: "",
	} {
		if got := Text(code); got != want {
			t.Errorf("Text(%d) = %q, want %q", code, got, want)
		}
	}
}

func TestAppendSimple(t *testing.T) {
	tests := []struct {
		name string
		code int
		msg  string
		o    Options
		want string
	}{
		{
			name: "404 close no tokens",
			code: 404,
			want: "HTTP/1.0 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 25\r\n" +
				"Connection: close\r\n\r\n<h1>404 - Not Found</h1>\n",
		},
		{
			name: "403 message tokens keep-alive",
			code: 403, msg: "Bogus URL",
			o: Options{ServerTokens: true, KeepAlive: true, KeepAliveTimeout: 30},
			want: "HTTP/1.0 403 Forbidden\r\nContent-Type: text/html\r\nContent-Length: 34\r\n" +
				"Server: Perlbal\r\nConnection: keep-alive\r\nKeep-Alive: timeout=30, max=100\r\n\r\n" +
				"<h1>403 - Forbidden</h1>\nBogus URL",
		},
		{
			name: "listing disabled",
			code: 200, msg: "Directory listing disabled",
			o: Options{ServerTokens: true},
			want: "HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: 44\r\nServer: Perlbal\r\n" +
				"Connection: close\r\n\r\n<h1>200 - OK</h1>\nDirectory listing disabled",
		},
		{
			name: "503 extra header, proto",
			code: 503, msg: "",
			o: Options{Proto: "HTTP/1.1", Extra: []string{"Retry-After: 5"}},
			want: "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html\r\nContent-Length: 35\r\n" +
				"Retry-After: 5\r\nConnection: close\r\n\r\n<h1>503 - Service Unavailable</h1>\n",
		},
		{
			name: "HEAD keeps Content-Length",
			code: 404,
			o:    Options{Head: true},
			want: "HTTP/1.0 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 25\r\n" +
				"Connection: close\r\n\r\n",
		},
		{
			name: "204 no body",
			code: 204, msg: "ignored",
			o:    Options{ServerTokens: true},
			want: "HTTP/1.0 204 No Content\r\nServer: Perlbal\r\nConnection: close\r\n\r\n",
		},
		{
			name: "304 no body",
			code: 304,
			want: "HTTP/1.0 304 Not Modified\r\nConnection: close\r\n\r\n",
		},
		{
			name: "unknown code empty reason",
			code: 201,
			want: "HTTP/1.0 201 \r\nContent-Type: text/html\r\nContent-Length: 13\r\n" +
				"Connection: close\r\n\r\n<h1>201</h1>\n",
		},
		{
			name: "conn func overrides",
			code: 400,
			o: Options{KeepAlive: true, Conn: func(dst []byte) []byte {
				return append(dst, "Connection: x\r\n"...)
			}},
			want: "HTTP/1.0 400 Bad request\r\nContent-Type: text/html\r\nContent-Length: 27\r\n" +
				"Connection: x\r\n\r\n<h1>400 - Bad request</h1>\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(AppendSimple([]byte("prefix"), tt.code, tt.msg, tt.o))
			if got != "prefix"+tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, "prefix"+tt.want)
			}
			if BodyAllowed(tt.code) {
				if n := BodyLen(tt.code, tt.msg); n != len(AppendBody(nil, tt.code, tt.msg)) {
					t.Errorf("BodyLen = %d, AppendBody gives %d bytes", n, len(AppendBody(nil, tt.code, tt.msg)))
				}
			}
		})
	}
}

func TestAppendSimpleHeadThenBody(t *testing.T) {
	o := Options{ServerTokens: true}
	full := AppendSimple(nil, 404, "gone", o)
	o.Head = true
	split := AppendBody(AppendSimple(nil, 404, "gone", o), 404, "gone")
	if string(full) != string(split) {
		t.Errorf("head+body = %q, full = %q", split, full)
	}
}

func TestAppendDate(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC), "Mon, 02 Jan 2006 15:04:05 GMT"},
		{time.Date(1994, 11, 6, 8, 49, 37, 999, time.UTC), "Sun, 06 Nov 1994 08:49:37 GMT"},
		{time.Date(2024, 12, 31, 23, 59, 59, 0, time.FixedZone("X", 3600)), "Tue, 31 Dec 2024 22:59:59 GMT"},
		{time.Unix(0, 0), "Thu, 01 Jan 1970 00:00:00 GMT"},
	} {
		if got := string(AppendDate(nil, tc.t)); got != tc.want {
			t.Errorf("AppendDate(%v) = %q, want %q", tc.t, got, tc.want)
		}
		if got := tc.t.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT"); got != tc.want {
			t.Errorf("stdlib disagrees: %q", got)
		}
	}
}

func TestDateCache(t *testing.T) {
	var c DateCache
	t0 := time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC)
	if got := string(c.Append(nil, t0)); got != "Mon, 02 Jan 2006 15:04:05 GMT" {
		t.Fatalf("got %q", got)
	}
	if got := string(c.Append([]byte("x"), t0.Add(999*time.Millisecond))); got != "xMon, 02 Jan 2006 15:04:05 GMT" {
		t.Fatalf("same second: got %q", got)
	}
	if got := string(c.Append(nil, t0.Add(time.Second))); got != "Mon, 02 Jan 2006 15:04:06 GMT" {
		t.Fatalf("next second: got %q", got)
	}
}

func TestParseDate(t *testing.T) {
	want := time.Date(1994, 11, 6, 8, 49, 37, 0, time.UTC)
	for _, s := range []string{
		"Sun, 06 Nov 1994 08:49:37 GMT",
		" Sun, 06 Nov 1994 08:49:37 GMT\t",
		"Sunday, 06-Nov-94 08:49:37 GMT",
		"Sun Nov  6 08:49:37 1994",
	} {
		got, ok := ParseDate([]byte(s))
		if !ok || !got.Equal(want) {
			t.Errorf("ParseDate(%q) = %v, %v", s, got, ok)
		}
	}
	for _, s := range []string{
		"", "Sun, 06 Nov 1994 08:49:37 UTC", "Mon, 06 Nov 1994 08:49:37 GMT",
		"Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT",
		"Sun, 06 Nov 1994 24:49:37 GMT", "Sun, 0x Nov 1994 08:49:37 GMT", "garbage",
	} {
		if got, ok := ParseDate([]byte(s)); ok {
			t.Errorf("ParseDate(%q) = %v, want failure", s, got)
		}
	}
}

func BenchmarkAppendSimple(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 512)
	o := Options{ServerTokens: true, KeepAlive: true, KeepAliveTimeout: 30}
	for b.Loop() {
		buf = AppendSimple(buf[:0], 404, "", o)
	}
}

func BenchmarkAppendDate(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 64)
	now := time.Now()
	for b.Loop() {
		buf = AppendDate(buf[:0], now)
	}
}

func BenchmarkDateCache(b *testing.B) {
	b.ReportAllocs()
	var c DateCache
	buf := make([]byte, 0, 64)
	now := time.Now()
	for b.Loop() {
		buf = c.Append(buf[:0], now)
	}
}

func TestSharedDateCache(t *testing.T) {
	var c SharedDateCache
	t0 := time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC)
	if got := string(c.Append([]byte("x"), t0)); got != "xMon, 02 Jan 2006 15:04:05 GMT" {
		t.Fatalf("got %q", got)
	}
	if got := string(c.Append(nil, t0.Add(999*time.Millisecond))); got != "Mon, 02 Jan 2006 15:04:05 GMT" {
		t.Fatalf("same second: got %q", got)
	}
	if got := string(c.Append(nil, t0.Add(-time.Second))); got != "Mon, 02 Jan 2006 15:04:04 GMT" {
		t.Fatalf("earlier second: got %q", got)
	}
	// Several loops at once, each second checked against AppendDate.
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func(g int) {
			defer func() { done <- struct{}{} }()
			buf := make([]byte, 0, DateLen)
			for i := 0; i < 200; i++ {
				now := t0.Add(time.Duration(i/3+g) * time.Second)
				if got, want := string(c.Append(buf[:0], now)), string(AppendDate(nil, now)); got != want {
					t.Errorf("concurrent: got %q, want %q", got, want)
					return
				}
			}
		}(g)
	}
	for g := 0; g < 4; g++ {
		<-done
	}
}
