package main

import (
	"fmt"
	"log/slog"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/plb/plb/config"
)

// fdMargin is what plb needs besides its clients: standard streams, log
// and pidfile, health checks, nodefiles, spool files, the console.
const fdMargin = 64

// descriptorsNeeded is how many descriptors the configuration needs at
// least, and the setting that asks for them: every listening service with
// a max_clients cap counts it twice (the client and its backend
// connection, file or relay), the console once; each loop has its epoll
// and wake-up descriptors and one socket per listener. A service without
// a cap adds nothing: there is no bound to check. Perlbal's max_connections
// asks for its number outright.
func descriptorsNeeded(c *config.Config) (int, string) {
	loops := c.Global.Workers
	if loops <= 0 {
		loops = runtime.GOMAXPROCS(0)
	}
	need, listeners := 0, 0
	for _, sc := range c.Services {
		if !sc.Enabled || sc.Listen == "" {
			continue
		}
		listeners++
		capacity := sc.MaxClients
		if capacity <= 0 {
			capacity = c.Global.MaxClients
		}
		if sc.Role == config.RoleManagement {
			need += capacity
		} else {
			need += 2 * capacity
		}
	}
	what := "max_clients"
	if need == 0 {
		what = ""
	}
	need += fdMargin + loops*(2+listeners)
	if c.Global.MaxConnections > need {
		need, what = c.Global.MaxConnections, "max_connections"
	}
	return need, what
}

// raiseNoFile raises RLIMIT_NOFILE's soft limit to the hard one (Go does
// so too) and checks that it covers what the configuration needs; when it
// does not, it tries to raise the hard limit too (root can, up to
// fs.nr_open), and fails with an error naming both numbers otherwise.
func raiseNoFile(c *config.Config, log *slog.Logger) error {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	need, what := descriptorsNeeded(c)
	if what != "" && uint64(need) > rl.Max {
		want := unix.Rlimit{Cur: uint64(need), Max: uint64(need)}
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &want); err != nil {
			return fmt.Errorf("%s needs %d descriptors; the hard limit is %d (ulimit -Hn)", what, need, rl.Max)
		}
		log.Info("descriptor limit raised", "limit", need, "for", what)
		return nil
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
			log.Warn("descriptor limit not raised", "soft", rl.Cur, "hard", rl.Max, "err", err)
		}
	}
	log.Debug("descriptor limit", "limit", rl.Cur, "needed", need)
	return nil
}
