package manage

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/internal/version"
	"github.com/plb/plb/pool"
)

// console is one connection's command context: its interpreter (USE and
// CREATE context, VERBOSE) and the previous proc figures. Its methods run
// on a command goroutine, one at a time.
type console struct {
	svc      *Service
	interp   *config.Interp
	out      []byte
	lastProc procSample
}

type procSample struct {
	utime, stime float64
	reqs         int64
}

func (mc *console) println(s string) { mc.out = append(append(mc.out, s...), "\r\n"...) }

func (mc *console) printf(format string, a ...any) {
	mc.out = fmt.Appendf(mc.out, format, a...)
	mc.out = append(mc.out, "\r\n"...)
}

func (mc *console) errorf(format string, a ...any) { mc.printf("ERROR: "+format, a...) }

// end closes a listing.
func (mc *console) end() { mc.println(".") }

// ok answers a successful command, in verbose mode only (as Perlbal).
func (mc *console) ok() {
	if mc.verbose() {
		mc.println("OK")
	}
}

func (mc *console) verbose() bool { return mc.interp == nil || mc.interp.Verbose() }

// exec runs one console line and returns its output and whether the
// connection should close.
func (mc *console) exec(line string) ([]byte, bool) {
	mc.out = mc.out[:0]
	// Perlbal's /^quit|exit$/: a line starting with quit or ending in exit.
	if strings.HasPrefix(line, "quit") || strings.HasSuffix(line, "exit") {
		return nil, true
	}
	rt := mc.svc.rt
	if mc.interp == nil {
		o := rt.ConfigOptions()
		o.Verbose = true
		o.Running = true
		mc.interp = config.NewInterp(rt.Config(), o)
	}
	cfg := rt.Config().Clone()
	mc.interp.SetConfig(cfg)
	out, err := mc.interp.Exec(line)
	switch {
	case err == nil:
		if err := checkAccess(cfg); err != nil {
			mc.errorf("%v", err)
			break
		}
		if err := rt.Apply(cfg); err != nil {
			mc.errorf("%v", err)
			break
		}
		for _, l := range out {
			mc.println(l)
		}
		if prepare(line) != "" {
			mc.ok()
		}
	case errors.Is(err, config.ErrNotConfigCommand):
		mc.command(prepare(line))
	default:
		mc.errorf("%v", err)
	}
	return append([]byte(nil), mc.out...), false
}

// checkAccess refuses a management service opened beyond loopback to
// everyone (the same rule as at start-up).
func checkAccess(c *config.Config) error {
	for _, s := range c.Services {
		if err := s.CheckManagementAccess(); err != nil {
			return err
		}
	}
	return nil
}

// prepare is Perlbal's line processing for the output commands: drop from
// the first "#", collapse whitespace, lower-case before the first "=".
func prepare(line string) string {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	line = strings.Join(strings.Fields(line), " ")
	if eq := strings.IndexByte(line, '='); eq >= 0 {
		return strings.ToLower(line[:eq]) + line[eq:]
	}
	return strings.ToLower(line)
}

// commandNames are the commands help lists: Perlbal's built-ins that plb
// has.
func commandNames() []string {
	return []string{
		"backends", "create", "default", "disable", "dumpconfig", "enable", "fd", "header", "help",
		"load", "mime", "node", "nodes", "noverify", "obj", "pending", "plugins", "pool", "proc",
		"queues", "reload", "reproxy_state", "server", "set", "show", "shutdown", "socks",
		"states", "unload", "uptime", "use", "verbose", "version",
	}
}

// noArgs reports the commands that take no arguments.
func noArgs(base string) bool {
	switch base {
	case "backends", "dumpconfig", "fd", "help", "noverify", "obj", "pending", "plugins", "proc",
		"queues", "reproxy_state", "uptime", "version":
		return true
	}
	return false
}

