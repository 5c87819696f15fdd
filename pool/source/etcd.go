package source

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/plb/plb/config"
	"github.com/plb/plb/pool"
)

// Bounds of an etcd source.
const (
	// etcdTimeout bounds a read of the prefix.
	etcdTimeout = 2 * time.Second
	// etcdResync is how often the whole prefix is read again besides the
	// watch: it tells whether etcd answers (a watch waits silently), and
	// repairs anything a watch missed.
	etcdResync = 3 * time.Second
	// maxEtcdNodes bounds the nodes a prefix makes.
	maxEtcdNodes = 1024
	// maxEtcdValue bounds a node's value ("ip:port weight=N backup"
	// needs far less): a longer one is no node, and is not kept.
	maxEtcdValue = 256
	// maxEtcdMessage bounds what one answer of etcd may hold.
	maxEtcdMessage = 4 << 20
)

// Etcd is a pool's nodes from etcd: each key under a prefix is a node,
// its value "ip:port" with an optional " weight=N". The prefix is watched,
// so that a key written reaches the pool at once, and read again every
// few seconds; when etcd does not answer, the pool keeps its nodes.
type Etcd struct {
	spec    string
	prefix  string
	cfg     clientv3.Config
	auth    EtcdAuth // Continues compares them
	o       Options
	started []string
	status  *Status
	client  *clientv3.Client
	// warned is the bad value each key was last warned of.
	warned map[string]string
}

var _ Source = (*Etcd)(nil)

// EtcdAuth is how a source proves itself to etcd: a user and password,
// and for https endpoints the CAs to verify them with (nil: the
// system's).
type EtcdAuth struct {
	Username, Password string
	CAFile             string
	// CertFile and KeyFile are a client certificate (https, for an etcd
	// that asks for one).
	CertFile, KeyFile string
}

