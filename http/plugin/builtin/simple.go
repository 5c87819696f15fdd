package builtin

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/plb/plb/config"
	"github.com/plb/plb/http/plugin"
)

// notModified is Perlbal's NotModified: once SET <svc>.notmodified.
// host_pattern = <regex> is given, a request for a matching host that has
// any If-Modified-Since is answered 304 at once.
type notModified struct{}

func (*notModified) Describe() config.Plugin { return describe("NotModified") }

func (*notModified) Register(svc *config.Service) (any, error) {
	pat := svc.Extra["notmodified.host_pattern"]
	if pat == "" || disabledPattern(pat) {
		return nil, nil
	}
	re, err := regexp.Compile(pat)
	if err != nil {
		return nil, fmt.Errorf("Invalid regular expression")
	}
	return &notModifiedCheck{re}, nil
}

type notModifiedCheck struct{ host *regexp.Regexp }

func (n *notModifiedCheck) StartHTTPRequest(r *plugin.Request) bool {
	host := r.Head.Get("Host")
	if len(r.URI()) == 0 || len(host) == 0 || !n.host.Match(host) || len(r.Head.Get("If-Modified-Since")) == 0 {
		return false
	}
	r.Respond(304, "Not Modified")
	return true
}

// disabledPattern reports Perlbal's words for "no pattern".
func disabledPattern(v string) bool { return v == "undef" || v == "none" || v == "null" }

// maxContentLength is Perlbal's MaxContentLength: a request whose
// Content-Length is above SET max_content_length (0: no limit) is answered
// 413 "Content too long."
type maxContentLength struct{}

func (*maxContentLength) Describe() config.Plugin { return describe("MaxContentLength") }

func (*maxContentLength) Register(svc *config.Service) (any, error) {
	n, _ := strconv.ParseInt(svc.Extra["max_content_length"], 10, 64)
	if n <= 0 {
		return nil, nil
	}
	return contentLimit(n), nil
}

type contentLimit int64

func (m contentLimit) StartHTTPRequest(r *plugin.Request) bool {
	if r.Head.ContentLength <= int64(m) {
		return false
	}
	r.Respond(413, "Content too long.\n")
	return true
}

// xffExtras is Perlbal's XFFExtras: with SET send_backend_port = 1 the
// backend request gets X-Forwarded-Port (the port the client connected
// to), with send_backend_proto = 1 X-Forwarded-Proto (http or https);
// not for a trusted peer of a blind_proxy, whose fields pass untouched.
type xffExtras struct{}

func (*xffExtras) Describe() config.Plugin { return describe("XFFExtras") }

func (*xffExtras) Register(svc *config.Service) (any, error) {
	x := &xffAdder{port: svc.Extra["send_backend_port"] == "1", proto: svc.Extra["send_backend_proto"] == "1"}
	if !x.port && !x.proto {
		return nil, nil
	}
	return x, nil
}

type xffAdder struct{ port, proto bool }

func (x *xffAdder) BackendClientAssigned(r *plugin.Request, h *plugin.HeaderEdits) {
	if r.Trusted() && r.Svc.BlindProxy {
		return
	}
	if x.port {
		var b [8]byte
		h.Set("X-Forwarded-Port", strconv.AppendUint(b[:0], uint64(r.Port()), 10))
	}
	if x.proto {
		proto := "http"
		if r.TLS {
			proto = "https"
		}
		h.Set("X-Forwarded-Proto", []byte(proto))
	}
}

// autoRemoveLeadingDir is Perlbal's AutoRemoveLeadingDir: a web server
// whose docroot ends in /<name> serves /<name>/x as /x. Unlike Perlbal,
// /<name>foo is left alone (only a whole path segment goes).
type autoRemoveLeadingDir struct{}

func (*autoRemoveLeadingDir) Describe() config.Plugin { return describe("AutoRemoveLeadingDir") }

func (*autoRemoveLeadingDir) Register(svc *config.Service) (any, error) {
	m := leadingDirRE.FindStringSubmatch(svc.Docroot)
	if m == nil {
		return nil, nil
	}
	return leadingDir("/" + m[1]), nil
}

// leadingDirRE is Perlbal's m!/([\w-]+)/?$!.
var leadingDirRE = regexp.MustCompile(`/([\w-]+)/?$`)

type leadingDir string

func (d leadingDir) StartServeRequest(r *plugin.Request, uri []byte) []byte {
	rest, ok := strings.CutPrefix(string(uri), string(d))
	if !ok || rest != "" && rest[0] != '/' && rest[0] != '?' {
		return nil
	}
	if rest == "" || rest[0] == '?' {
		rest = "/" + rest
	}
	return []byte(rest)
}
