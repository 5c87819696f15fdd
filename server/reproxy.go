package server

import (
	"github.com/plb/plb/config"
	"github.com/plb/plb/http/proxy"
)

// reproxySettings gives a reverse_proxy's settings the process's reproxy
// fetch pools (with the SERVER max_reproxy_connections caps of c) and the
// services an X-REPROXY-SERVICE may name. Called by Apply with s.mu held.
func (s *Server) reproxySettings(st *proxy.Settings, c *config.Config) {
	if s.reproxy == nil {
		s.reproxy = proxy.NewReproxy(len(s.eng.Loops()))
	}
	s.reproxy.SetLimits(c.Global.Extra)
	st.Reproxy = s.reproxy
	st.Resolve = s.resolve
}

// ReproxyState lists the reproxy fetch connections by host:port, for the
// console's reproxy_state (manage.ReproxyStater). Safe from any goroutine.
func (s *Server) ReproxyState() []string {
	s.mu.Lock()
	m := s.reproxy
	s.mu.Unlock()
	if m == nil {
		return nil
	}
	return m.State()
}
