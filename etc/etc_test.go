package etc

import (
	"bytes"
	"os"
	"testing"
)

func TestDefaultIsACopy(t *testing.T) {
	a := Default()
	want, err := os.ReadFile("default.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, want) {
		t.Fatal("Default() differs from default.toml")
	}
	a[0] ^= 0xff
	if !bytes.Equal(Default(), want) {
		t.Fatal("changing the result of Default() changed the embedded default")
	}
}
