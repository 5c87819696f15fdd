package builtin

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/plb/plb/config"
	"github.com/plb/plb/http/plugin"
)

// stats is Perlbal's Stats: per service, counters of web requests and of
// proxied requests (normal and high priority), and the last 100 proxied
// requests with the time their backend took. Console commands: stats
// (Perlbal's "%-15s %-25s %12d" rows per service and in total) and recent.
// The counters survive configuration changes; they live in the plugin, so
// in the registry.
type stats struct {
	mu   sync.Mutex
	svcs map[string]*statCounters
}

// statKeys are Perlbal's counter names, sorted as its stats command prints
// them.
var statKeys = [...]string{"files_reproxied", "files_sent", "proxy_requests", "proxy_requests_highpri", "web_requests"}

// statCounters are one service's figures. files_sent and files_reproxied
// stay 0: plb's web server has no start_send_file hook yet, and plb's
// reproxy (X-REPROXY-FILE, -URL) runs no plugin hook to count it.
type statCounters struct {
	filesReproxied, filesSent, proxy, proxyHigh, web atomic.Int64

	mu     sync.Mutex
	recent []string // at most maxRecent, oldest first
}

const maxRecent = 100

func newStats() *stats { return &stats{svcs: map[string]*statCounters{}} }

func (*stats) Describe() config.Plugin { return describe("Stats") }

func (s *stats) counters(name string) *statCounters {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.svcs[name]
	if c == nil {
		c = &statCounters{}
		s.svcs[name] = c
	}
	return c
}

func (s *stats) Register(svc *config.Service) (any, error) {
	return &statsHooks{c: s.counters(svc.Name)}, nil
}

type statsHooks struct{ c *statCounters }

func (h *statsHooks) StartWebRequest(r *plugin.Request) bool {
	h.c.web.Add(1)
	return false
}

// statsURL keys the request's URL kept for backend_response_received.
type statsURL struct{}

func (h *statsHooks) BackendClientAssigned(r *plugin.Request, e *plugin.HeaderEdits) {
	if r.HighPriority() {
		h.c.proxyHigh.Add(1)
	} else {
		h.c.proxy.Add(1)
	}
	host := string(r.Head.Get("Host"))
	if host == "" {
		host = "unknown"
	}
	r.Keep(statsURL{}, "http://"+host+string(r.URI()))
}

func (h *statsHooks) BackendResponseReceived(r *plugin.Request, status int) {
	url, ok := r.Kept(statsURL{}).(string)
	if !ok || r.Assigned.IsZero() {
		return
	}
	line := fmt.Sprintf("%-6.4f %s", r.Now.Sub(r.Assigned).Seconds(), url)
	h.c.mu.Lock()
	if len(h.c.recent) >= maxRecent {
		h.c.recent = slices.Delete(h.c.recent, 0, 1)
	}
	h.c.recent = append(h.c.recent, line)
	h.c.mu.Unlock()
}

func (h *statCounters) values() [len(statKeys)]int64 {
	return [...]int64{h.filesReproxied.Load(), h.filesSent.Load(), h.proxy.Load(), h.proxyHigh.Load(), h.web.Load()}
}

func (*stats) Commands() []string { return []string{"stats", "recent"} }

func (s *stats) Command(cfg *config.Config, line string) ([]string, error) {
	var out []string
	var total [len(statKeys)]int64
	names := s.registered(cfg)
	switch line {
	case "stats":
		for _, name := range names {
			v := s.counters(name).values()
			for i, k := range statKeys {
				out = append(out, fmt.Sprintf("%-15s %-25s %12d", name, k, v[i]))
				total[i] += v[i]
			}
		}
		for i, k := range statKeys {
			out = append(out, fmt.Sprintf("%-15s %-25s %12d", "total", k, total[i]))
		}
	case "recent":
		for _, name := range names {
			c := s.counters(name)
			c.mu.Lock()
			for _, r := range c.recent {
				out = append(out, name+" "+r)
			}
			c.mu.Unlock()
		}
	default:
		word, _, _ := strings.Cut(line, " ")
		return nil, fmt.Errorf("The '%s' command takes no arguments", word)
	}
	return append(out, "."), nil
}

// registered lists the services with Stats registered, sorted.
func (s *stats) registered(cfg *config.Config) []string {
	var names []string
	for _, svc := range cfg.Services {
		if svc.HasPlugin("stats") {
			names = append(names, svc.Name)
		}
	}
	slices.Sort(names)
	return names
}
