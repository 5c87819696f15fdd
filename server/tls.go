package server

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/plb/plb/config"
	"github.com/plb/plb/http/handoff"
	"github.com/plb/plb/internal/errs"
)

// TLS settings of services: the server side of enable_ssl (certificates,
// SNI, ciphers, client certificates) and the client side of backend_ssl.
// Apply builds them from the files each time it runs, so a reload (SIGHUP)
// picks up renewed certificates: connections accepted from then on use
// the new tls.Config, open ones keep theirs. A build whose inputs (the
// files' contents and the settings) did not change keeps the running
// tls.Config, and with it its session ticket keys and session cache. See
// docs/tls.md.

// tlsBuild is a tls.Config with the fingerprint of what it was built from.
type tlsBuild struct {
	sum [32]byte
	cfg *tls.Config
}

// tlsInputs hashes the settings and file contents a build reads.
type tlsInputs struct {
	h     [][]byte
	files map[string][]byte
}

func (in *tlsInputs) add(parts ...string) {
	for _, p := range parts {
		in.h = append(in.h, []byte(p))
	}
}

// read reads a file once per build, naming the key it came from in the
// error.
func (in *tlsInputs) read(key, name string) ([]byte, error) {
	if b, ok := in.files[name]; ok {
		return b, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("%s '%s': %w", key, name, errs.UnwrapPath(err))
	}
	if in.files == nil {
		in.files = map[string][]byte{}
	}
	in.files[name] = b
	in.h = append(in.h, []byte(name), b)
	return b, nil
}

func (in *tlsInputs) sum() [32]byte {
	h := sha256.New()
	var n [8]byte
	for _, p := range in.h {
		binary.LittleEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	var s [32]byte
	h.Sum(s[:0])
	return s
}

// tlsError places a TLS setting error at the service's definition.
func tlsError(c *config.Config, sc *config.Service, err error) error {
	file := sc.File
	if file == "" {
		file = c.File
	}
	return &config.Error{File: file, Line: sc.Line, Err: fmt.Errorf("service '%s': %w", sc.Name, err)}
}

// serverTLS builds the tls.Config of a service with enable_ssl, or keeps
// old if nothing it reads changed (then nothing is parsed again).
func serverTLS(c *config.Config, sc *config.Service, old *tlsBuild) (*tlsBuild, error) {
	var in tlsInputs
	in.add("server", sc.SSLCipherList, fmt.Sprint(sc.SSLVerifyMode), sc.SSLCAPath, sc.Role, fmt.Sprint(sc.HTTP2On()))
	fail := func(err error) (*tlsBuild, error) { return nil, tlsError(c, sc, err) }

	// Read everything first: an unchanged build is not parsed again.
	type pairFiles struct{ certKey, cert, keyKey, key string }
	pairs := []pairFiles{{"ssl_cert_file", sc.SSLCertFile, "ssl_key_file", sc.SSLKeyFile}}
	for _, e := range sc.SSLCertificates {
		cf, kf := config.SplitCertKey(e)
		pairs = append(pairs, pairFiles{"ssl_certificates", cf, "key", kf})
	}
	for _, p := range pairs {
		if _, err := in.read(p.certKey, p.cert); err != nil {
			return fail(err)
		}
		if _, err := in.read(p.keyKey, p.key); err != nil {
			return fail(err)
		}
	}
	suites, err := config.CipherSuites(sc.SSLCipherList)
	if err != nil {
		return fail(err)
	}
	auth := config.ClientAuth(sc.SSLVerifyMode)
	var caFiles []string
	if sc.SSLCAPath != "" && auth != tls.NoClientCert {
		if caFiles, err = readCADir(&in, sc.SSLCAPath); err != nil {
			return fail(err)
		}
	}
	sum := in.sum()
	if old != nil && old.sum == sum {
		return old, nil
	}

	var certs []tls.Certificate
	for _, p := range pairs {
		cert, err := tls.X509KeyPair(in.files[p.cert], in.files[p.key])
		if err != nil {
			if p.cert == p.key {
				return fail(fmt.Errorf("%s '%s': %w", p.certKey, p.cert, err))
			}
			return fail(fmt.Errorf("%s '%s' with %s '%s': %w", p.certKey, p.cert, p.keyKey, p.key, err))
		}
		certs = append(certs, cert)
	}
	var cas *x509.CertPool
	if caFiles != nil {
		cas = x509.NewCertPool()
		n := 0
		for _, f := range caFiles {
			if cas.AppendCertsFromPEM(in.files[f]) {
				n++
			}
		}
		if n == 0 {
			return fail(fmt.Errorf("ssl_ca_path '%s': no PEM certificate found", sc.SSLCAPath))
		}
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: certs, // with several, crypto/tls picks by SNI
		CipherSuites: suites,
		ClientAuth:   auth,
		ClientCAs:    cas,
	}
	if roleOf(sc.Role).alpnHTTP() {
		cfg.NextProtos = []string{"http/1.1"}
		if sc.HTTP2On() {
			cfg.NextProtos = []string{"h2", "http/1.1"}
		}
	}
	return &tlsBuild{sum: sum, cfg: cfg}, nil
}

// readCADir reads every regular file in dir (OpenSSL's hashed directories
// hold one certificate per file, as symlinks) and returns their names.
func readCADir(in *tlsInputs, dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("ssl_ca_path '%s': %w", dir, errs.UnwrapPath(err))
	}
	files := []string{}
	for _, e := range ents {
		name := filepath.Join(dir, e.Name())
		fi, err := os.Stat(name) // follows the hash symlinks
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if _, err := in.read("ssl_ca_path", name); err != nil {
			return nil, err
		}
		files = append(files, name)
	}
	return files, nil
}

