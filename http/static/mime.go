package static

// DefaultMIMEType is the type of a file whose extension is not in the table,
// Perlbal's choice.
const DefaultMIMEType = "text/plain"

// MIMEType returns the Content-Type plb's default table gives to a file
// name: Perlbal's table plus a few modern types, looked up by Extension
// (case-sensitive), text/plain when absent. It allocates nothing.
func MIMEType(name string) string {
	if t := defaultMIME(Extension(name)); t != "" {
		return t
	}
	return DefaultMIMEType
}

// MIMETypes returns a new copy of plb's default table, extension (without
// the dot) to type, for the console's "mime" command and for building a
// modified table to pass in Options.MIME.
func MIMETypes() map[string]string {
	exts := [...]string{
		"css", "doc", "gif", "htm", "html", "jpg", "js", "mp3", "mpg", "pdf", "png",
		"tif", "tiff", "torrent", "txt", "zip",
		"ico", "json", "mp4", "svg", "wasm", "webp", "woff2", "xml",
	}
	m := make(map[string]string, len(exts))
	for _, ext := range exts {
		m[ext] = defaultMIME(ext)
	}
	return m
}

// defaultMIME is the default table as a switch, so that the lookup on every
// static GET neither hashes nor allocates.
func defaultMIME(ext string) string {
	switch ext {
	// Perlbal 1.80's table, unchanged: "jpeg" is deliberately absent and
	// "js" keeps its pre-RFC 9239 type.
	case "css":
		return "text/css"
	case "doc":
		return "application/msword"
	case "gif":
		return "image/gif"
	case "htm", "html":
		return "text/html"
	case "jpg":
		return "image/jpeg"
	case "js":
		return "application/x-javascript"
	case "mp3":
		return "audio/mpeg"
	case "mpg":
		return "video/mpeg"
	case "pdf":
		return "application/pdf"
	case "png":
		return "image/png"
	case "tif", "tiff":
		return "image/tiff"
	case "torrent":
		return "application/x-bittorrent"
	case "txt":
		return "text/plain"
	case "zip":
		return "application/zip"
	// plb additions.
	case "ico":
		return "image/x-icon"
	case "json":
		return "application/json"
	case "mp4":
		return "video/mp4"
	case "svg":
		return "image/svg+xml"
	case "wasm":
		return "application/wasm"
	case "webp":
		return "image/webp"
	case "woff2":
		return "font/woff2"
	case "xml":
		return "text/xml"
	}
	return ""
}

// Extension returns the extension Perlbal's /\.(\w+)$/ finds in name: the
// run of ASCII letters, digits and underscores that ends the name, if a dot
// precedes it; "" otherwise ("a.tar.gz" gives "gz", "a.txt~" and "README"
// give "").
func Extension(name string) string { return extension(name) }

// extension is Extension for a name held in a string or in bytes (then
// nil when there is none).
func extension[T string | []byte](name T) T {
	i := len(name)
	for i > 0 && isWordByte(name[i-1]) {
		i--
	}
	if i == len(name) || i == 0 || name[i-1] != '.' {
		var none T
		return none
	}
	return name[i:]
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// mimeFor returns the type for the file name in table, or in the default
// table when table is nil. It does not allocate.
func mimeFor(table map[string]string, name []byte) string {
	if t := lookupMIME(table, extension(name)); t != "" {
		return t
	}
	return DefaultMIMEType
}

// lookupMIME finds ext in table (nil: the default table); "" when absent.
// The string conversions are only compared and looked up, so they do not
// allocate.
func lookupMIME(table map[string]string, ext []byte) string {
	if table == nil {
		return defaultMIME(string(ext))
	}
	return table[string(ext)]
}
