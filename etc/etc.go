// Package etc holds plb's sample configurations; the embedded default is
// what plb runs with no configuration file.
package etc

import _ "embed"

//go:embed default.toml
var defaultTOML string

// Default returns a copy of the embedded default configuration (TOML).
func Default() []byte { return []byte(defaultTOML) }
