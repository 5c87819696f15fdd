package source

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/plb/plb/config"
	"github.com/plb/plb/pool"
)

// Bounds on how often a DNS source asks again.
const (
	// MinTTL and MaxTTL bound the wait before the next question: the
	// answers' TTL, but never sooner than MinTTL (a TTL of 0 would be a
	// question per request) nor later than MaxTTL (a change still arrives
	// within a minute when a TTL is a day).
	MinTTL = time.Second
	MaxTTL = 60 * time.Second
	// dnsTimeout bounds one question to one server, resolveTimeout all
	// of one round's (an SRV answer's targets asked one by one).
	dnsTimeout     = 2 * time.Second
	resolveTimeout = 6 * time.Second
	// retryAfter is the wait after a failed question.
	retryAfter = 2 * time.Second
	// maxDNSNodes bounds the nodes one answer makes.
	maxDNSNodes = 256
)

// ErrNoAnswer is a DNS question answered with no address: the last nodes
// are kept, as after a timeout (an empty answer is likelier a mistake in
// the zone than a site without nodes).
var ErrNoAnswer = errors.New("source: no address in the DNS answer")

// DNS is a pool's nodes from DNS: the A and AAAA answers of a name, each
// at the same port ("dns:name:port"), or the SRV answers of a name
// ("srv:name"), each target's addresses at its port with its weight, the
// targets of a priority other than the best as backups. It
// asks again when the answers' TTL runs out (within MinTTL and MaxTTL);
// a question that fails publishes nothing, so the pool keeps its nodes.
type DNS struct {
	spec    string // as configured, "dns:web.example.com:80"
	name    string // fully qualified
	port    uint16 // dns:'s
	srv     bool
	servers []string // "ip:port" to ask, in order
	o       Options
	started []string // what Nodes returned, Run's first list
	ttl     time.Duration
	status  *Status
}

var _ Source = (*DNS)(nil)

// NewDNS returns the source of spec (config.ParseNodesFrom), asking server
// ("ip:port"), or the name servers of /etc/resolv.conf when it is "".
// fallback is the list to start with when the first question fails (the
// pool's nodes as configured).
func NewDNS(spec, server string, fallback []string, o Options) (*DNS, error) {
	nf, err := config.ParseNodesFrom(spec)
	if err != nil {
		return nil, err
	}
	o = o.withDefaults()
	d := &DNS{spec: spec, name: nf.Name, port: nf.Port, srv: nf.Kind == "srv", o: o, started: slices.Clone(fallback), status: newStatus(o.Now)}
	if server != "" {
		d.servers = []string{server}
	} else if cc, err := dns.ClientConfigFromFile("/etc/resolv.conf"); err == nil {
		for _, s := range cc.Servers {
			d.servers = append(d.servers, net.JoinHostPort(s, cc.Port))
		}
	}
	if len(d.servers) == 0 {
		d.servers = []string{"127.0.0.1:53"}
	}
	return d, nil
}

// String implements Source.
func (d *DNS) String() string { return d.spec }

// Status implements Reporter.
func (d *DNS) Status() *Status { return d.status }

// Nodes implements Source: the first answer, asked now (bounded by
// dnsTimeout for each server), or, when it fails, the fallback.
func (d *DNS) Nodes() []string {
	ctx, cancel := context.WithTimeout(context.Background(), min(dnsTimeout*time.Duration(len(d.servers)), resolveTimeout))
	defer cancel()
	nodes, ttl, err := d.resolve(ctx)
	if err != nil {
		d.o.Log.Warn("node source failed; starting with the configured nodes", "source", d.spec, "err", err, "nodes", len(d.started))
		d.status.failed(err, len(d.started))
		d.ttl = retryAfter
		return slices.Clone(d.started)
	}
	d.status.ok(len(nodes))
	d.started, d.ttl = nodes, ttl
	return slices.Clone(nodes)
}

// Run implements Source: it asks again when the TTL runs out.
func (d *DNS) Run(ctx context.Context, publish Publish) {
	last, wait := d.started, d.ttl
	if wait <= 0 {
		wait = MinTTL
	}
	failing := false
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
		nodes, ttl, err := d.resolve(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				d.o.Log.Warn("node source failed; keeping the last nodes", "source", d.spec, "err", err, "nodes", len(last))
			}
			failing = true
			d.status.failed(err, len(last))
			t.Reset(retryAfter)
			continue
		}
		if failing {
			d.o.Log.Info("node source answers again", "source", d.spec, "nodes", len(nodes))
			failing = false
		}
		if !slices.Equal(nodes, last) {
			if err := publish(nodes); err != nil {
				d.o.Log.Warn("node source's list refused", "source", d.spec, "err", err)
			} else {
				d.o.Log.Info("nodes changed", "source", d.spec, "nodes", strings.Join(nodes, ", "))
				last = nodes
			}
		}
		d.status.ok(len(last))
		t.Reset(ttl)
	}
}

// Continues implements Source: the same question to the same servers.
func (d *DNS) Continues(next Source) bool {
	n, ok := next.(*DNS)
	return ok && n.spec == d.spec && slices.Equal(n.servers, d.servers)
}

