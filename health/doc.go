// Package health decides whether backend nodes get traffic, in PLB's model
// extended with HAProxy's active checks:
//
//   - Passive: the proxy counts failures on real traffic (refused, reset,
//     timeout, broken reply) with pool.Node.Fail; after a pool's
//     server_retry consecutive failures (default 5) it marks the node down
//     with the reason from PassiveReason. A good response resets the count.
//   - Revival: while a node is down, a Monitor probes it every
//     timeout_cleanup (default 15s) and marks it up after rise consecutive
//     successful probes (default 1, as PLB).
//   - Active checks (optional, off by default as in PLB): with
//     check_interval set, a Monitor also probes nodes that are up, and marks
//     one down after fall consecutive failed probes (default 3, HAProxy's).
//
// A probe is a Probe: a TCP connect (the default, tcp.go), an HTTP OPTIONS
// or GET expecting 2xx or 3xx (http.go), or any other implementation. A
// pool's check key names its probe in a Probes table (NewProbes: tcp and
// http), to which a protocol's package adds its own: package smtp supplies
// the SMTP check (smtp.Probe, HAProxy's smtpchk; smtp.PolicyFor makes it
// the probe of a pool an smtp_proxy uses) and the server adds it as
// "smtp". health imports no protocol package. Every transition is
// recorded on the node (pool.Node.LastTransition) and logged once, with
// its reason.
package health