// command runs a command that prints rather than configures; cmd is the
// prepared line.
func (mc *console) command(cmd string) {
	base := cmd[:wordLen(cmd)]
	if base == "" {
		mc.errorf("invalid command")
		return
	}
	if noArgs(base) && cmd != base {
		mc.errorf("The '%s' command takes no arguments", base)
		return
	}
	args := strings.Fields(cmd)[1:]
	rt := mc.svc.rt
	switch base {
	case "show":
		mc.show(cmd)
	case "proc":
		mc.proc()
	case "uptime", "version":
		st := rt.StartTime()
		mc.printf("starttime %d", st.Unix())
		mc.printf("uptime %d", int64(mc.svc.rt.Now().Sub(st).Seconds()))
		mc.printf("version %s", version.Version)
		mc.end()
	case "nodes", "node":
		mc.nodes(base, args)
	case "socks":
		mc.socks(base, args)
	case "states":
		mc.states(args)
	case "queues":
		mc.queues()
	case "backends":
		mc.backends()
	case "noverify":
		mc.noverify()
	case "pending":
		mc.pending()
	case "fd":
		mc.fd()
	case "obj":
		mc.obj()
	case "mime":
		mc.mime(base, args)
	case "plugins":
		cfg := rt.Config()
		for _, name := range serviceNames(cfg) {
			if s := cfg.Service(name); len(s.Plugins) > 0 {
				mc.println(strings.Join(append([]string{name}, s.Plugins...), " "))
			}
		}
		mc.end()
	case "help":
		for _, n := range commandNames() {
			mc.println(n)
		}
		mc.end()
	case "dumpconfig":
		for _, l := range rt.Config().DumpPerlbal() {
			mc.println(l)
		}
		mc.ok()
	case "reproxy_state":
		mc.reproxyState()
	case "shutdown":
		mc.shutdown(base, args)
	default:
		if !mc.pluginCommand(cmd) {
			mc.errorf("unknown command: %s", base)
		}
	}
}

// pluginCommand runs cmd if a LOADed plugin adds it, and reports whether
// one did.
func (mc *console) pluginCommand(cmd string) bool {
	pc, ok := mc.svc.rt.(PluginCommander)
	if !ok {
		return false
	}
	out, found, err := pc.PluginCommand(cmd)
	switch {
	case !found:
		return false
	case err != nil:
		mc.errorf("%v", err)
	default:
		for _, l := range out {
			mc.println(l)
		}
	}
	return true
}

func (mc *console) syntax(base string) { mc.errorf("Invalid syntax to '%s' command", base) }

func serviceNames(cfg *config.Config) []string {
	names := make([]string, 0, len(cfg.Services))
	for _, s := range cfg.Services {
		names = append(names, s.Name)
	}
	slices.Sort(names)
	return names
}

