package manage

import (
	"encoding/json"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/internal/version"
)

// snapshot is every figure of the status page, /status.json and /metrics,
// read once.
type snapshot struct {
	Version  string        `json:"version"`
	Pid      int           `json:"pid"`
	Start    time.Time     `json:"start_time"`
	Uptime   float64       `json:"uptime_seconds"`
	Services []serviceSnap `json:"services"`
	Pools    []poolSnap    `json:"pools"`
	Go       goSnap        `json:"go"`
}

type serviceSnap struct {
	Name      string           `json:"name"`
	Role      string           `json:"role"`
	Listen    string           `json:"listen,omitempty"`
	Enabled   bool             `json:"enabled"`
	Pool      string           `json:"pool,omitempty"`
	Requests  int64            `json:"requests"`
	Responses map[string]int64 `json:"responses"` // "2xx": n
	Errors    map[string]int64 `json:"errors,omitempty"`
	BytesIn   int64            `json:"bytes_in"`
	BytesOut  int64            `json:"bytes_out"`
	Clients   int64            `json:"clients"`
	Backends  int64            `json:"backends"`
	Idle      int64            `json:"idle_backends"`
	Waiting   int64            `json:"waiting_clients"`
	Pending   int64            `json:"pending_connects"`
	Resends   int64            `json:"resends,omitempty"`
	Spooled   int64            `json:"spooled_bytes,omitempty"`
	Latency   *latencySnap     `json:"latency,omitempty"`
	Sessions  *SessionStatus   `json:"sessions,omitempty"`
	HTTP2     *HTTP2Status     `json:"http2,omitempty"`
	// BackendHTTP2 counts HTTP/2 to the nodes (backend_protocol h2, h2c).
	BackendHTTP2 *HTTP2Status `json:"backend_http2,omitempty"`

	status ServiceStatus
}

type latencySnap struct {
	Count int64   `json:"count"`
	Sum   float64 `json:"sum_seconds"`
	P50   float64 `json:"p50_seconds"`
	P90   float64 `json:"p90_seconds"`
	P99   float64 `json:"p99_seconds"`
}

type poolSnap struct {
	Name     string     `json:"name"`
	Method   string     `json:"balance_method"`
	Services []string   `json:"services"`
	Nodes    []nodeSnap `json:"nodes"`
	// Source is how the pool's node source is doing (DNS; nil for a
	// static list or a nodefile).
	Source *SourceStatus `json:"source,omitempty"`
}

type nodeSnap struct {
	Name     string `json:"name"`
	Up       bool   `json:"up"`
	Attempts int64  `json:"attempts"`
	Connects int64  `json:"connects"`
	Failures int64  `json:"failures"`
	Requests int64  `json:"requests"`
	Active   int64  `json:"active"`
	// Weight is the node's share of new requests; 0 drains it.
	Weight int `json:"weight"`
	// Suspect: passive failures wait for a probe to confirm them.
	Suspect bool `json:"suspect,omitempty"`
	// NoReuse: the node sent bytes unasked; its connections are not
	// reused for a while.
	NoReuse      bool  `json:"no_reuse,omitempty"`
	LastResponse int64 `json:"last_response,omitempty"` // unix seconds
	// Recent counts the last 500 responses by class ("2xx": n).
	Recent map[string]int64 `json:"recent_responses"`
}

