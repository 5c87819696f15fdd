package config

import (
	"testing"

	"github.com/plb/plb/pool"
)

// TestBalanceMethodsArePools: the names config accepts are pool's table,
// its default first, and each makes a pool; pool's aliases are not
// accepted here.
func TestBalanceMethodsArePools(t *testing.T) {
	names := BalanceMethods()
	if len(names) == 0 || names[0] != BalanceIdleFirst || newPool("p").BalanceMethod != names[0] {
		t.Fatalf("methods %v: the default is not first", names)
	}
	for _, m := range pool.Methods() {
		if !knownBalanceMethod(m.Name) {
			t.Errorf("%q is pool's but not valid", m.Name)
		}
		if _, err := pool.New("p", m.Name); err != nil {
			t.Errorf("%q: %v", m.Name, err)
		}
		for _, a := range m.Aliases {
			if knownBalanceMethod(a) {
				t.Errorf("alias %q accepted", a)
			}
		}
	}
	if knownBalanceMethod("") || knownBalanceMethod("weighted") {
		t.Error("an unknown method accepted")
	}
	want := "Unknown balance method 'weighted' (use idle_first, random, round_robin, least_conn or hash)"
	if err := errBalanceMethod("weighted"); err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}
