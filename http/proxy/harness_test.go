package proxy

import (
	"log/slog"
	"testing"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/engine"
	"github.com/plb/plb/internal/testhttp"
	"github.com/plb/plb/pool"
)

// The proxy's tests run a Service here, beside the code: on an engine of
// its own, over the pool of a testhttp.ProxyTOML configuration, without
// the server (no console, no health probes, no reload, no plugins). What
// needs those is tested in package server.

// testTimeout bounds every wait in these tests.
const testTimeout = testhttp.Timeout

// harness is a running reverse_proxy service "proxy" over pool "web".
type harness struct {
	t    *testing.T
	eng  *engine.Engine
	pool *pool.Pool
	svc  *Service
	ln   *engine.Listener
}

// harnessOptions are what a test may change of the harness.
type harnessOptions struct {
	Logger       *slog.Logger     // nil: discarded
	Now          func() time.Time // the engine's clock (nil: time.Now)
	DebugUploads bool             // PERLBAL_DEBUG_BUFFERED_UPLOADS
}

// startProxy runs service "proxy" over pool "web" of nodes on 2 loops;
// poolKeys and svcKeys are extra TOML lines.
func startProxy(t *testing.T, nodes []string, poolKeys, svcKeys string) *harness {
	t.Helper()
	return startProxyTOML(t, testhttp.ProxyTOML(nodes, poolKeys, svcKeys), harnessOptions{})
}

// runProxy is startProxyTOML with the default options.
func runProxy(t *testing.T, tomlText string) *harness {
	t.Helper()
	return startProxyTOML(t, tomlText, harnessOptions{})
}

// startProxyTOML runs the service "proxy" of tomlText, over its pool
// "web", until the test ends.
func startProxyTOML(t *testing.T, tomlText string, o harnessOptions) *harness {
	t.Helper()
	cfg, err := config.Parse("test.toml", []byte(tomlText), nil)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, tomlText)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v\n%s", err, tomlText)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	sc, pc := cfg.Service("proxy"), cfg.Pool("web")
	p, err := pool.New(pc.Name, pc.BalanceMethod)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetNodes(pc.Nodes); err != nil {
		t.Fatal(err)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	pc.Tune(p, now)
	eng, err := engine.New(engine.Config{Loops: cfg.Global.Workers, Logger: o.Logger, Now: o.Now})
	if err != nil {
		t.Fatal(err)
	}
	st := NewSettings(sc, p, pc.ServerRetry)
	st.DebugUploads = o.DebugUploads
	svc := New(sc.Name, st, len(eng.Loops()), o.Logger.With("service", sc.Name))
	ln, err := eng.Listen(engine.ListenConfig{Addr: sc.Listen, Backlog: cfg.Global.Backlog, OnAccept: svc.Accept})
	if err != nil {
		eng.Stop()
		t.Fatal(err)
	}
	eng.Start()
	t.Cleanup(eng.Stop)
	return &harness{t: t, eng: eng, pool: p, svc: svc, ln: ln}
}

// addr returns the service's address as "ip:port".
func (h *harness) addr() string { return h.ln.Addr().String() }