func poolNames(cfg *config.Config) []string {
	names := make([]string, 0, len(cfg.Pools))
	for _, p := range cfg.Pools {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	return names
}

var (
	reShowService = regexp.MustCompile(`^show service (\w+)$`)
	reShowPool    = regexp.MustCompile(`^show pool(?:\s+(\w+))?$`)
)

func (mc *console) show(cmd string) {
	cfg := mc.svc.rt.Config()
	if m := reShowService.FindStringSubmatch(cmd); m != nil {
		mc.showService(cfg, m[1])
		return
	}
	if m := reShowPool.FindStringSubmatch(cmd); m != nil {
		if m[1] != "" {
			mc.showPool(m[1])
		} else {
			mc.showPools(cfg)
		}
		return
	}
	if cmd == "show service" {
		for _, n := range serviceNames(cfg) {
			state := "DISABLED"
			if cfg.Service(n).Enabled {
				state = "ENABLED"
			}
			mc.printf("%s %s %s", n, mc.listening(cfg, n, "not_listening"), state)
		}
		mc.end()
		return
	}
	mc.syntax("show")
}

// listening is a service's bound address, else its configured one, else
// none.
func (mc *console) listening(cfg *config.Config, name, none string) string {
	if l := mc.svc.rt.ServiceStatus(name).Listening; l != "" {
		return l
	}
	if s := cfg.Service(name); s != nil && s.Listen != "" {
		return s.Listen
	}
	return none
}

func (mc *console) showService(cfg *config.Config, name string) {
	s := cfg.Service(name)
	if s == nil {
		mc.errorf("Unknown service")
		return
	}
	st := mc.svc.rt.ServiceStatus(name)
	mc.printf("SERVICE %s", name)
	mc.printf("     listening: %s", mc.listening(cfg, name, "--"))
	mc.printf("          role: %s", s.Role)
	if s.Role == config.RoleReverseProxy || s.Role == config.RoleWebServer {
		mc.printf("  pend clients: %d", st.PendClients)
		mc.printf("  pend backend: %d", st.PendBackends)
		if st.PendBackends > 0 {
			now := mc.svc.rt.Now()
			for _, p := range pendingConnects(mc.svc.rt.Socks(), name) {
				mc.printf("   %s - %s - %ds", p.Addr, p.Info.State, int64(now.Sub(p.Created).Seconds()))
			}
		}
	}
	switch s.Role {
	case config.RoleReverseProxy:
		mc.showReproxyCache(st.ReproxyCache) // reproxy.go
		mc.printf(" connect-ahead: %d/%d", st.Bored, s.ConnectAhead)
		if s.Pool != "" {
			mc.printf("          pool: %s", s.Pool)
			mc.println("         nodes:")
			if p := mc.svc.rt.Pool(s.Pool); p != nil {
				for _, n := range p.Nodes() {
					mc.printf("                %-21s %7d", n.Name, n.Connects.Load())
				}
			}
		}
	case config.RoleWebServer:
		mc.printf("        docroot: %s", s.Docroot)
	}
	if h := st.HTTP2; h != nil {
		// plb's: HTTP/2 connections and the streams in progress on them.
		mc.printf("         http2: %d connections, %d streams (%d in all)", h.Conns, h.Streams, h.StreamsTotal)
	}
	if h := st.BackendHTTP2; h != nil {
		// plb's: HTTP/2 connections to the nodes (backend_protocol).
		mc.printf(" backend http2: %d connections, %d streams (%d in all)", h.Conns, h.Streams, h.StreamsTotal)
	}
	mc.end()
}

func (mc *console) showPools(cfg *config.Config) {
	for _, name := range poolNames(cfg) {
		nodes := 0
		if p := mc.svc.rt.Pool(name); p != nil {
			nodes = len(p.Nodes())
		}
		uses := 0
		for _, s := range cfg.Services {
			if s.Pool == name && s.Role == config.RoleReverseProxy {
				uses++
			}
		}
		mc.printf("%s nodes %d", name, nodes)
		mc.printf("%s services %d", name, uses)
	}
	mc.end()
}

// showPool lists a pool's nodes with the connections made to each
// (Perlbal's node_used).
func (mc *console) showPool(name string) {
	p := mc.svc.rt.Pool(name)
	if p == nil {
		mc.errorf("pool '%s' does not exist", name)
		return
	}
	for _, n := range p.Nodes() {
		mc.printf("%s %d", n.Name, n.Connects.Load())
	}
	mc.end()
}

func (mc *console) proc() {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	ut := float64(ru.Utime.Sec) + float64(ru.Utime.Usec)/1e6
	stt := float64(ru.Stime.Sec) + float64(ru.Stime.Usec)/1e6
	reqs := mc.svc.rt.Requests()
	last := mc.lastProc
	mc.printf("time: %d", mc.svc.rt.Now().Unix())
	mc.printf("pid: %d", os.Getpid())
	mc.printf("utime: %f (+%f)", ut, ut-last.utime)
	mc.printf("stime: %f (+%f)", stt, stt-last.stime)
	mc.printf("reqs: %d (+%d)", reqs, reqs-last.reqs)
	mc.end()
	mc.lastProc = procSample{ut, stt, reqs}
}

// nodes prints each node's statistics: Perlbal's keys where they are not
// zero (Perlbal has no entry before the event), plus plb's state, sticky
// cookie token, weight and suspicion.
func (mc *console) nodes(base string, args []string) {
	want := ""
	if len(args) > 1 {
		mc.syntax(base)
		return
	}
	if len(args) == 1 {
		n, err := pool.ParseNode(args[0])
		if err != nil {
			mc.syntax(base)
			return
		}
		want = n.Name
	}
	for _, n := range allNodes(mc.svc.rt) {
		if want != "" && n.Name != want {
			continue
		}
		for _, kv := range [...]struct {
			k string
			v int64
		}{
			{"attempts", n.Attempts.Load()}, {"lastattempt", n.LastAttempt.Load()},
			{"connects", n.Connects.Load()}, {"lastconnect", n.LastConnect.Load()},
			{"verifies", n.Verifies.Load()}, {"requests", n.Requests.Load()},
			{"lastresponse", n.LastResponse.Load()},
		} {
			if kv.v != 0 {
				mc.printf("%s %s %d", n.Name, kv.k, kv.v)
			}
		}
		codes := n.ResponseCodes()
		for _, k := range slices.Sorted(maps.Keys(codes)) {
			mc.printf("%s responsecodes %s %d", n.Name, strconv.Itoa(k), codes[k])
		}
		state := "up"
		if n.Down() {
			state = "down"
		}
		mc.printf("%s state %s", n.Name, state)
		// plb's: the value of a sticky cookie naming the node.
		mc.printf("%s token %s", n.Name, n.Token().Append(nil))
		if w := n.Weight(); w != 1 {
			mc.printf("%s weight %d", n.Name, w) // plb's: 0 drains the node
		}
		if s, why := n.Suspect(); s {
			mc.printf("%s suspect %s", n.Name, why)
		}
		if n.ReuseSuspended(mc.svc.rt.Now()) {
			mc.printf("%s noreuse 1", n.Name)
		}
	}
	mc.end()
}

// allNodes returns every node of every running pool once, pools in name
// order.
func allNodes(rt Runtime) []*pool.Node {
	var out []*pool.Node
	seen := map[*pool.Node]bool{}
	for _, name := range poolNames(rt.Config()) {
		if p := rt.Pool(name); p != nil {
			for _, n := range p.Nodes() {
				if !seen[n] {
					seen[n] = true
					out = append(out, n)
				}
			}
		}
	}
	return out
}

// mime lists or edits the web servers' MIME table.
func (mc *console) mime(base string, args []string) {
	if len(args) > 3 || len(args) > 0 && !isWord(args[0]) || len(args) > 1 && !isWord(args[1]) {
		mc.syntax(base)
		return
	}
	rt := mc.svc.rt
	arg := func(i int) string {
		if i < len(args) {
			return args[i]
		}
		return ""
	}
	switch arg(0) {
	case "", "list":
		m := rt.MIME()
		for _, ext := range slices.Sorted(maps.Keys(m)) {
			mc.printf("%s %s", ext, m[ext])
		}
		mc.end()
	case "set":
		if arg(1) == "" || arg(2) == "" {
			mc.errorf("Usage: set <ext> <mime>")
			return
		}
		m := rt.MIME()
		m[arg(1)] = arg(2)
		rt.SetMIME(m)
		mc.printf("%s set to %s.", arg(1), arg(2))
	case "remove":
		m := rt.MIME()
		if _, ok := m[arg(1)]; !ok || arg(1) == "" {
			mc.errorf("%s not a defined extension.", arg(1))
			return
		}
		delete(m, arg(1))
		rt.SetMIME(m)
		mc.printf("%s removed.", arg(1))
	default:
		mc.errorf("Usage: list, remove <ext>, set <ext> <mime>")
	}
}

// wordLen is the length of the \w+ run at the start of s.
func wordLen(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return i
		}
	}
	return len(s)
}

