package handoff

import (
	"testing"

	"github.com/plb/plb/config"
)

func names(hs []Header) (out []string) {
	for _, h := range hs {
		out = append(out, string(h.Name)+"="+string(h.Value))
	}
	return out
}

func TestRules(t *testing.T) {
	if NewRules(nil) != nil {
		t.Error("no rules are not nil")
	}
	r := NewRules([]config.HeaderRule{{Insert: true, Name: "X-A", Value: "1"}, {Name: "X-Gone"}, {Insert: true, Name: "x-a", Value: "2"}})
	if got := names(r.Inserts); len(got) != 1 || got[0] != "x-a=2" {
		t.Errorf("inserts %q", got)
	}
	for _, n := range []string{"X-A", "x-gone"} {
		if !r.Removed([]byte(n)) {
			t.Errorf("%s not removed", n)
		}
	}
	var none *Rules
	if none.Removed([]byte("X")) {
		t.Error("nil rules remove")
	}
	// a then b: b's removal drops a's insert; b's insert comes last.
	b := NewRules([]config.HeaderRule{{Name: "X-A"}, {Insert: true, Name: "X-B", Value: "b"}})
	c := Chain(r, b)
	if got := names(c.Inserts); len(got) != 1 || got[0] != "X-B=b" || !c.Removed([]byte("x-gone")) {
		t.Errorf("chain %q", got)
	}
	if Chain(nil, b) != b || Chain(r, nil) != r {
		t.Error("chain with nil")
	}
	w := r.With([]byte("Host"), []byte("h"))
	if got := names(w.Inserts); len(got) != 2 || got[1] != "Host=h" || len(r.Inserts) != 1 {
		t.Errorf("with %q (r %q)", got, names(r.Inserts))
	}
}