// backendTLS builds the client tls.Config of a reverse_proxy with
// backend_ssl, or keeps old if nothing it reads changed.
func backendTLS(c *config.Config, sc *config.Service, old *tlsBuild) (*tlsBuild, error) {
	var in tlsInputs
	in.add("backend", fmt.Sprint(sc.BackendSSLVerify), sc.BackendSSLServerName, sc.BackendSSLCAFile)
	var ca []byte
	if sc.BackendSSLCAFile != "" {
		var err error
		if ca, err = in.read("backend_ssl_ca_file", sc.BackendSSLCAFile); err != nil {
			return nil, tlsError(c, sc, err)
		}
	}
	sum := in.sum()
	if old != nil && old.sum == sum {
		return old, nil // the same CA file: not parsed again
	}
	var roots *x509.CertPool
	if ca != nil {
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(ca) {
			return nil, tlsError(c, sc, fmt.Errorf("backend_ssl_ca_file '%s': no PEM certificate found", sc.BackendSSLCAFile))
		}
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		RootCAs:            roots,
		ServerName:         sc.BackendSSLServerName,
		InsecureSkipVerify: !sc.BackendSSLVerify,
		ClientSessionCache: tls.NewLRUClientSessionCache(256),
		NextProtos:         []string{"http/1.1"},
	}
	return &tlsBuild{sum: sum, cfg: cfg}, nil
}

// tlsWanted reports whether a service's listener runs TLS.
func tlsWanted(sc *config.Service) bool {
	return sc.EnableSSL && sc.Enabled && sc.Listen != ""
}

// tlsNames lists the names a build's certificates cover (for the log).
func tlsNames(b *tlsBuild) string {
	var names []string
	for _, c := range b.cfg.Certificates {
		if c.Leaf != nil {
			names = append(names, c.Leaf.DNSNames...)
			for _, ip := range c.Leaf.IPAddresses {
				names = append(names, ip.String())
			}
		}
	}
	return strings.Join(slices.Compact(names), ",")
}

// checkTLS builds the TLS configs a service change needs (Apply's check
// phase); a fresh service gets them at once, before its listener accepts.
// Called with s.mu held.
func (s *Server) checkTLS(c *config.Config, ch *serviceChange) error {
	sc, sv := ch.sc, ch.sv
	if tlsWanted(sc) {
		b, err := serverTLS(c, sc, sv.tlsBuild)
		if err != nil {
			return err
		}
		ch.tls = b
	}
	if roleOf(sc.Role).uses(sc) == useOther { // backend_ssl
		b, err := backendTLS(c, sc, sv.beTLSBuild)
		if err != nil {
			return err
		}
		ch.beTLS = b
	}
	if ch.fresh {
		s.commitTLS(ch)
	}
	return nil
}

// commitTLS makes a change's TLS configs the service's: connections
// accepted from now on use them. Called with s.mu held.
func (s *Server) commitTLS(ch *serviceChange) {
	sv := ch.sv
	if ch.tls != nil && ch.tls != sv.tlsBuild {
		s.log.Info("TLS certificates loaded", "service", sv.name, "names", tlsNames(ch.tls))
	}
	sv.tlsBuild, sv.beTLSBuild = ch.tls, ch.beTLS
	if ch.tls != nil {
		sv.tls.Store(ch.tls.cfg)
	} else {
		sv.tls.Store(nil)
	}
}

// notTLS is what a client of sv's TLS listener gets when its first bytes
// are no TLS record: an HTTP role answers a plain HTTP request with 400, as
// Go's net/http does (httpNotTLS); any other role (the SMTP and TCP
// relays, a plugin's) closes it without a word (nil).
func (sv *service) notTLS() func(first []byte) []byte {
	if handoff.TakesHTTP(sv.role) {
		return httpNotTLS
	}
	return nil
}

// httpOverTLS answers a plain HTTP request sent to a TLS listener.
const httpOverTLS = "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"

// httpNotTLS answers a client whose first five bytes start an HTTP request
// (a record header that is none) with httpOverTLS.
func httpNotTLS(first []byte) []byte {
	switch string(first) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "CONNE":
		return []byte(httpOverTLS)
	}
	return nil
}
