// Package version holds plb's release, the one version string that
// everything prints: `plb -v`, the start-up log line, the console's
// `version` and `uptime`, the status page, status.json and /metrics'
// plb_build_info.
//
// The scheme is plb's own semantic version. The console's `version` used
// to print a Perlbal-looking "1.80-plb" while the log said "0.1.0"; nothing
// needs the Perlbal form: Perlbal 1.80's own tests (the conformance run in
// cmd/plb) never ask for the version, and the Perlbal release plb is
// compatible with is a different fact, which `plb -v` states apart
// ("plb 0.1.0 (Perlbal 1.80 and PLB 0.3 compatible)").
package version

// Version is plb's release.
const Version = "0.1.0"

// Compatible names the releases of Perlbal and Pure Load Balancer whose
// configuration files and behaviour plb follows.
const Compatible = "Perlbal 1.80 and PLB 0.3 compatible"
