//go:build !linux

// plb's engine is built on Linux system calls (epoll(7), accept4(2),
// sendfile(2), SO_REUSEPORT, TCP_CORK): it builds on Linux only.
package engine

// engineRequiresLinux is undefined on purpose: elsewhere the build stops
// with "undefined: engineRequiresLinux", which says why.
var _ = engineRequiresLinux
