// Package manage is the management role: Perlbal's line-based console. Each
// connection gets its own command context; configuration commands go
// through config.Interp against a clone of the live model, which the
// runtime then applies, and output commands print Perlbal's formats.
package manage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
	"github.com/plb/plb/pool"
)

// ServiceStatus is what the console shows about a running service.
type ServiceStatus struct {
	Listening    string // bound address, "" when not listening
	PendClients  int64  // clients waiting for a backend
	PendBackends int64  // backend connects in progress
	Bored        int64  // idle backend connections (reverse_proxy)
	Requests     int64
}

// Runtime is the running server as the console sees it. Its methods are
// safe from any goroutine.
type Runtime interface {
	// Config returns the live model; callers must not modify it.
	Config() *config.Config
	// Apply publishes an edited clone of the model.
	Apply(c *config.Config) error
	// Pool returns a running pool by name.
	Pool(name string) *pool.Pool
	// ServiceStatus returns a running service's figures.
	ServiceStatus(name string) ServiceStatus
	// Requests returns the requests served since start.
	Requests() int64
	// StartTime is when the process started.
	StartTime() time.Time
	// Shutdown stops the process, gracefully (drain) or at once.
	Shutdown(graceful bool)
	// ConfigOptions returns the options for a console interpreter.
	ConfigOptions() config.Options
}

// Version is what uptime/version print.
const Version = "1.80-plb"

// Service is a running management service.
type Service struct {
	Name string
	rt   Runtime
}

// New creates a management service.
func New(name string, rt Runtime) *Service { return &Service{Name: name, rt: rt} }

// Accept is the engine's OnAccept for this service. Runs on the loop.
func (s *Service) Accept(c *engine.Conn) engine.Handler {
	o := s.rt.ConfigOptions()
	o.Verbose = true
	o.Running = true
	return &conn{svc: s, interp: config.NewInterp(s.rt.Config(), o)}
}

type conn struct {
	svc      *Service
	interp   *config.Interp
	out      []byte
	lastProc procSample
}

type procSample struct {
	utime, stime float64
	reqs         int64
}

func (mc *conn) OnOpen(c *engine.Conn) { c.SetTimeout(0) }

func (mc *conn) OnData(c *engine.Conn, data []byte) int {
	used := 0
	for {
		i := bytes.IndexByte(data[used:], '\n')
		if i < 0 {
			if len(data)-used > 64<<10 {
				c.Write([]byte("ERROR: line too long\r\n"))
				c.Close()
				return len(data)
			}
			return used
		}
		line := string(bytes.TrimRight(data[used:used+i], "\r"))
		used += i + 1
		mc.out = mc.out[:0]
		closeAfter := mc.exec(c, line)
		c.Write(mc.out)
		if closeAfter || c.Closing() {
			c.Close()
			return len(data)
		}
	}
}

func (mc *conn) println(s string) { mc.out = append(append(mc.out, s...), "\r\n"...) }

func (mc *conn) printf(format string, a ...any) {
	mc.out = fmt.Appendf(mc.out, format, a...)
	mc.out = append(mc.out, "\r\n"...)
}

// exec runs one line and reports whether the connection should close.
func (mc *conn) exec(c *engine.Conn, line string) bool {
	trim := strings.TrimSpace(line)
	// Perlbal's /^quit|exit$/: a line starting with quit or ending in exit.
	if strings.HasPrefix(trim, "quit") || strings.HasSuffix(trim, "exit") {
		return true
	}
	rt := mc.svc.rt
	cfg := rt.Config().Clone()
	mc.interp.SetConfig(cfg)
	out, err := mc.interp.Exec(line)
	switch {
	case err == nil:
		if aerr := rt.Apply(cfg); aerr != nil {
			mc.println("ERROR: " + aerr.Error())
			return false
		}
		for _, l := range out {
			mc.println(l)
		}
		if mc.interp.Verbose() && strings.TrimSpace(stripComment(line)) != "" {
			mc.println("OK")
		}
		return false
	case !errors.Is(err, config.ErrNotConfigCommand):
		mc.println("ERROR: " + err.Error())
		return false
	}
	fields := strings.Fields(strings.ToLower(stripComment(trim)))
	if len(fields) == 0 {
		return false
	}
	return mc.output(c, fields)
}

