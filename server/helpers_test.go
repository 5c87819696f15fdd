package server

// Test helpers: a server fixture built from TOML, scripted backends, a raw
// HTTP client, deterministic payloads and descriptor counting.

import (
	"context"
	"testing"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/http/proxy"
	"github.com/plb/plb/internal/testhttp"
	"github.com/plb/plb/internal/testutil"
)

// testTimeout bounds every wait in these tests.
const testTimeout = testhttp.Timeout

// testServer is a running Server whose Run ends with the test.
type testServer struct {
	*Server
	t      *testing.T
	done   chan struct{} // closed when Run returned
	runErr error
}

// startServer parses tomlText, applies it and runs the server until the
// test ends.
func startServer(t *testing.T, tomlText string) *testServer {
	t.Helper()
	return startServerOpts(t, tomlText, Options{})
}

func startServerOpts(t *testing.T, tomlText string, o Options) *testServer {
	t.Helper()
	cfg, err := config.Parse("test.toml", []byte(tomlText), nil)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, tomlText)
	}
	s, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(cfg); err != nil {
		s.eng.Stop()
		t.Fatal(err)
	}
	ts := &testServer{Server: s, t: t, done: make(chan struct{})}
	go func() {
		ts.runErr = s.Run(context.Background())
		close(ts.done)
	}()
	t.Cleanup(func() {
		s.Shutdown(false)
		select {
		case <-ts.done:
		case <-time.After(testTimeout):
			t.Error("server did not stop")
		}
	})
	return ts
}

// startProxy runs a reverse_proxy service "proxy" over pool "web" of nodes
// on 2 loops; poolKeys and svcKeys are extra TOML lines.
func startProxy(t *testing.T, nodes []string, poolKeys, svcKeys string) *testServer {
	t.Helper()
	return startServer(t, testhttp.ProxyTOML(nodes, poolKeys, svcKeys))
}

// addrOf returns the bound address of a service as "ip:port".
func (ts *testServer) addrOf(name string) string {
	a := ts.Addr(name)
	if a == nil {
		ts.t.Fatalf("service %s not listening", name)
	}
	return a.String()
}

// proxySvc returns the running reverse_proxy service name.
func (ts *testServer) proxySvc(name string) *proxy.Service {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.services[name].run.(proxyRun).Service
}

// logBuffer is a slog handler target that keeps what was logged.
type logBuffer = testutil.SyncBuffer
