package source

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// testDNS is a DNS server on loopback answering with h.
func testDNS(t *testing.T, h dns.HandlerFunc) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: h}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

func rr(t *testing.T, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestDNSAnswerShapes: a name that is a CNAME (the answer carries the
// chain) gives its target's addresses; an SRV target that does not
// resolve leaves the others; targets nobody answers for fail within the
// round's bound, not one timeout each.
func TestDNSAnswerShapes(t *testing.T) {
	cname := testDNS(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if r.Question[0].Qtype == dns.TypeA {
			m.Answer = append(m.Answer, rr(t, "web.test. 30 IN CNAME lb.test."), rr(t, "lb.test. 20 IN CNAME lb2.test."), rr(t, "lb2.test. 30 IN A 127.0.0.5"))
		}
		w.WriteMsg(m)
	})
	d, err := NewDNS("dns:web.test:80", cname, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	nodes, ttl, err := d.resolve(context.Background())
	if err != nil || !slices.Equal(nodes, []string{"127.0.0.5:80"}) || ttl != 20*time.Second {
		t.Fatalf("a CNAME'd name: %v %v %v", nodes, ttl, err)
	}

	oneDead := testDNS(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		switch {
		case q.Qtype == dns.TypeSRV:
			for i := range 3 {
				m.Answer = append(m.Answer, rr(t, fmt.Sprintf("_http._tcp.web.test. 30 IN SRV 0 1 80 t%d.test.", i)))
			}
		case q.Name == "t1.test.":
			m.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeA:
			m.Answer = append(m.Answer, rr(t, q.Name+" 30 IN A 127.0.0."+q.Name[1:2]))
		}
		w.WriteMsg(m)
	})
	d, _ = NewDNS("srv:_http._tcp.web.test", oneDead, nil, Options{})
	nodes, _, err = d.resolve(context.Background())
	if err != nil || !slices.Equal(nodes, []string{"127.0.0.0:80", "127.0.0.2:80"}) {
		t.Fatalf("one SRV target of three gone: %v %v", nodes, err)
	}

	silent := testDNS(t, func(w dns.ResponseWriter, r *dns.Msg) {
		if r.Question[0].Qtype != dns.TypeSRV {
			return // never answered
		}
		m := new(dns.Msg)
		m.SetReply(r)
		for i := range 5 {
			m.Answer = append(m.Answer, rr(t, fmt.Sprintf("_http._tcp.web.test. 30 IN SRV 0 1 80 t%d.test.", i)))
		}
		w.WriteMsg(m)
	})
	d, _ = NewDNS("srv:_http._tcp.web.test", silent, []string{"10.0.0.1:80"}, Options{})
	start := time.Now()
	if nodes := d.Nodes(); !slices.Equal(nodes, []string{"10.0.0.1:80"}) || time.Since(start) > resolveTimeout+time.Second {
		t.Fatalf("targets nobody answers: %v after %v", nodes, time.Since(start))
	}
}
