package builtin

import (
	"github.com/plb/plb/config"
	"github.com/plb/plb/http/plugin"
)

// redirect is Perlbal's Redirect: REDIRECT HOST <match> <target> answers
// requests for a matching host (Vhosts' pattern order) with 301 and
// "Location: http://<target><uri>".
type redirect struct{}

func (*redirect) Describe() config.Plugin { return describe("Redirect") }

func (*redirect) Register(svc *config.Service) (any, error) {
	m := make(map[string]string, len(svc.Redirects))
	for _, r := range svc.Redirects {
		m[r.Host] = r.Target
	}
	return &redirector{maps: m}, nil
}

type redirector struct{ maps map[string]string }

func (d *redirector) StartHTTPRequest(r *plugin.Request) bool {
	host := plugin.LowerASCII(r.Host())
	p := plugin.EachHostPattern(host, func(p string) bool { _, ok := d.maps[p]; return ok })
	if p == "" {
		return false
	}
	loc := "Location: http://" + d.maps[p] + string(r.URI())
	r.RespondFull(301, []string{loc, "Content-Length: 0"}, nil)
	return true
}