func isWord(s string) bool { return s != "" && wordLen(s) == len(s) }

// reproxyState prints the reproxy fetch connections by host:port, then
// the SERVER max_reproxy_connections limits.
func (mc *console) reproxyState() {
	mc.reproxyConns() // reproxy.go
	g := mc.svc.rt.Config().Global
	global := "0"
	for _, k := range slices.Sorted(maps.Keys(g.Extra)) {
		if k == "max_reproxy_connections" {
			global = g.Extra[k]
		} else if strings.HasPrefix(k, "max_reproxy_connections(") {
			mc.printf("SERVER %s = %s", k, g.Extra[k])
		}
	}
	mc.printf("SERVER max_reproxy_connections = %s", global)
	mc.end()
}

var reShutdown = regexp.MustCompile(`^shutdown( ?graceful)? ?(\d+)?$`)

// shutdown stops at once (no reply, as Perlbal's exit), or drains with an
// OK, stopping at once after N seconds if given.
func (mc *console) shutdown(base string, args []string) {
	m := reShutdown.FindStringSubmatch(strings.Join(append([]string{base}, args...), " "))
	switch {
	case m == nil:
		mc.syntax(base)
	case m[1] == "":
		mc.svc.rt.Shutdown(false)
	default:
		mc.ok()
		if m[2] != "" {
			n, _ := strconv.Atoi(m[2])
			mc.svc.rt.StopAfter(time.Duration(n) * time.Second)
		}
		mc.svc.rt.Shutdown(true)
	}
}