// resolve asks the question and returns the nodes, sorted, and the wait
// before the next question.
func (d *DNS) resolve(ctx context.Context) ([]string, time.Duration, error) {
	ttl := MaxTTL
	var nodes []string
	var firstErr error // of an SRV target that did not resolve
	if d.srv {
		ans, err := d.ask(ctx, d.name, dns.TypeSRV)
		if err != nil {
			return nil, 0, err
		}
		var srvs []*dns.SRV
		for _, rr := range ans.Answer {
			if s, ok := rr.(*dns.SRV); ok {
				srvs = append(srvs, s)
				ttl = min(ttl, time.Duration(rr.Header().Ttl)*time.Second)
			}
		}
		// The lowest priority first (RFC 2782): the others' targets are
		// backups, used only when none of the best can take a request.
		best := -1
		for _, s := range srvs {
			if best < 0 || int(s.Priority) < best {
				best = int(s.Priority)
			}
		}
		maxW := uint16(0)
		for _, s := range srvs {
			maxW = max(maxW, s.Weight)
		}
		for _, s := range srvs {
			addrs, t, err := d.addresses(ctx, s.Target, ans)
			if err != nil {
				// One target that does not resolve leaves the others:
				// the answer fails only when none does.
				firstErr = cmp.Or(firstErr, err)
				continue
			}
			ttl = min(ttl, t)
			w := srvWeight(s.Weight, maxW)
			for _, a := range addrs {
				nodes = append(nodes, pool.NodeSpec(netip.AddrPortFrom(a, s.Port).String(), w, int(s.Priority) != best))
			}
		}
	} else {
		addrs, t, err := d.addresses(ctx, d.name, nil)
		if err != nil {
			return nil, 0, err
		}
		ttl = t
		for _, a := range addrs {
			nodes = append(nodes, netip.AddrPortFrom(a, d.port).String())
		}
	}
	// Sorted, the backups last: past maxDNSNodes, backups go first.
	slices.SortFunc(nodes, func(a, b string) int {
		if ab, bb := strings.HasSuffix(a, " backup"), strings.HasSuffix(b, " backup"); ab != bb {
			if ab {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	})
	nodes = slices.Compact(nodes)
	if len(nodes) == 0 {
		if firstErr != nil {
			return nil, 0, firstErr
		}
		return nil, 0, ErrNoAnswer
	}
	if len(nodes) > maxDNSNodes {
		nodes = nodes[:maxDNSNodes]
	}
	return nodes, min(max(ttl, MinTTL), MaxTTL), nil
}

// addresses returns name's A and AAAA addresses, from extra's additional
// section when it has them (an SRV answer often does), else asked.
func (d *DNS) addresses(ctx context.Context, name string, extra *dns.Msg) ([]netip.Addr, time.Duration, error) {
	ttl := MaxTTL
	var out []netip.Addr
	collect := func(rrs []dns.RR) {
		// The name and its aliases: a CNAME chain in the answer (a cloud
		// balancer's name usually is one), at most a few links long.
		names := map[string]bool{strings.ToLower(name): true}
		for range 8 {
			grew := false
			for _, rr := range rrs {
				if c, ok := rr.(*dns.CNAME); ok && names[strings.ToLower(c.Hdr.Name)] && !names[strings.ToLower(c.Target)] {
					names[strings.ToLower(c.Target)] = true
					ttl = min(ttl, time.Duration(c.Hdr.Ttl)*time.Second)
					grew = true
				}
			}
			if !grew {
				break
			}
		}
		for _, rr := range rrs {
			if !names[strings.ToLower(rr.Header().Name)] {
				continue
			}
			var ip net.IP
			switch r := rr.(type) {
			case *dns.A:
				ip = r.A
			case *dns.AAAA:
				ip = r.AAAA
			default:
				continue
			}
			if a, ok := netip.AddrFromSlice(ip); ok {
				out = append(out, a.Unmap())
				ttl = min(ttl, time.Duration(rr.Header().Ttl)*time.Second)
			}
		}
	}
	if extra != nil {
		collect(extra.Extra)
		if len(out) > 0 {
			return out, ttl, nil
		}
	}
	var firstErr error
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		ans, err := d.ask(ctx, name, t)
		if err != nil {
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		collect(ans.Answer)
	}
	if len(out) == 0 && firstErr != nil {
		return nil, 0, firstErr
	}
	return out, ttl, nil
}

// ask sends one question to the servers in turn, over UDP, and over TCP
// when the answer was truncated; NXDOMAIN is ErrNoAnswer.
func (d *DNS) ask(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = true
	var last error
	for _, s := range d.servers {
		c := &dns.Client{Net: "udp", Timeout: dnsTimeout}
		ans, _, err := c.ExchangeContext(ctx, m, s)
		if err == nil && ans.Truncated {
			c.Net = "tcp"
			ans, _, err = c.ExchangeContext(ctx, m, s)
		}
		if err != nil {
			last = fmt.Errorf("asking %s for %s %s: %w", s, name, dns.TypeToString[qtype], err)
			continue
		}
		switch ans.Rcode {
		case dns.RcodeSuccess:
			return ans, nil
		case dns.RcodeNameError:
			return nil, fmt.Errorf("%w: %s %s does not exist (%s)", ErrNoAnswer, name, dns.TypeToString[qtype], s)
		default:
			last = fmt.Errorf("asking %s for %s %s: %s", s, name, dns.TypeToString[qtype], dns.RcodeToString[ans.Rcode])
		}
	}
	return nil, last
}

// srvWeight maps an SRV weight (0 to 65535) to a node weight (1 to
// pool.MaxWeight), in proportion to the largest of the answer: weight 0
// is a node picked rarely (RFC 2782), not a drained one.
func srvWeight(w, maxW uint16) int {
	if maxW <= pool.MaxWeight {
		return max(int(w), 1)
	}
	return max(int(w)*pool.MaxWeight/int(maxW), 1)
}
