// Package plb is an event-driven reverse-proxy load balancer and web server
// for HTTP, SMTP and plain TCP, compatible with Perlbal's and Pure Load
// Balancer's configuration files. See README.md and the cmd/plb command.
package plb
