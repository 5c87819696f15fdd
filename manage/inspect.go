package manage

import (
	"cmp"
	"fmt"
	"maps"
	"os"
	"runtime/metrics"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/plb/plb/config"
)

// Perlbal's class names, which plb's connections take so that scripts
// reading socks and states keep working.
const (
	classListener = "Perlbal::TCPListener"
	classProxy    = "Perlbal::ClientProxy"
	classBackend  = "Perlbal::BackendHTTP"
	classWeb      = "Perlbal::ClientHTTP"
)

// sockString is Perlbal's as_string of a socket: its class, the events it
// waits for, open, the peer, and the handler's detail.
func sockString(s Sock) string {
	rw := ""
	if s.Reading {
		rw += "R"
	}
	if s.Writing {
		rw += "W"
	}
	if s.Listener {
		return fmt.Sprintf("%s(%s): open: listening on %s for service '%s'", classListener, rw, s.Addr, s.Info.Service)
	}
	class := s.Info.Class
	if class == "" {
		class = "plb::Conn"
	}
	return fmt.Sprintf("%s(%s): open to %s%s", class, rw, s.Addr, s.Info.Detail)
}

func (s Sock) class() string {
	if s.Listener {
		return classListener
	}
	if s.Info.Class == "" {
		return "plb::Conn"
	}
	return s.Info.Class
}

// socks lists every socket ("all", the default) or counts them by class
// ("summary").
func (mc *console) socks(base string, args []string) {
	if len(args) > 1 || len(args) == 1 && !isWord(args[0]) {
		mc.syntax(base)
		return
	}
	mode := "all"
	if len(args) == 1 {
		mode = args[0]
	}
	switch mode {
	case "summary":
		socks := mc.svc.rt.Socks()
		count := map[string]int{}
		buf, files := 0, 0
		for _, s := range socks {
			count[s.class()]++
			buf += s.WriteBuf
			if s.Info.OpenFile {
				files++
			}
		}
		for _, c := range slices.Sorted(maps.Keys(count)) {
			mc.printf("%5d %s", count[c], c)
		}
		mc.println("")
		mc.printf("Aggregate write buffer: %.1fk", float64(buf)/1024)
		mc.printf("            Open files: %d", files)
	case "all":
		socks := mc.svc.rt.Socks()
		slices.SortFunc(socks, func(a, b Sock) int { return cmp.Compare(a.Fd, b.Fd) })
		now := mc.svc.rt.Now()
		mc.printf("%5s %6s", "fd", "age")
		for _, s := range socks {
			mc.printf("%5d %5ds %s", s.Fd, int64(now.Sub(s.Created).Seconds()), sockString(s))
		}
	}
	mc.end()
}

// states counts connections by class and state, of one service if named.
func (mc *console) states(args []string) {
	svc := ""
	if len(args) > 0 {
		svc = strings.Join(args, " ")
		if mc.svc.rt.Config().Service(svc) == nil {
			mc.errorf("Service not found.")
			return
		}
	}
	count := map[string]map[string]int{}
	for _, s := range mc.svc.rt.Socks() {
		if s.Listener || s.Info.State == "" {
			continue
		}
		c := s.Info.Class
		if svc != "" && (s.Info.Service != svc || c != classProxy && c != classBackend && c != classWeb) {
			continue
		}
		if count[c] == nil {
			count[c] = map[string]int{}
		}
		count[c][s.Info.State]++
	}
	for _, c := range slices.Sorted(maps.Keys(count)) {
		for _, st := range slices.Sorted(maps.Keys(count[c])) {
			mc.printf("%s %s %d", c, st, count[c][st])
		}
	}
	mc.end()
}

// queues prints each reverse proxy's queues of clients waiting for a
// backend, Perlbal's normal, highpri and lowpri: how long the oldest
// client has waited, in seconds, and how many wait.
func (mc *console) queues() {
	cfg := mc.svc.rt.Config()
	now := mc.svc.rt.Now()
	names := QueueNames()
	for _, name := range serviceNames(cfg) {
		if cfg.Service(name).Role != config.RoleReverseProxy {
			continue
		}
		st := mc.svc.rt.ServiceStatus(name)
		for i, q := range st.Queues {
			mc.printf("%s-%s.age %d", name, names[i], queueAge(q, now))
			mc.printf("%s-%s.count %d", name, names[i], q.Count)
		}
	}
	mc.end()
}