// NewEtcd returns the source of spec ("etcd:URL[,URL...]", the prefix
// the URLs' path), with auth. fallback is the list to start with when the
// first read fails.
func NewEtcd(spec string, auth EtcdAuth, fallback []string, o Options) (*Etcd, error) {
	nf, err := config.ParseNodesFrom(spec)
	if err != nil {
		return nil, err
	}
	if nf.Kind != "etcd" {
		return nil, fmt.Errorf("nodes_from %q is not etcd's", spec)
	}
	o = o.withDefaults()
	cfg := clientv3.Config{Endpoints: nf.Endpoints, DialTimeout: etcdTimeout, Username: auth.Username,
		Password: auth.Password, Logger: zap.NewNop(), MaxCallRecvMsgSize: maxEtcdMessage}
	if strings.HasPrefix(nf.Endpoints[0], "https://") {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if auth.CAFile != "" {
			pem, err := os.ReadFile(auth.CAFile)
			if err != nil {
				return nil, err
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("etcd_ca_file %s: no PEM certificate", auth.CAFile)
			}
		}
		if auth.CertFile != "" || auth.KeyFile != "" {
			cert, err := tls.LoadX509KeyPair(auth.CertFile, auth.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("etcd_cert_file, etcd_key_file: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		cfg.TLS = tc
	}
	return &Etcd{spec: spec, prefix: nf.Name, cfg: cfg, auth: auth, o: o, started: slices.Clone(fallback), status: newStatus(o.Now),
		warned: map[string]string{}}, nil
}

// String implements Source.
func (e *Etcd) String() string { return e.spec }

// Status implements Reporter.
func (e *Etcd) Status() *Status { return e.status }

// Nodes implements Source: the prefix as read now, or, when etcd does
// not answer, the fallback.
func (e *Etcd) Nodes() []string {
	c, err := clientv3.New(e.cfg)
	if err == nil {
		// A client of its own: Run makes the one it watches with (this
		// source may be replaced before it runs).
		defer c.Close()
		var nodes map[string]string
		if nodes, _, err = e.readWith(context.Background(), c); err == nil {
			e.started = e.list(nodes)
			e.status.ok(len(e.started))
			return slices.Clone(e.started)
		}
	}
	e.o.Log.Warn("node source failed; starting with the configured nodes", "source", e.spec, "err", err, "nodes", len(e.started))
	e.status.failed(err, len(e.started))
	return slices.Clone(e.started)
}

// read returns the nodes under the prefix by key, and the revision read.
func (e *Etcd) read(ctx context.Context) (map[string]string, int64, error) {
	return e.readWith(ctx, e.client)
}

// readWith is read with client c.
func (e *Etcd) readWith(ctx context.Context, c *clientv3.Client) (map[string]string, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, etcdTimeout)
	defer cancel()
	resp, err := c.Get(ctx, e.prefix, clientv3.WithPrefix(), clientv3.WithLimit(maxEtcdNodes))
	if err != nil {
		return nil, 0, err
	}
	nodes := make(map[string]string, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		nodes[string(kv.Key)] = value(kv.Value)
	}
	if resp.More {
		e.o.Log.Warn("etcd prefix holds more keys than a pool takes: the first ones only", "source", e.spec, "nodes", maxEtcdNodes)
	}
	return nodes, resp.Header.Revision, nil
}

// value is a key's value as kept: a long one (no node) is kept short.
func value(v []byte) string {
	if len(v) > maxEtcdValue {
		return string(v[:maxEtcdValue]) + "..."
	}
	return string(v)
}

// list is the node list of nodes by key: the valid values, sorted; a
// value that is no node is left out, and said so.
func (e *Etcd) list(nodes map[string]string) []string {
	out := make([]string, 0, len(nodes))
	for _, k := range slices.Sorted(maps.Keys(nodes)) {
		v := strings.TrimSpace(nodes[k])
		n, err := pool.ParseNode(v)
		if err != nil || len(v) > maxEtcdValue {
			// Said once per key and value, not at every read.
			if e.warned[k] != v {
				e.warned[k] = v
				e.o.Log.Warn("etcd key is no node; left out", "source", e.spec, "key", value([]byte(k)), "value", v)
			}
			continue
		}
		delete(e.warned, k)
		out = append(out, n.Spec())
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Run implements Source: it watches the prefix and reads it again every
// etcdResync.
func (e *Etcd) Run(ctx context.Context, publish Publish) {
	// A client: with credentials, making one asks etcd, which may be down
	// now; it is tried again until it answers.
	var c *clientv3.Client
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		var err error
		if c, err = clientv3.New(e.cfg); err == nil {
			break
		}
		e.status.failed(err, len(e.started))
		e.o.Log.Warn("node source cannot reach etcd; the last nodes stay", "source", e.spec, "err", err, "retry in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
	e.client = c
	defer c.Close()
	last := e.started
	failing := false
	set := func(nodes map[string]string) {
		list := e.list(nodes)
		if !slices.Equal(list, last) {
			if err := publish(list); err != nil {
				e.o.Log.Warn("node source's list refused", "source", e.spec, "err", err)
				return
			}
			if len(list) == 0 {
				e.o.Log.Warn("node source has no node left", "source", e.spec)
			}
			e.o.Log.Info("nodes changed", "source", e.spec, "nodes", strings.Join(list, ", "))
			last = list
		}
		e.status.ok(len(last))
	}
	var nodes map[string]string
	var watch clientv3.WatchChan
	stopWatch := func() {}
	defer func() { stopWatch() }()
	tick := time.NewTicker(etcdResync)
	defer tick.Stop()
	resync := func() {
		n, rev, err := e.read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				e.o.Log.Warn("node source failed; keeping the last nodes", "source", e.spec, "err", err, "nodes", len(last))
			}
			failing = true
			e.status.failed(err, len(last))
			return
		}
		if failing {
			e.o.Log.Info("node source answers again", "source", e.spec)
			failing = false
		}
		nodes = n
		set(nodes)
		// Watch from what was read on: nothing between is missed.
		stopWatch()
		wctx, cancel := context.WithCancel(ctx)
		stopWatch = cancel
		watch = e.client.Watch(wctx, e.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	}
	resync()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			resync()
		case w, ok := <-watch:
			if !ok || w.Err() != nil {
				watch = nil // a compaction or a cancel: the next resync watches again
				continue
			}
			for _, ev := range w.Events {
				if ev.Type == clientv3.EventTypeDelete {
					delete(nodes, string(ev.Kv.Key))
				} else if len(nodes) < maxEtcdNodes {
					nodes[string(ev.Kv.Key)] = value(ev.Kv.Value)
				}
			}
			set(nodes)
		}
	}
}

// Continues implements Source: the same prefix of the same etcd, with the
// same credentials.
func (e *Etcd) Continues(next Source) bool {
	n, ok := next.(*Etcd)
	return ok && n.spec == e.spec && n.auth == e.auth
}