func stripComment(s string) string {
	if i := strings.IndexByte(s, '#'); i >= 0 {
		return s[:i]
	}
	return s
}

// output runs the commands that print rather than configure.
func (mc *conn) output(c *engine.Conn, f []string) bool {
	rt := mc.svc.rt
	cfg := rt.Config()
	switch f[0] {
	case "show":
		if len(f) < 2 {
			mc.println("ERROR: Invalid syntax to 'show' command")
			return false
		}
		switch f[1] {
		case "service":
			if len(f) > 2 {
				mc.showService(cfg, f[2])
			} else {
				mc.showServices(cfg)
			}
		case "pool":
			if len(f) > 2 {
				mc.showPool(f[2])
			} else {
				mc.showPools(cfg)
			}
		default:
			if cfg.Service(f[1]) != nil {
				mc.showService(cfg, f[1])
				return false
			}
			mc.println("ERROR: Invalid syntax to 'show' command")
		}
	case "proc":
		mc.proc()
	case "uptime", "version":
		if len(f) > 1 {
			mc.printf("ERROR: The '%s' command takes no arguments", f[0])
			return false
		}
		st := rt.StartTime()
		mc.printf("starttime %d", st.Unix())
		mc.printf("uptime %d", int64(time.Since(st).Seconds()))
		mc.printf("version %s", Version)
		mc.println(".")
	case "nodes", "node":
		mc.nodes(cfg, f[1:])
	case "shutdown":
		graceful := len(f) > 1 && f[1] == "graceful"
		if graceful {
			mc.println("OK")
		}
		rt.Shutdown(graceful)
	default:
		mc.printf("ERROR: unknown command: %s", f[0])
	}
	return false
}

func (mc *conn) showServices(cfg *config.Config) {
	names := make([]string, 0, len(cfg.Services))
	for _, s := range cfg.Services {
		names = append(names, s.Name)
	}
	sort.Strings(names)
	for _, n := range names {
		s := cfg.Service(n)
		listen := mc.svc.rt.ServiceStatus(n).Listening
		if listen == "" {
			listen = "not_listening"
		}
		state := "DISABLED"
		if s.Enabled {
			state = "ENABLED"
		}
		mc.printf("%s %s %s", n, listen, state)
	}
	mc.println(".")
}

func (mc *conn) showService(cfg *config.Config, name string) {
	s := cfg.Service(name)
	if s == nil {
		mc.println("ERROR: Unknown service")
		return
	}
	st := mc.svc.rt.ServiceStatus(name)
	listen := st.Listening
	if listen == "" {
		listen = "--"
	}
	mc.printf("SERVICE %s", name)
	mc.printf("     listening: %s", listen)
	mc.printf("          role: %s", s.Role)
	switch s.Role {
	case config.RoleReverseProxy:
		mc.printf("  pend clients: %d", st.PendClients)
		mc.printf("  pend backend: %d", st.PendBackends)
		mc.printf(" connect-ahead: %d/%d", st.Bored, s.ConnectAhead)
		if s.Pool != "" {
			mc.printf("          pool: %s", s.Pool)
			mc.println("         nodes:")
			if p := mc.svc.rt.Pool(s.Pool); p != nil {
				for _, n := range p.Nodes() {
					mc.printf("                %-21s %7d", n.Name, n.Requests.Load())
				}
			}
		}
	case config.RoleWebServer:
		mc.printf("  pend clients: %d", st.PendClients)
		mc.printf("  pend backend: %d", st.PendBackends)
		mc.printf("        docroot: %s", s.Docroot)
	}
	mc.println(".")
}

