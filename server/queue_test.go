package server

import (
	"fmt"
	"net"
	nethttp "net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plb/plb/http/proxy"
	"github.com/plb/plb/internal/testhttp"
)

// queueIndex finds a queue by its Perlbal name.
func queueIndex(t *testing.T, name string) int {
	t.Helper()
	for i := range proxy.NumQueues {
		if proxy.QueueName(i) == name {
			return i
		}
	}
	t.Fatalf("no queue %q", name)
	return 0
}

// queueFixture is a proxy on one loop with max_backend_conns = 1 over a
// backend whose /hold requests wait for release.
type queueFixture struct {
	ts      *testServer
	be      *testhttp.Backend
	addr    string
	release chan struct{}
	once    sync.Once
}

func newQueueFixture(t *testing.T, keys ...string) *queueFixture {
	f := &queueFixture{release: make(chan struct{})}
	t.Cleanup(f.free)
	f.be = testhttp.NewHTTPBackend(t, func(b *testhttp.Backend, c net.Conn, req *nethttp.Request, body []byte) bool {
		if req.RequestURI == "/hold" {
			<-f.release
		}
		testhttp.Respond(c, 200, "", "ok "+req.RequestURI)
		return true
	})
	all := append([]string{"max_backend_conns = 1", "high_priority_cookie = \"vip\"",
		"high_priority_cookie_contents = \"yes!\"", "always_trusted = true",
		`plugins = ["AccessControl", "Highpri"]`, `access = ["queue_low ip 10.9.9.9"]`,
		`"AccessControl.use_observed_ip" = "1"`, `"highpri.uri_pattern" = "^/vip"`}, keys...)
	f.ts = startServer(t, strings.Replace(testhttp.ProxyTOML([]string{f.be.Addr}, "", testhttp.ServiceKeys(all...)), "workers = 2", "workers = 1", 1))
	f.addr = f.ts.addrOf("proxy")
	return f
}

func (f *queueFixture) free() { f.once.Do(func() { close(f.release) }) }

// queued sends a request and waits until it waits in queue q.
func (f *queueFixture) queued(t *testing.T, q, path, extra string) *testhttp.Client {
	t.Helper()
	i := queueIndex(t, q)
	before := f.ts.ServiceStatus("proxy").Queues[i].Count
	c := testhttp.Dial(t, f.addr)
	c.Send("GET " + path + " HTTP/1.1\r\nHost: t\r\n" + extra + "\r\n")
	testhttp.WaitFor(t, path+" in queue "+q, func() bool { return f.ts.ServiceStatus("proxy").Queues[i].Count == before+1 })
	return c
}

// order returns the URIs the backend received.
func (f *queueFixture) order() []string {
	var out []string
	for _, r := range f.be.Requests() {
		out = append(out, r.URI)
	}
	return out
}