type goSnap struct {
	Goroutines  uint64 `json:"goroutines"`
	HeapObjects uint64 `json:"heap_objects"`
	HeapBytes   uint64 `json:"heap_bytes"`
	GCCycles    uint64 `json:"gc_cycles"`
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func classes(counts [6]int64) map[string]int64 {
	m := map[string]int64{}
	for i := 1; i < len(counts); i++ {
		m[strconv.Itoa(i)+"xx"] = counts[i]
	}
	return m
}

// snapshot reads the figures. Services and pools come in name order.
func (mc *console) snapshot() *snapshot {
	rt := mc.svc.rt
	cfg := rt.Config()
	start := rt.StartTime()
	rf := goFigures()
	sn := &snapshot{
		Version: version.Version, Pid: os.Getpid(), Start: start, Uptime: mc.svc.rt.Now().Sub(start).Seconds(),
		Go: goSnap{rf.goroutines, rf.heapObjects, rf.heapBytes, rf.gcCycles},
	}
	for _, name := range serviceNames(cfg) {
		s := cfg.Service(name)
		st := rt.ServiceStatus(name)
		ss := serviceSnap{
			Name: name, Role: s.Role, Listen: mc.listening(cfg, name, ""), Enabled: s.Enabled,
			Requests: st.Requests, Responses: classes(st.Responses), BytesIn: st.BytesIn, BytesOut: st.BytesOut,
			Clients: st.Clients, Backends: st.Backends, Idle: st.Bored, Waiting: st.PendClients, Pending: st.PendBackends,
			Sessions: st.Sessions, Resends: st.Resends, Spooled: st.Spooled, HTTP2: st.HTTP2, BackendHTTP2: st.BackendHTTP2, status: st,
		}
		switch s.Role {
		case config.RoleSMTPProxy, config.RoleTCPProxy:
			ss.Pool = s.Pool
		case config.RoleReverseProxy:
			ss.Pool = s.Pool
			ss.Errors = map[string]int64{"502": st.Errors502, "503": st.Errors503, "504": st.Errors504}
		}
		if h := st.Latency; h != nil {
			ss.Latency = &latencySnap{Count: h.Count, Sum: h.Sum, P50: quantile(h, .5), P90: quantile(h, .9), P99: quantile(h, .99)}
		}
		sn.Services = append(sn.Services, ss)
	}
	for _, name := range poolNames(cfg) {
		ps := poolSnap{Name: name, Services: []string{}, Nodes: []nodeSnap{}}
		for _, s := range sn.Services {
			if s.Pool == name {
				ps.Services = append(ps.Services, s.Name)
			}
		}
		p := rt.Pool(name)
		if p == nil {
			continue
		}
		ps.Method = p.Method()
		if src, ok := rt.PoolSource(name); ok {
			ps.Source = &src
		}
		now := mc.svc.rt.Now()
		for _, n := range p.Nodes() {
			suspect, _ := n.Suspect()
			var recent [6]int64
			for code, c := range n.ResponseCodes() {
				if k := code / 100; k > 0 && k < len(recent) {
					recent[k] += int64(c)
				}
			}
			ps.Nodes = append(ps.Nodes, nodeSnap{
				Name: n.Name, Up: !n.Down(), Attempts: n.Attempts.Load(), Connects: n.Connects.Load(),
				Failures: n.Failures.Load(), Requests: n.Requests.Load(), Active: n.Active.Load(), Weight: n.Weight(),
				LastResponse: n.LastResponse.Load(), Recent: classes(recent),
				Suspect: suspect, NoReuse: n.ReuseSuspended(now),
			})
		}
		sn.Pools = append(sn.Pools, ps)
	}
	return sn
}

func (mc *console) statusJSON() []byte {
	b, err := json.MarshalIndent(mc.snapshot(), "", "  ")
	if err != nil {
		return []byte("{}\n")
	}
	return append(b, '\n')
}

// promWriter writes the Prometheus text exposition format.
type promWriter struct{ b []byte }

// family starts a metric family.
func (w *promWriter) family(name, typ, help string) {
	w.b = append(w.b, "# HELP "+name+" "+help+"\n# TYPE "+name+" "+typ+"\n"...)
}

// sample writes one sample; labels are name, value pairs.
func (w *promWriter) sample(name string, v float64, labels ...string) {
	w.b = append(w.b, name...)
	if len(labels) > 0 {
		w.b = append(w.b, '{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.b = append(w.b, labels[i]...)
			w.b = append(w.b, `="`...)
			w.b = append(w.b, escapeLabel(labels[i+1])...)
			w.b = append(w.b, '"')
		}
		w.b = append(w.b, '}')
	}
	w.b = append(w.b, ' ')
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		w.b = strconv.AppendFloat(w.b, v, 'f', -1, 64) // counts without an exponent
	} else {
		w.b = strconv.AppendFloat(w.b, v, 'g', -1, 64)
	}
	w.b = append(w.b, '\n')
}

