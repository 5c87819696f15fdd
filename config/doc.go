// Package config is plb's configuration: one typed model (Config, Global,
// Pool, Service) that three syntaxes produce, and the interpreter of
// Perlbal's configuration commands that both config files and the
// management console run.
//
// # Syntaxes
//
// Load and Parse detect the syntax from the first statement (Detect):
//
//   - Perlbal (reference/perlbal.md §1): CREATE, SET, POOL, ENABLE, ...
//     lines, run one by one through an Interp; the first failing line stops
//     the load with "file:line: <Perlbal's message>".
//   - PLB 0.3's plb.conf: "key value" lines, mapped to a pool "plb_pool"
//     and a service "plb": a reverse_proxy, or with protocol SMTP or TCP
//     an smtp_proxy or tcp_proxy (see plb.go for the key mapping).
//   - TOML: [global], [defaults], [pool.NAME], [service.NAME], with
//     Perlbal's SET names as keys (see toml.go and etc/plb.toml).
//
// All three edit the model through the same parameter table (ServiceParams)
// and setters, so types, defaults, role rules and messages are the same
// whatever the syntax. Every error names file:line. MarshalTOML writes the
// normalized model, which parses back to an equal model.
//
// # Perlbal's quirks
//
// Kept, for compatibility: "#" starts a comment anywhere, even in a value;
// whitespace runs collapse; everything before the first "=" is lower-cased
// (CREATE POOL MyPool creates "mypool", HEADER values arrive lower-cased);
// SET role resets every other parameter to its default, except listen, pool
// and docroot; a role-specific key before the role fails; the docroot's
// trailing "/" is kept; "unknown server option" names the value.
//
// Changed, with a clear error or a sane model instead of Perlbal's silence:
// an unknown pool key fails ("Unknown pool parameter 'x'"); SET plugins
// with a plugin not LOADed fails instead of skipping it; DEFAULT of an
// unknown key fails; a bad DEFAULT value fails when a role applies it
// (Perlbal crashed); a failing line of an INCLUDEd file stops the load; the
// per-host max_reproxy_connections(host:port) is kept apart from the
// global one; balance_method also takes round_robin and least_conn; a role
// change drops what the new role cannot use (pool, docroot, selector rules,
// selector-only plugins); UNLOAD also unregisters the plugin from services.
//
// Extended: listen takes "[ipv6]:port" and ":port"; POOL ADD takes IPv6
// nodes ("[::1]:80"); durations also take Go syntax ("5s", "500ms");
// SERVER also sets workers, log_level, log_file, user, group, chroot_dir,
// max_clients and backlog; services have plb's connect_timeout,
// backend_timeout, header_timeout, buffer_dir, max_clients and
// (management) allow; pools have the health keys server_retry,
// timeout_cleanup, check, check_path, check_interval, rise and fall.
// Two roles are plb's own: smtp_proxy (an SMTP relay front) and tcp_proxy,
// with pool, connect_timeout, client_ip_forwarding, client_timeout and
// server_timeout, and for smtp_proxy banner_timeout, smtp_hostname and
// smtp_reject_early_talkers. A parameter of several roles names them all
// in the role error ("on a 'reverse_proxy', 'smtp_proxy' or 'tcp_proxy'
// service"); Perlbal's message names one.
//
// # Concurrency
//
// Parsing is pure apart from reading files through Options.FS. A Config
// is a plain value: the runtime keeps immutable snapshots and edits a Clone
// (Interp.SetConfig), then Validates and publishes it.
package config
