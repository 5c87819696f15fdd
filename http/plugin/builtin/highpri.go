package builtin

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/plb/plb/config"
	"github.com/plb/plb/http/plugin"
)

// highpri is Perlbal's Highpri: requests whose URI matches
// SET <svc>.highpri.uri_pattern (default Perlbal's LiveJournal one), or
// whose Host matches host_pattern, get high priority; "none", "undef" or
// "null" turns a pattern off. The console command patterns lists them.
type highpri struct{}

// defaultHighpriURI is Perlbal's default uri_pattern.
const defaultHighpriURI = `^(?:/interface/(?:xmlrpc|flat)|/login\.bml)$`

func (*highpri) Describe() config.Plugin { return describe("Highpri") }

func (*highpri) Register(svc *config.Service) (any, error) {
	uri, host := highpriPatterns(svc)
	h := &highpriCheck{}
	var err error
	if !disabledPattern(uri) {
		if h.uri, err = regexp.Compile(uri); err != nil {
			return nil, fmt.Errorf("Invalid regular expression")
		}
	}
	if !disabledPattern(host) {
		if h.host, err = regexp.Compile(host); err != nil {
			return nil, fmt.Errorf("Invalid regular expression")
		}
	}
	return h, nil
}

// highpriPatterns are svc's patterns as Perlbal prints them.
func highpriPatterns(svc *config.Service) (uri, host string) {
	uri, host = defaultHighpriURI, "undef"
	if v, ok := svc.Extra["highpri.uri_pattern"]; ok {
		uri = v
	}
	if v, ok := svc.Extra["highpri.host_pattern"]; ok {
		host = v
	}
	return uri, host
}

type highpriCheck struct{ uri, host *regexp.Regexp }

func (h *highpriCheck) MakeHighPriority(r *plugin.Request) bool {
	if h.uri != nil && h.uri.Match(r.URI()) {
		return true
	}
	if host := r.Head.Get("Host"); h.host != nil && len(host) > 0 && h.host.Match(host) {
		return true
	}
	return false
}

func (*highpri) Commands() []string { return []string{"patterns"} }

func (*highpri) Command(cfg *config.Config, line string) ([]string, error) {
	out := []string{"High priority pattern buffer:"}
	for _, s := range cfg.Services {
		if !s.HasPlugin("highpri") {
			continue
		}
		uri, host := highpriPatterns(s)
		out = append(out, "SET "+s.Name+".highpri.uri_pattern = "+uri, "SET "+s.Name+".highpri.host_pattern = "+host)
	}
	return append(out, "."), nil
}

// queues is Perlbal's Queues: backend requests carry X-Queue-Count and
// X-Queue-Age (clients waiting for a backend, and how long the oldest has
// waited, in seconds), and the same for the high-priority queue.
type queues struct{}

func (*queues) Describe() config.Plugin { return describe("Queues") }

func (*queues) Register(*config.Service) (any, error) { return queueHeaders{}, nil }

type queueHeaders struct{}

func (queueHeaders) BackendClientAssigned(r *plugin.Request, h *plugin.HeaderEdits) {
	q := r.Queue
	var b [20]byte
	h.Set("X-Queue-Count", strconv.AppendInt(b[:0], int64(q.Count), 10))
	h.Set("X-Queue-Age", strconv.AppendInt(b[:0], int64(q.Age.Seconds()), 10))
	h.Set("X-HP-Queue-Count", strconv.AppendInt(b[:0], int64(q.HighCount), 10))
	h.Set("X-HP-Queue-Age", strconv.AppendInt(b[:0], int64(q.HighAge.Seconds()), 10))
}