// run holds the single backend connection with /hold, queues the given
// requests in order (queue, path, extra header lines), releases /hold and
// checks the order in which the backend got them.
func (f *queueFixture) run(t *testing.T, reqs [][3]string, want ...string) {
	t.Helper()
	hold := testhttp.Dial(t, f.addr)
	hold.Send("GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
	testhttp.WaitFor(t, "/hold at the backend", func() bool { return len(f.be.Requests()) == 1 })
	var cs []*testhttp.Client
	for _, r := range reqs {
		cs = append(cs, f.queued(t, r[0], r[1], r[2]))
	}
	st := f.ts.ServiceStatus("proxy")
	if st.PendClients != int64(len(reqs)) {
		t.Errorf("pend clients %d, want %d", st.PendClients, len(reqs))
	}
	f.free()
	if resp, b := hold.Read("GET"); resp.StatusCode != 200 {
		t.Fatalf("/hold: %d %q", resp.StatusCode, b)
	}
	for i, c := range cs {
		if resp, b := c.Read("GET"); resp.StatusCode != 200 || b != "ok "+reqs[i][1] {
			t.Fatalf("%s: %d %q", reqs[i][1], resp.StatusCode, b)
		}
	}
	if got := strings.Join(f.order(), " "); got != strings.Join(append([]string{"/hold"}, want...), " ") {
		t.Errorf("backend order %q, want /hold %v", got, want)
	}
	for i := range proxy.NumQueues {
		if n := f.ts.ServiceStatus("proxy").Queues[i].Count; n != 0 {
			t.Errorf("queue %s still has %d clients", proxy.QueueName(i), n)
		}
	}
}

var priorityRequests = [][3]string{
	{"lowpri", "/low", "X-Forwarded-For: 10.9.9.9\r\n"},
	{"normal", "/normal", "Cookie: vip=no\r\n"},
	{"highpri", "/high", "Cookie: a=b; vip=yes%21\r\n"},
	{"highpri", "/vip", ""}, // Highpri's uri_pattern
}

// TestQueuePriority: with max_backend_conns = 1 the clients that find the
// only backend connection busy wait in their queues; the freed connection
// (kept alive, or closed and redialled) serves highpri first, then normal,
// then lowpri, each in arrival order.
func TestQueuePriority(t *testing.T) {
	for _, persist := range []bool{true, false} {
		t.Run(fmt.Sprintf("persist_backend=%v", persist), func(t *testing.T) {
			f := newQueueFixture(t, fmt.Sprintf("persist_backend = %v", persist))
			f.run(t, priorityRequests, "/high", "/vip", "/normal", "/low")
			want := int64(1)
			if !persist {
				want = 5
			}
			if n := f.be.Accepted.Load(); n != want {
				t.Errorf("%d backend connections, want %d", n, want)
			}
		})
	}
}

// TestQueueAges: the queues' ages grow while clients wait.
func TestQueueAges(t *testing.T) {
	f := newQueueFixture(t)
	hold := testhttp.Dial(t, f.addr)
	hold.Send("GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
	testhttp.WaitFor(t, "/hold at the backend", func() bool { return len(f.be.Requests()) == 1 })
	c := f.queued(t, "highpri", "/vip", "")
	time.Sleep(300 * time.Millisecond)
	q := f.ts.ServiceStatus("proxy").Queues[queueIndex(t, "highpri")]
	if age := time.Since(q.Oldest); q.Count != 1 || age < 250*time.Millisecond || age > 10*time.Second {
		t.Errorf("highpri queue %d clients, oldest %v ago", q.Count, age)
	}
	f.free()
	hold.Read("GET")
	c.Read("GET")
}

// TestQueueRelief: with at least queue_relief_size normal clients waiting,
// queue_relief_chance percent of the picks skip the highpri queue.
func TestQueueRelief(t *testing.T) {
	f := newQueueFixture(t, "queue_relief_size = 1", "queue_relief_chance = 100")
	f.run(t, [][3]string{{"highpri", "/vip", ""}, {"normal", "/n1", ""}, {"normal", "/n2", ""}},
		"/n1", "/n2", "/vip")
}

// TestQueueClientLeaves: a waiting client whose connection is reset
// leaves its queue and takes no backend. (A FIN alone is a half-close:
// the client still gets its response.)
func TestQueueClientLeaves(t *testing.T) {
	f := newQueueFixture(t)
	hold := testhttp.Dial(t, f.addr)
	hold.Send("GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
	testhttp.WaitFor(t, "/hold at the backend", func() bool { return len(f.be.Requests()) == 1 })
	gone := f.queued(t, "highpri", "/vip", "")
	c := f.queued(t, "normal", "/normal", "")
	gone.NC.(*net.TCPConn).SetLinger(0)
	gone.NC.Close()
	testhttp.WaitFor(t, "the highpri queue empty", func() bool {
		return f.ts.ServiceStatus("proxy").Queues[queueIndex(t, "highpri")].Count == 0
	})
	f.free()
	hold.Read("GET")
	if _, b := c.Read("GET"); b != "ok /normal" {
		t.Fatalf("%q", b)
	}
	if got := strings.Join(f.order(), " "); got != "/hold /normal" {
		t.Errorf("backend order %q", got)
	}
}

// TestQueueTimeout: a client still queued after idle_timeout gets 503.
func TestQueueTimeout(t *testing.T) {
	f := newQueueFixture(t, `idle_timeout = "1s"`)
	hold := testhttp.Dial(t, f.addr)
	hold.Send("GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
	testhttp.WaitFor(t, "/hold at the backend", func() bool { return len(f.be.Requests()) == 1 })
	c := f.queued(t, "normal", "/late", "")
	resp, _ := c.Read("GET")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("queued past idle_timeout: %d %v", resp.StatusCode, resp.Header)
	}
	f.free()
	hold.Read("GET")
	if n := len(f.be.Requests()); n != 1 {
		t.Errorf("%d backend requests", n)
	}
}