func escapeLabel(s string) string {
	if !strings.ContainsAny(s, "\\\"\n") {
		return s
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

// metrics renders the Prometheus page. It is long because it is the page:
// one family after another in the order the page shows them, each a few
// lines.
func (mc *console) metrics() []byte {
	sn := mc.snapshot()
	// Per-service figures exist for the roles that serve clients.
	var served []serviceSnap
	for _, s := range sn.Services {
		switch s.Role {
		case config.RoleReverseProxy, config.RoleWebServer, config.RoleSMTPProxy, config.RoleTCPProxy:
			served = append(served, s)
		}
	}
	w := &promWriter{b: make([]byte, 0, 8<<10)}
	w.family("plb_build_info", "gauge", "plb's version (always 1).")
	w.sample("plb_build_info", 1, "version", sn.Version)
	w.family("plb_start_time_seconds", "gauge", "When the process started, in seconds since the epoch.")
	w.sample("plb_start_time_seconds", float64(sn.Start.Unix()))

	type svcMetric struct {
		name, typ, help string
		v               func(s *serviceSnap) float64
	}
	for _, m := range []svcMetric{
		{"plb_requests_total", "counter", "Requests received, by service.", func(s *serviceSnap) float64 { return float64(s.Requests) }},
		{"plb_received_bytes_total", "counter", "Request bytes read from clients, by service.", func(s *serviceSnap) float64 { return float64(s.BytesIn) }},
		{"plb_sent_bytes_total", "counter", "Response bytes sent to clients, by service.", func(s *serviceSnap) float64 { return float64(s.BytesOut) }},
		{"plb_client_connections", "gauge", "Open client connections, by service.", func(s *serviceSnap) float64 { return float64(s.Clients) }},
		{"plb_backend_connections", "gauge", "Open backend connections, by service.", func(s *serviceSnap) float64 { return float64(s.Backends) }},
		{"plb_backend_connections_idle", "gauge", "Idle (bored) backend connections kept for reuse, by service.", func(s *serviceSnap) float64 { return float64(s.Idle) }},
		{"plb_queue_length", "gauge", "Clients waiting for a backend connection, by service.", func(s *serviceSnap) float64 { return float64(s.Waiting) }},
		{"plb_backend_connects_pending", "gauge", "Backend connects (and verifications) in progress, by service.", func(s *serviceSnap) float64 { return float64(s.Pending) }},
	} {
		w.family(m.name, m.typ, m.help)
		for i := range served {
			s := &served[i]
			w.sample(m.name, m.v(s), "service", s.Name, "role", s.Role)
		}
	}
	now := mc.svc.rt.Now()
	for _, m := range []struct {
		name, help string
		v          func(q QueueStatus) float64
	}{
		{"plb_queue_clients", "Clients waiting for a backend connection, by reverse proxy and queue (normal, highpri, lowpri).",
			func(q QueueStatus) float64 { return float64(q.Count) }},
		{"plb_queue_age_seconds", "How long the oldest client of each queue has waited, in seconds.",
			func(q QueueStatus) float64 { return queueWait(q, now).Seconds() }},
	} {
		w.family(m.name, "gauge", m.help)
		for _, s := range served {
			if s.Role != config.RoleReverseProxy {
				continue
			}
			for i, name := range QueueNames() {
				w.sample(m.name, m.v(s.status.Queues[i]), "service", s.Name, "queue", name)
			}
		}
	}
	w.family("plb_responses_total", "counter", "Responses sent, by service and status class (backend responses and plb's own).")
	for _, s := range served {
		for c := 1; c < len(s.status.Responses); c++ {
			w.sample("plb_responses_total", float64(s.status.Responses[c]), "service", s.Name, "class", strconv.Itoa(c)+"xx")
		}
	}
	w.family("plb_proxy_errors_total", "counter", "Error responses plb generated itself: 502 broken backend reply, 503 no node reachable, 504 backend timeout.")
	for _, s := range served {
		if s.Errors != nil {
			for _, code := range []string{"502", "503", "504"} {
				w.sample("plb_proxy_errors_total", float64(s.Errors[code]), "service", s.Name, "code", code)
			}
		}
	}
	http2Families(w, served, "plb_http2", "HTTP/2 client connections open (services with http2 on).",
		"HTTP/2 streams in progress.", "HTTP/2 streams (requests) received.",
		func(s serviceSnap) *HTTP2Status { return s.HTTP2 })
	http2Families(w, served, "plb_backend_http2", "HTTP/2 connections to the nodes open (backend_protocol h2 or h2c).",
		"HTTP/2 streams to the nodes in progress.", "HTTP/2 streams (requests) sent to the nodes.",
		func(s serviceSnap) *HTTP2Status { return s.BackendHTTP2 })
	w.family("plb_backend_resends_total", "counter", "Requests a reverse proxy sent again on a fresh backend connection after one failed before any response byte (retries).")
	for _, s := range served {
		if s.Role == config.RoleReverseProxy {
			w.sample("plb_backend_resends_total", float64(s.Resends), "service", s.Name)
		}
	}
	w.family("plb_spool_bytes", "gauge", "Bytes in a reverse proxy's response spool files (bounded by buffer_dir_size).")
	for _, s := range served {
		if s.Role == config.RoleReverseProxy {
			w.sample("plb_spool_bytes", float64(s.Spooled), "service", s.Name)
		}
	}
	w.family("plb_spool_full_total", "counter", "Response pieces held in memory, their backend paused, because buffer_dir_size was reached.")
	for _, s := range served {
		if s.Role == config.RoleReverseProxy {
			w.sample("plb_spool_full_total", float64(s.status.SpoolFull), "service", s.Name)
		}
	}
	w.family("plb_request_duration_seconds", "histogram", "Time from a request head parsed to its response complete, by service.")
	for _, s := range served {
		h := s.status.Latency
		if h == nil {
			continue
		}
		var cum int64
		for i, b := range h.Bounds {
			cum += h.Counts[i]
			w.sample("plb_request_duration_seconds_bucket", float64(cum), "service", s.Name, "le", strconv.FormatFloat(b, 'g', -1, 64))
		}
		w.sample("plb_request_duration_seconds_bucket", float64(h.Count), "service", s.Name, "le", "+Inf")
		w.sample("plb_request_duration_seconds_sum", h.Sum, "service", s.Name)
		w.sample("plb_request_duration_seconds_count", float64(h.Count), "service", s.Name)
	}

	w.family("plb_sessions_total", "counter", "smtp_proxy and tcp_proxy sessions by outcome so far: relayed (reached a backend), no_backend (refused: 421 for SMTP), early_talker (refused: 554), other (left before a backend was ready, or still setting up).")
	for _, s := range served {
		if ss := s.Sessions; ss != nil {
			other := ss.Total - ss.Relayed - ss.NoBackend - ss.EarlyTalkers
			for _, o := range []struct {
				name string
				v    int64
			}{{"relayed", ss.Relayed}, {"no_backend", ss.NoBackend}, {"early_talker", ss.EarlyTalkers}, {"other", max(other, 0)}} {
				w.sample("plb_sessions_total", float64(o.v), "service", s.Name, "outcome", o.name)
			}
		}
	}
	w.family("plb_session_backend_failures_total", "counter", "Backend tries of smtp_proxy and tcp_proxy sessions that failed (refused, timeout, bad greeting, XCLIENT refused), by service; by node in plb_node_failures_total.")
	for _, s := range served {
		if ss := s.Sessions; ss != nil {
			w.sample("plb_session_backend_failures_total", float64(ss.BackendFailures), "service", s.Name)
		}
	}
	w.family("plb_pool_source_up", "gauge", "1 while the pool's node source (nodes_from) answers, 0 while it fails and the pool keeps its last nodes.")
	for _, p := range sn.Pools {
		if p.Source != nil {
			w.sample("plb_pool_source_up", b2f(p.Source.OK), "pool", p.Name, "source", p.Source.Source)
		}
	}
	w.family("plb_pool_source_failures_total", "counter", "Questions of the pool's node source that failed.")
	for _, p := range sn.Pools {
		if p.Source != nil {
			w.sample("plb_pool_source_failures_total", float64(p.Source.Failures), "pool", p.Name, "source", p.Source.Source)
		}
	}

	type nodeMetric struct {
		name, typ, help string
		v               func(n *nodeSnap) float64
	}
	for _, m := range []nodeMetric{
		{"plb_node_up", "gauge", "1 when the node takes traffic, 0 when it is marked down.", func(n *nodeSnap) float64 { return b2f(n.Up) }},
		{"plb_node_suspect", "gauge", "1 while failures on traffic wait for a probe to confirm them before the node goes down.", func(n *nodeSnap) float64 { return b2f(n.Suspect) }},
		{"plb_node_reuse_suspended", "gauge", "1 while the node's connections are not reused (it sent bytes nobody asked for).", func(n *nodeSnap) float64 { return b2f(n.NoReuse) }},
		{"plb_node_connect_attempts_total", "counter", "Backend connects started to the node.", func(n *nodeSnap) float64 { return float64(n.Attempts) }},
		{"plb_node_connects_total", "counter", "Backend connects to the node that succeeded.", func(n *nodeSnap) float64 { return float64(n.Connects) }},
		{"plb_node_failures_total", "counter", "Failures counted against the node (refused, reset, timeout, broken reply).", func(n *nodeSnap) float64 { return float64(n.Failures) }},
		{"plb_node_responses_total", "counter", "Responses received from the node.", func(n *nodeSnap) float64 { return float64(n.Requests) }},
		{"plb_node_active_requests", "gauge", "Requests in flight on the node.", func(n *nodeSnap) float64 { return float64(n.Active) }},
		{"plb_node_weight", "gauge", "The node's weight: its share of new requests against the others' (0: draining).", func(n *nodeSnap) float64 { return float64(n.Weight) }},
	} {
		w.family(m.name, m.typ, m.help)
		for _, p := range sn.Pools {
			for i := range p.Nodes {
				w.sample(m.name, m.v(&p.Nodes[i]), "pool", p.Name, "node", p.Nodes[i].Name)
			}
		}
	}
	w.family("plb_go_goroutines", "gauge", "Goroutines that exist.")
	w.sample("plb_go_goroutines", float64(sn.Go.Goroutines))
	w.family("plb_go_heap_objects", "gauge", "Live heap objects.")
	w.sample("plb_go_heap_objects", float64(sn.Go.HeapObjects))
	w.family("plb_go_heap_bytes", "gauge", "Bytes of live heap objects.")
	w.sample("plb_go_heap_bytes", float64(sn.Go.HeapBytes))
	return w.b
}

// http2Families writes prefix_connections, prefix_streams and
// prefix_streams_total for the services whose of gives HTTP/2 counts.
func http2Families(w *promWriter, served []serviceSnap, prefix, conns, streams, total string, of func(serviceSnap) *HTTP2Status) {
	for _, f := range []struct {
		suffix, typ, help string
		v                 func(*HTTP2Status) int64
	}{
		{"_connections", "gauge", conns, func(h *HTTP2Status) int64 { return h.Conns }},
		{"_streams", "gauge", streams, func(h *HTTP2Status) int64 { return h.Streams }},
		{"_streams_total", "counter", total, func(h *HTTP2Status) int64 { return h.StreamsTotal }},
	} {
		w.family(prefix+f.suffix, f.typ, f.help)
		for _, s := range served {
			if h := of(s); h != nil {
				w.sample(prefix+f.suffix, float64(f.v(h)), "service", s.Name)
			}
		}
	}
}
