package status

import (
	"sync/atomic"
	"time"
)

// DateLen is the length of an HTTP date such as
// "Mon, 02 Jan 2006 15:04:05 GMT".
const DateLen = len("Mon, 02 Jan 2006 15:04:05 GMT")

const (
	dayNames   = "SunMonTueWedThuFriSat"
	monthNames = "JanFebMarAprMayJunJulAugSepOctNovDec"
)

// AppendDate appends t as an HTTP date in RFC 1123 form, always in GMT:
// "Mon, 02 Jan 2006 15:04:05 GMT" (Perlbal's HTTP::Date::time2str). It
// allocates nothing when dst has room.
func AppendDate(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		// Out of the four-digit range no client parses it anyway; let the
		// time package pick a spelling rather than emit garbage.
		return t.AppendFormat(dst, "Mon, 02 Jan 2006 15:04:05 GMT")
	}
	hour, min, sec := t.Clock()
	wd := int(t.Weekday()) * 3
	mo := (int(month) - 1) * 3
	return append(dst,
		dayNames[wd], dayNames[wd+1], dayNames[wd+2], ',', ' ',
		byte('0'+day/10), byte('0'+day%10), ' ',
		monthNames[mo], monthNames[mo+1], monthNames[mo+2], ' ',
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), ' ',
		byte('0'+hour/10), byte('0'+hour%10), ':',
		byte('0'+min/10), byte('0'+min%10), ':',
		byte('0'+sec/10), byte('0'+sec%10), ' ', 'G', 'M', 'T')
}

// DateCache formats the current time for Date headers at most once per
// second. The zero value is ready to use.
//
// A DateCache is owned by one event loop: it is not safe for concurrent use.
// Give each loop its own.
type DateCache struct {
	sec   int64
	valid bool
	buf   [DateLen]byte
}

// Append appends now as an HTTP date (see AppendDate), reformatting only when
// now falls in a different second from the previous call.
func (c *DateCache) Append(dst []byte, now time.Time) []byte {
	if s := now.Unix(); !c.valid || s != c.sec {
		AppendDate(c.buf[:0], now)
		c.sec, c.valid = s, true
	}
	return append(dst, c.buf[:]...)
}

// ParseDate parses an HTTP date as a client may send it in If-Modified-Since:
// the RFC 1123 form (parsed without allocating), or the obsolete RFC 850 and
// asctime forms RFC 9110 §5.6.7 asks recipients to accept. Leading and
// trailing spaces and tabs are ignored. ok is false for anything else.
func ParseDate(b []byte) (t time.Time, ok bool) {
	b = trimSpace(b)
	if t, ok = parseIMFFixdate(b); ok {
		return t, true
	}
	for _, layout := range [...]string{
		"Monday, 02-Jan-06 15:04:05 GMT", // RFC 850
		"Mon Jan _2 15:04:05 2006",       // asctime
	} {
		if t, err := time.Parse(layout, string(b)); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func parseIMFFixdate(b []byte) (time.Time, bool) {
	// "Mon, 02 Jan 2006 15:04:05 GMT"
	if len(b) != DateLen || b[3] != ',' || b[4] != ' ' || b[7] != ' ' || b[11] != ' ' ||
		b[16] != ' ' || b[19] != ':' || b[22] != ':' || b[25] != ' ' || string(b[26:]) != "GMT" {
		return time.Time{}, false
	}
	wd := -1
	for i := 0; i < 7; i++ {
		if string(b[0:3]) == dayNames[i*3:i*3+3] {
			wd = i
			break
		}
	}
	month := 0
	for i := 0; i < 12; i++ {
		if string(b[8:11]) == monthNames[i*3:i*3+3] {
			month = i + 1
			break
		}
	}
	day, ok1 := num(b[5:7])
	year, ok2 := num(b[12:16])
	hour, ok3 := num(b[17:19])
	min, ok4 := num(b[20:22])
	sec, ok5 := num(b[23:25])
	if wd < 0 || month == 0 || !ok1 || !ok2 || !ok3 || !ok4 || !ok5 ||
		day < 1 || hour > 23 || min > 59 || sec > 60 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, min, sec, 0, time.UTC)
	// time.Date normalises 31 Feb to 3 Mar; a real date round-trips.
	if t.Day() != day || int(t.Weekday()) != wd {
		return time.Time{}, false
	}
	return t, true
}

func num(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// SharedDateCache is a DateCache safe for concurrent use by several event
// loops: the formatted Date of the current second, replaced (one small
// allocation) when the second changes. The zero value is ready.
type SharedDateCache struct {
	p atomic.Pointer[dateStamp]
}

type dateStamp struct {
	sec int64
	b   [DateLen]byte
}

// Append appends now as an IMF-fixdate, formatting it only when the second
// changed since the last call. Safe from any goroutine.
func (c *SharedDateCache) Append(dst []byte, now time.Time) []byte {
	sec := now.Unix()
	if d := c.p.Load(); d != nil && d.sec == sec {
		return append(dst, d.b[:]...)
	}
	d := &dateStamp{sec: sec}
	AppendDate(d.b[:0], now)
	c.p.Store(d)
	return append(dst, d.b[:]...)
}
