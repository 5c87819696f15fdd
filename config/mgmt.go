package config

import (
	"net/netip"
	"strings"
)

// CheckManagementAccess refuses an enabled management service that listens
// beyond this host (any address but a loopback one) while naming nobody in
// allow: the console has no authentication, so whoever can connect can
// reconfigure and stop plb.
func (s *Service) CheckManagementAccess() error {
	if s.Role != RoleManagement || !s.Enabled || s.Listen == "" || len(s.Allow) > 0 || ListenIsLoopback(s.Listen) {
		return nil
	}
	return errorf("management service '%s' listens on %s, beyond this host, with no 'allow': name who may connect (SET %s.allow = 10.0.0.0/8) or listen on 127.0.0.1", s.Name, s.Listen, s.Name)
}

// ListenIsLoopback reports whether a listen address ("ip:port",
// "[ipv6]:port"; ":port" is every address) binds a loopback address only.
func ListenIsLoopback(listen string) bool {
	i := strings.LastIndexByte(listen, ':')
	if i <= 0 {
		return false
	}
	a, err := netip.ParseAddr(strings.Trim(listen[:i], "[]"))
	return err == nil && a.Unmap().IsLoopback()
}
