package server

import (
	"errors"
	"fmt"

	"github.com/plb/plb/config"
	"github.com/plb/plb/http/accesslog"
)

// openAccessLogs returns the access logs c's services name, by path: the
// running ones kept, the new ones opened (also returned in opened, for
// Apply to close if it fails). Called with s.mu held.
func (s *Server) openAccessLogs(c *config.Config) (logs map[string]*accesslog.Log, opened []*accesslog.Log, err error) {
	logs = map[string]*accesslog.Log{}
	for _, sc := range c.Services {
		p := sc.AccessLog
		if p == "" || logs[p] != nil {
			continue
		}
		if l := s.accessLogs[p]; l != nil {
			logs[p] = l
			continue
		}
		l, err := accesslog.Open(p)
		if err != nil {
			for _, l := range opened {
				l.Close()
			}
			return nil, nil, fmt.Errorf("service '%s': access_log: %w", sc.Name, err)
		}
		logs[p], opened = l, append(opened, l)
	}
	return logs, opened, nil
}

// swapAccessLogs makes logs the running access logs and closes those no
// service names any more (after writing what they hold). Lines of a
// request that ends after its log closed are dropped. Called with s.mu
// held.
func (s *Server) swapAccessLogs(logs map[string]*accesslog.Log) {
	for p, l := range s.accessLogs {
		if logs[p] != l {
			l.Close()
		}
	}
	s.accessLogs = logs
}

// ReopenLogs reopens every access_log (SIGUSR1, after logrotate moved the
// files); a file that cannot be reopened keeps the old one, and the errors
// are returned. Safe from any goroutine.
func (s *Server) ReopenLogs() error {
	s.mu.Lock()
	logs := make([]*accesslog.Log, 0, len(s.accessLogs))
	for _, l := range s.accessLogs {
		logs = append(logs, l)
	}
	s.mu.Unlock()
	var errs []error
	for _, l := range logs {
		if err := l.Reopen(); err != nil {
			errs = append(errs, fmt.Errorf("access_log %s: %w", l.Path, err))
		}
	}
	return errors.Join(errs...)
}

// closeAccessLogs writes and closes every access log (at exit).
func (s *Server) closeAccessLogs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.accessLogs {
		l.Close()
	}
	s.accessLogs = nil
}