// queueAge is how long the oldest client of q has waited, in seconds.
func queueAge(q QueueStatus, now time.Time) int64 { return int64(queueWait(q, now).Seconds()) }

// queueWait is how long the oldest client of q has waited (0: none waits).
func queueWait(q QueueStatus, now time.Time) time.Duration {
	if q.Count == 0 || q.Oldest.IsZero() || now.Before(q.Oldest) {
		return 0
	}
	return now.Sub(q.Oldest)
}

// backends counts open backend connections by node.
func (mc *console) backends() {
	count := map[string]int{}
	for _, s := range mc.svc.rt.Socks() {
		if s.Info.Class == classBackend {
			count[s.Addr]++
		}
	}
	for _, n := range slices.Sorted(maps.Keys(count)) {
		mc.printf("%s %d", n, count[n])
	}
	mc.end()
}

// noverify lists the nodes whose verify_backend is suspended, with the
// seconds left.
func (mc *console) noverify() {
	now := mc.svc.rt.Now()
	for _, n := range allNodes(mc.svc.rt) {
		if left := n.NoVerifyLeft(now); left > 0 {
			mc.printf("%s %d", n.Name, int64(left.Seconds()))
		}
	}
	mc.end()
}

// pendingConnects returns the backend connections of service svc (every
// service when "") that are connecting or being verified, by service and
// node.
func pendingConnects(socks []Sock, svc string) []Sock {
	var out []Sock
	for _, s := range socks {
		if s.Info.Class == classBackend && (svc == "" || s.Info.Service == svc) &&
			(s.Info.State == "connecting" || s.Info.State == "verifying_backend") {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b Sock) int {
		return cmp.Or(cmp.Compare(a.Info.Service, b.Info.Service), cmp.Compare(a.Addr, b.Addr), a.Created.Compare(b.Created))
	})
	return out
}

func (mc *console) pending() {
	now := mc.svc.rt.Now()
	for _, s := range pendingConnects(mc.svc.rt.Socks(), "") {
		mc.printf("%s %s %d", s.Info.Service, s.Addr, int64(now.Sub(s.Created).Seconds()))
	}
	mc.end()
}

// fd prints the descriptor limit (hard, as Perlbal) and the descriptors
// open.
func (mc *console) fd() {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		mc.errorf("%v", err)
		return
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		mc.errorf("%v", err)
		return
	}
	mc.printf("max %d", rl.Max)
	mc.printf("cur %d", len(ents))
	mc.end()
}

// obj prints what stands for Perlbal's object counts in Go: the
// connections by class, then the Go runtime's own figures under "go.".
func (mc *console) obj() {
	count := map[string]int{}
	for _, s := range mc.svc.rt.Socks() {
		count[s.class()]++
	}
	for _, c := range slices.Sorted(maps.Keys(count)) {
		mc.printf("%s = %d", c, count[c])
	}
	rf := goFigures()
	mc.printf("go.goroutines = %d", rf.goroutines)
	mc.printf("go.heap_objects = %d (tot=%d)", rf.heapObjects, rf.heapAllocs)
	mc.printf("go.heap_bytes = %d", rf.heapBytes)
	mc.printf("go.gc_cycles = %d", rf.gcCycles)
	mc.end()
}

// runtimeFigures are the Go runtime's counts that stand for Perl's.
type runtimeFigures struct {
	goroutines  uint64 // live goroutines
	heapObjects uint64 // live heap objects
	heapAllocs  uint64 // heap objects allocated since start
	heapBytes   uint64 // bytes of live heap objects
	gcCycles    uint64 // completed GC cycles
}

func goFigures() runtimeFigures {
	s := []metrics.Sample{
		{Name: "/sched/goroutines:goroutines"},
		{Name: "/gc/heap/objects:objects"},
		{Name: "/gc/heap/allocs:objects"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/cycles/total:gc-cycles"},
	}
	metrics.Read(s)
	v := func(i int) uint64 {
		if s[i].Value.Kind() == metrics.KindUint64 {
			return s[i].Value.Uint64()
		}
		return 0
	}
	return runtimeFigures{v(0), v(1), v(2), v(3), v(4)}
}
