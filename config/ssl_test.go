package config

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"
)

// TestCipherSuites: OpenSSL cipher strings onto Go's TLS 1.2 suites.
func TestCipherSuites(t *testing.T) {
	all := tls12Suites()
	names := func(ids []uint16) string {
		var n []string
		for _, id := range ids {
			n = append(n, tls.CipherSuiteName(id))
		}
		return strings.Join(n, " ")
	}
	for _, tc := range []struct {
		list string
		want []uint16 // nil: Go's defaults
		err  string
	}{
		{list: ""},
		{list: "ALL:!LOW:!EXP"}, // Perlbal's default
		{list: "DEFAULT"},
		{list: "HIGH:!aNULL:!MD5"}, // nginx's default
		{list: "HIGH:!aNULL:!MD5:!RC4:!3DES:@STRENGTH"},
		{list: "ALL:-CAMELLIA:+RC4"},
		{list: "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256",
			want: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}},
		{list: "ECDHE+AESGCM", want: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}},
		{list: "EECDH+AESGCM:EDH+AESGCM:!aECDSA", want: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}},
		{list: "ALL:!SHA1", want: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}},
		{list: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,DHE-RSA-AES256-GCM-SHA384", want: []uint16{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}},
		{list: "RC4-SHA:DES-CBC3-SHA", err: "leaves no cipher suite"},
		{list: "LOW:EXP", err: "leaves no cipher suite"},
		{list: "ALL:!ECDHE", err: "leaves no cipher suite"},
		{list: "HIGH:bogus", err: "unknown cipher or keyword 'bogus'"},
		{list: "ECDHE+AESGXM", err: "unknown cipher or keyword 'AESGXM'"},
	} {
		got, err := CipherSuites(tc.list)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.list, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.list, err)
			continue
		}
		want := slices.Clone(tc.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%q: got [%s], want [%s]", tc.list, names(got), names(want))
		}
	}
	if len(all) != 10 {
		t.Logf("Go offers %d TLS 1.2 suites: %s", len(all), names(all))
	}
}

// TestClientAuth: ssl_verify_mode's OpenSSL bits.
func TestClientAuth(t *testing.T) {
	for mode, want := range map[int]tls.ClientAuthType{
		0: tls.NoClientCert, 2: tls.NoClientCert, 4: tls.NoClientCert,
		1: tls.VerifyClientCertIfGiven, 5: tls.VerifyClientCertIfGiven,
		3: tls.RequireAndVerifyClientCert, 7: tls.RequireAndVerifyClientCert,
	} {
		if got := ClientAuth(mode); got != want {
			t.Errorf("mode %d: %v, want %v", mode, got, want)
		}
	}
}

// TestSplitCertKey: ssl_certificates entries.
func TestSplitCertKey(t *testing.T) {
	for in, want := range map[string][2]string{
		"a.pem:a.key":          {"a.pem", "a.key"},
		"/etc/x:y/c.pem:k.pem": {"/etc/x:y/c.pem", "k.pem"},
		"both.pem":             {"both.pem", "both.pem"},
		"trailing:":            {"trailing:", "trailing:"},
	} {
		if c, k := SplitCertKey(in); c != want[0] || k != want[1] {
			t.Errorf("%q: %q %q", in, c, k)
		}
	}
}
