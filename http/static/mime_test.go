package static

import "testing"

func TestMIMEType(t *testing.T) {
	for name, want := range map[string]string{
		"a.css": "text/css", "a.doc": "application/msword", "a.gif": "image/gif",
		"a.htm": "text/html", "a.html": "text/html", "a.jpg": "image/jpeg",
		"a.js": "application/x-javascript", "a.mp3": "audio/mpeg", "a.mpg": "video/mpeg",
		"a.pdf": "application/pdf", "a.png": "image/png", "a.tif": "image/tiff",
		"a.tiff": "image/tiff", "a.torrent": "application/x-bittorrent",
		"a.txt": "text/plain", "a.zip": "application/zip",
		"a.svg": "image/svg+xml", "a.json": "application/json", "a.wasm": "application/wasm",
		"a.woff2": "font/woff2", "a.webp": "image/webp", "a.mp4": "video/mp4",
		"a.ico": "image/x-icon", "a.xml": "text/xml",
		// Perlbal quirks: case-sensitive, no jpeg, \w+ at the very end.
		"a.JPG": "text/plain", "a.jpeg": "text/plain", "a.html~": "text/plain",
		"README": "text/plain", ".css": "text/css", "dir.css/README": "text/plain",
		"a.tar.gz": "text/plain", "": "text/plain", "a.": "text/plain",
	} {
		if got := MIMEType(name); got != want {
			t.Errorf("MIMEType(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestExtension(t *testing.T) {
	for name, want := range map[string]string{
		"a.txt": "txt", "a.tar.gz": "gz", "a.b_c": "b_c", "a.b-c": "", "a": "",
		".x": "x", "a.": "", "a.x/y": "", "a.é": "",
	} {
		if got := Extension(name); got != want {
			t.Errorf("Extension(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestMIMETypesTable(t *testing.T) {
	m := MIMETypes()
	if len(m) != 24 {
		t.Errorf("%d entries", len(m))
	}
	for ext, typ := range m {
		if got := MIMEType("x." + ext); got != typ {
			t.Errorf("%s: table %q, MIMEType %q", ext, typ, got)
		}
	}
	m["css"] = "changed"
	if MIMETypes()["css"] != "text/css" {
		t.Error("MIMETypes returned shared state")
	}
}