func (mc *conn) showPools(cfg *config.Config) {
	names := make([]string, 0, len(cfg.Pools))
	for _, p := range cfg.Pools {
		names = append(names, p.Name)
	}
	sort.Strings(names)
	for _, n := range names {
		nodes := 0
		if p := mc.svc.rt.Pool(n); p != nil {
			nodes = len(p.Nodes())
		}
		uses := 0
		for _, s := range cfg.Services {
			if s.Pool == n {
				uses++
			}
		}
		mc.printf("%s nodes %d", n, nodes)
		mc.printf("%s services %d", n, uses)
	}
	mc.println(".")
}

func (mc *conn) showPool(name string) {
	p := mc.svc.rt.Pool(name)
	if p == nil {
		mc.printf("ERROR: pool '%s' does not exist", name)
		return
	}
	for _, n := range p.Nodes() {
		mc.printf("%s %d", n.Name, n.Requests.Load())
	}
	mc.println(".")
}

func (mc *conn) proc() {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	ut := float64(ru.Utime.Sec) + float64(ru.Utime.Usec)/1e6
	stt := float64(ru.Stime.Sec) + float64(ru.Stime.Usec)/1e6
	reqs := mc.svc.rt.Requests()
	last := mc.lastProc
	mc.printf("time: %d", time.Now().Unix())
	mc.printf("pid: %d", os.Getpid())
	mc.printf("utime: %f (+%f)", ut, ut-last.utime)
	mc.printf("stime: %f (+%f)", stt, stt-last.stime)
	mc.printf("reqs: %d (+%d)", reqs, reqs-last.reqs)
	mc.println(".")
	mc.lastProc = procSample{ut, stt, reqs}
}

func (mc *conn) nodes(cfg *config.Config, args []string) {
	want := ""
	if len(args) > 0 {
		n, err := pool.ParseNode(args[0])
		if err != nil {
			mc.println("ERROR: Invalid node")
			return
		}
		want = n.Name
	}
	seen := map[*pool.Node]bool{}
	for _, pc := range cfg.Pools {
		p := mc.svc.rt.Pool(pc.Name)
		if p == nil {
			continue
		}
		for _, n := range p.Nodes() {
			if seen[n] || want != "" && n.Name != want {
				continue
			}
			seen[n] = true
			mc.printf("%s attempts %d", n.Name, n.Attempts.Load())
			mc.printf("%s lastattempt %d", n.Name, n.LastAttempt.Load())
			mc.printf("%s connects %d", n.Name, n.Connects.Load())
			mc.printf("%s lastconnect %d", n.Name, n.LastConnect.Load())
			mc.printf("%s verifies %d", n.Name, n.Verifies.Load())
			mc.printf("%s requests %d", n.Name, n.Requests.Load())
			mc.printf("%s lastresponse %d", n.Name, n.LastResponse.Load())
			codes := n.ResponseCodes()
			keys := make([]int, 0, len(codes))
			for k := range codes {
				keys = append(keys, k)
			}
			sort.Ints(keys)
			for _, k := range keys {
				mc.printf("%s responsecodes %s %d", n.Name, strconv.Itoa(k), codes[k])
			}
			state := "up"
			if n.Down() {
				state = "down"
			}
			mc.printf("%s state %s", n.Name, state)
		}
	}
	mc.println(".")
}

func (mc *conn) OnEOF(c *engine.Conn)              { c.Close() }
func (mc *conn) OnDrain(c *engine.Conn)            {}
func (mc *conn) OnTimeout(c *engine.Conn)          { c.Close() }
func (mc *conn) OnClose(c *engine.Conn, err error) {}

// DrainIdle closes a console connection when the server drains (Perlbal
// exits once only management clients are left).
func (mc *conn) DrainIdle(c *engine.Conn) { c.Close() }
