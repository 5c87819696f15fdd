package builtin

import (
	"bytes"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
	"github.com/plb/plb/http/plugin"
)

// echoService is Perlbal's EchoService: it adds the role echo, a line echo
// server (each line comes back ending in CRLF), optionally after
// SET echo_delay = <seconds>.
type echoService struct{}

func (*echoService) Describe() config.Plugin               { return describe("EchoService") }
func (*echoService) Register(*config.Service) (any, error) { return nil, nil }

func (*echoService) NewRole(role, name string, log *slog.Logger) (plugin.Role, error) {
	return &echoRole{}, nil
}

// maxEchoLine bounds a line; a longer one closes the connection.
const maxEchoLine = 64 << 10

type echoRole struct{ delay atomic.Int64 } // nanoseconds

func (e *echoRole) Update(svc *config.Service) {
	n, _ := strconv.ParseInt(svc.Extra["echo_delay"], 10, 64)
	e.delay.Store(int64(time.Duration(n) * time.Second))
}

func (e *echoRole) Accept(c *engine.Conn) engine.Handler { return &echoConn{role: e} }

type echoConn struct {
	role    *echoRole
	pending int // delayed lines not yet written
	eof     bool
}

func (h *echoConn) OnOpen(c *engine.Conn) {}

func (h *echoConn) OnData(c *engine.Conn, data []byte) int {
	used := 0
	for {
		i := bytes.IndexByte(data[used:], '\n')
		if i < 0 {
			break
		}
		line := bytes.TrimSuffix(data[used:used+i], []byte("\r"))
		used += i + 1
		out := append(append(make([]byte, 0, len(line)+2), line...), '\r', '\n')
		if d := time.Duration(h.role.delay.Load()); d > 0 {
			h.pending++
			c.Loop().AfterFunc(d, func() {
				h.pending--
				c.Write(out)
				if h.eof && h.pending == 0 {
					c.Close()
				}
			})
			continue
		}
		c.Write(out)
	}
	if len(data)-used > maxEchoLine {
		c.Close()
		return len(data)
	}
	return used
}

func (h *echoConn) OnEOF(c *engine.Conn) {
	h.eof = true
	if h.pending == 0 {
		c.Close()
	}
}

func (h *echoConn) OnDrain(c *engine.Conn)            {}
func (h *echoConn) OnTimeout(c *engine.Conn)          { c.Close() }
func (h *echoConn) OnClose(c *engine.Conn, err error) {}
