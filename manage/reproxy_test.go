package manage

import "testing"

// reproxyRT is a runtime that knows reproxy fetch connections.
type reproxyRT struct{ *fakeRT }

func (reproxyRT) ReproxyState() []string {
	return []string{"connecting 10.0.0.9:80 1", "bored 10.0.0.9:80 2", "clients_queued 10.0.0.9:80 0", "backends 10.0.0.9:80 2"}
}

// TestConsoleReproxy checks show service's cache lines and reproxy_state
// in Perlbal's formats.
func TestConsoleReproxy(t *testing.T) {
	rt := testRuntime(t)
	st := rt.ServiceStatus("proxy")
	st.ReproxyCache = &CacheStatus{Size: 3, Max: 150, Hits: 1, Requests: 3}
	rt.setStatus("proxy", st)
	cfg := rt.Config().Clone()
	cfg.Global.Extra = map[string]string{"max_reproxy_connections": "4", "max_reproxy_connections(10.0.0.9:80)": "2"}
	rt.Apply(cfg)
	cl := dialConsole(t, startConsole(t, New("mgmt", reproxyRT{rt})))
	for _, tc := range []struct{ cmd, want string }{
		{"show service proxy", lines("SERVICE proxy", "     listening: 127.0.0.1:8080", "          role: reverse_proxy",
			"  pend clients: 1", "  pend backend: 1", "   10.0.0.2:8080 - verifying_backend - 2s",
			"    cache size: 3/150 (2.00%)", "    cache hits: 1", "cache hit rate: 33.33%", " connect-ahead: 1/2",
			"          pool: web", "         nodes:",
			"                10.0.0.1:80                 3",
			"                10.0.0.2:8080               0", ".")},
		{"reproxy_state", lines("connecting 10.0.0.9:80 1", "bored 10.0.0.9:80 2", "clients_queued 10.0.0.9:80 0",
			"backends 10.0.0.9:80 2", "SERVER max_reproxy_connections(10.0.0.9:80) = 2", "SERVER max_reproxy_connections = 4", ".")},
	} {
		if got := cl.do(tc.cmd); got != tc.want {
			t.Errorf("%q:\n--- got ---\n%s\n--- want ---\n%s", tc.cmd, got, tc.want)
		}
	}
	if got := percent(0, 0); got != "0.00%" {
		t.Errorf("percent(0, 0) = %s", got)
	}
}
