// Package etc holds plb's sample configuration files, one per syntax, and
// the default configuration built into the binary.
//
//   - default.toml: used when no configuration file is given: a reverse
//     proxy on 127.0.0.1:8080 balancing round-robin over two web servers on
//     127.0.0.1:8081 and :8082 that serve the current directory, and a
//     management console on 127.0.0.1:16000.
//   - plb.toml: every TOML key, annotated.
//   - perlbal.conf: a Perlbal configuration (reverse proxy, web server,
//     selector, management), annotated.
//   - plb.conf: a Pure Load Balancer 0.3 configuration with every key.
//   - smtp.toml: an SMTP relay front (smtp_proxy) on 127.0.0.1:2525 over
//     two relays, sending them the client's address with PROXY v1.
//
// The config package's tests parse every file here.
package etc

import _ "embed"

//go:embed default.toml
var defaultTOML string // never written: Default hands out copies

// Default returns a copy of the built-in default configuration (TOML).
func Default() []byte { return []byte(defaultTOML) }
