package config

import (
	"crypto/tls"
	"slices"
	"strings"
)

// TLS settings that need more than a type check: ssl_cipher_list (an
// OpenSSL cipher string mapped onto Go's cipher suites), ssl_verify_mode
// and the ssl_certificates pairs. See docs/tls.md.

// CipherSuites maps an OpenSSL-style cipher list (ssl_cipher_list) onto
// Go's TLS 1.2 cipher suites. plb offers only what crypto/tls considers
// secure: ECDHE key exchange with AES-GCM, ChaCha20-Poly1305 or AES-CBC;
// TLS 1.3 suites are not configurable (Go always offers its three). The
// list is read with OpenSSL's operators: "A:B" adds, "!A" removes for
// good, "-A" removes, "+A" moves to the end, "A+B" is the suites in both,
// "@STRENGTH" and "@SECLEVEL=n" are accepted and ignored. Keywords (ALL,
// DEFAULT, HIGH, ECDHE, aRSA, AESGCM, ...) and OpenSSL or IANA cipher
// names select among those suites; a keyword or name of ciphers Go does
// not implement or considers weak (LOW, EXP, RC4, 3DES, DHE, CAMELLIA,
// AES128-SHA, ...) selects nothing, so Perlbal's default "ALL:!LOW:!EXP"
// gives Go's defaults. A word that is none of these is an error, as is a
// list that leaves no suite. The result is nil when the list selects
// every suite (Go's default list then applies); order is not kept (Go
// orders suites itself).
func CipherSuites(list string) ([]uint16, error) {
	universe := tls12Suites()
	var cur []uint16
	banned := map[uint16]bool{}
	tokens := strings.FieldsFunc(list, func(r rune) bool { return r == ':' || r == ',' || r == ' ' || r == ';' })
	if len(tokens) == 0 {
		return nil, nil
	}
	for _, tok := range tokens {
		if tok[0] == '@' {
			continue // @STRENGTH, @SECLEVEL=n: ordering and levels
		}
		op := byte(0)
		if tok[0] == '!' || tok[0] == '-' || tok[0] == '+' {
			op, tok = tok[0], tok[1:]
		}
		var match []uint16
		for i, atom := range strings.Split(tok, "+") {
			m, ok := cipherAtom(atom, universe)
			if !ok {
				return nil, errorf("ssl_cipher_list: unknown cipher or keyword '%s' (plb uses Go's cipher suites: see docs/tls.md)", atom)
			}
			if i == 0 {
				match = m
			} else {
				match = slices.DeleteFunc(match, func(id uint16) bool { return !slices.Contains(m, id) })
			}
		}
		switch op {
		case '!':
			for _, id := range match {
				banned[id] = true
			}
			cur = slices.DeleteFunc(cur, func(id uint16) bool { return banned[id] })
		case '-':
			cur = slices.DeleteFunc(cur, func(id uint16) bool { return slices.Contains(match, id) })
		case '+':
			var moved []uint16
			cur = slices.DeleteFunc(cur, func(id uint16) bool {
				if slices.Contains(match, id) {
					moved = append(moved, id)
					return true
				}
				return false
			})
			cur = append(cur, moved...)
		default:
			for _, id := range match {
				if !banned[id] && !slices.Contains(cur, id) {
					cur = append(cur, id)
				}
			}
		}
	}
	if len(cur) == 0 {
		return nil, errorf("ssl_cipher_list '%s' leaves no cipher suite plb supports (Go's TLS 1.2 suites: ECDHE with AES-GCM, ChaCha20-Poly1305 or AES-CBC; see docs/tls.md)", list)
	}
	if len(cur) == len(universe) {
		return nil, nil
	}
	slices.Sort(cur)
	return cur, nil
}

// tls12Suites are the TLS 1.2 suites crypto/tls offers by default.
func tls12Suites() []uint16 {
	var ids []uint16
	for _, s := range tls.CipherSuites() {
		if slices.Contains(s.SupportedVersions, tls.VersionTLS12) {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

// cipherAtom returns the suites of universe one word of a cipher list
// selects, and whether the word is known.
func cipherAtom(atom string, universe []uint16) ([]uint16, bool) {
	var pred func(name string) bool
	switch atom {
	case "ALL", "DEFAULT", "HIGH", "TLSv1.2", "kECDHE", "kEECDH", "ECDHE", "EECDH", "COMPLEMENTOFALL", "FIPS":
		pred = func(string) bool { return true }
	case "COMPLEMENTOFDEFAULT", "MEDIUM", "LOW", "EXP", "EXPORT", "EXPORT40", "EXPORT56", "NULL", "eNULL", "aNULL",
		"RC4", "RC2", "DES", "3DES", "MD5", "IDEA", "SEED", "PSK", "kPSK", "ECDHEPSK", "DHEPSK", "RSAPSK", "SRP", "kSRP",
		"DSS", "aDSS", "DSA", "DH", "DHE", "EDH", "kEDH", "kDHE", "kDHr", "kDHd", "kDH", "ADH", "AECDH", "ECDH", "kECDH",
		"RSA", "kRSA", "CAMELLIA", "CAMELLIA128", "CAMELLIA256", "ARIA", "ARIA128", "ARIA256", "AESCCM", "AESCCM8", "CCM",
		"SSLv3", "SSLv2", "GOST", "kGOST", "aGOST", "aGOST01", "GOST89MAC", "GOST94", "SUITEB128", "SUITEB128ONLY",
		"SUITEB192", "KRB5", "kKRB5", "aKRB5", "SHA256", "SHA384", "CBC3":
		// Nothing Go offers (static RSA key exchange, SHA-256 MACs and
		// the rest are weak or unimplemented in crypto/tls).
		return nil, true
	case "aRSA":
		pred = func(n string) bool { return strings.Contains(n, "_RSA_") }
	case "aECDSA", "ECDSA":
		pred = func(n string) bool { return strings.Contains(n, "_ECDSA_") }
	case "AES":
		pred = func(n string) bool { return strings.Contains(n, "_AES_") }
	case "AES128":
		pred = func(n string) bool { return strings.Contains(n, "_AES_128_") }
	case "AES256":
		pred = func(n string) bool { return strings.Contains(n, "_AES_256_") }
	case "AESGCM":
		pred = func(n string) bool { return strings.Contains(n, "_GCM_") }
	case "CHACHA20":
		pred = func(n string) bool { return strings.Contains(n, "CHACHA20") }
	case "SHA1", "SHA", "TLSv1", "TLSv1.0":
		pred = func(n string) bool { return strings.HasSuffix(n, "_CBC_SHA") }
	}
	if pred == nil {
		id, ok := cipherByName(atom)
		if !ok {
			if !opensslCipherName(atom) {
				return nil, false
			}
			return nil, true // an OpenSSL cipher Go does not implement
		}
		pred = func(n string) bool { return tls.CipherSuiteName(id) == n }
	}
	var out []uint16
	for _, id := range universe {
		if pred(tls.CipherSuiteName(id)) {
			out = append(out, id)
		}
	}
	return out, true
}

// cipherByName finds a suite crypto/tls knows by its OpenSSL or IANA name.
func cipherByName(name string) (uint16, bool) {
	for iana, ossl := range opensslNames() {
		if name == ossl || name == iana {
			for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
				if s.Name == iana {
					return s.ID, true
				}
			}
		}
	}
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if s.Name == name {
			return s.ID, true
		}
	}
	return 0, false
}

// opensslNames maps the IANA names of crypto/tls's TLS 1.2 suites to
// OpenSSL's.
func opensslNames() map[string]string {
	return map[string]string{
		"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA":          "ECDHE-ECDSA-AES128-SHA",
		"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA":          "ECDHE-ECDSA-AES256-SHA",
		"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA":            "ECDHE-RSA-AES128-SHA",
		"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA":            "ECDHE-RSA-AES256-SHA",
		"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256":       "ECDHE-ECDSA-AES128-GCM-SHA256",
		"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384":       "ECDHE-ECDSA-AES256-GCM-SHA384",
		"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256":         "ECDHE-RSA-AES128-GCM-SHA256",
		"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384":         "ECDHE-RSA-AES256-GCM-SHA384",
		"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256":   "ECDHE-RSA-CHACHA20-POLY1305",
		"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
		"TLS_RSA_WITH_RC4_128_SHA":                      "RC4-SHA",
		"TLS_RSA_WITH_3DES_EDE_CBC_SHA":                 "DES-CBC3-SHA",
		"TLS_RSA_WITH_AES_128_CBC_SHA":                  "AES128-SHA",
		"TLS_RSA_WITH_AES_256_CBC_SHA":                  "AES256-SHA",
		"TLS_RSA_WITH_AES_128_CBC_SHA256":               "AES128-SHA256",
		"TLS_RSA_WITH_AES_128_GCM_SHA256":               "AES128-GCM-SHA256",
		"TLS_RSA_WITH_AES_256_GCM_SHA384":               "AES256-GCM-SHA384",
		"TLS_ECDHE_ECDSA_WITH_RC4_128_SHA":              "ECDHE-ECDSA-RC4-SHA",
		"TLS_ECDHE_RSA_WITH_RC4_128_SHA":                "ECDHE-RSA-RC4-SHA",
		"TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA":           "ECDHE-RSA-DES-CBC3-SHA",
		"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256":       "ECDHE-ECDSA-AES128-SHA256",
		"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256":         "ECDHE-RSA-AES128-SHA256",
	}
}

// opensslCipherName reports whether name is shaped like an OpenSSL cipher
// name: dash-separated words each naming an algorithm (for example
// DHE-RSA-AES256-GCM-SHA384 or ECDHE-ECDSA-CAMELLIA256-SHA384).
func opensslCipherName(name string) bool {
	parts := strings.Split(name, "-")
	if len(parts) < 2 {
		return false
	}
	for _, p := range parts {
		switch p {
		case "ECDHE", "DHE", "EDH", "ECDH", "DH", "RSA", "DSS", "ECDSA", "PSK", "SRP", "ADH", "AECDH", "EXP", "EXP1024",
			"AES128", "AES256", "AES", "GCM", "CCM", "CCM8", "CBC", "CBC3", "DES", "RC4", "RC2", "IDEA", "SEED",
			"CAMELLIA128", "CAMELLIA256", "ARIA128", "ARIA256", "CHACHA20", "POLY1305", "SHA", "SHA256", "SHA384",
			"MD5", "NULL", "KRB5", "GOST94", "GOST89", "GOST2001", "GOST2012", "GOST", "MAGMA", "KUZNYECHIK", "OMAC", "40", "56":
		default:
			return false
		}
	}
	return true
}

// ClientAuth maps ssl_verify_mode (OpenSSL's SSL_VERIFY_* bits, as
// IO::Socket::SSL passes them: 1 PEER, 2 FAIL_IF_NO_PEER_CERT, 4
// CLIENT_ONCE) onto crypto/tls: without PEER no certificate is asked for
// (OpenSSL ignores the other bits then); PEER verifies a certificate the
// client sends; PEER|FAIL_IF_NO_PEER_CERT (3) requires one.
func ClientAuth(mode int) tls.ClientAuthType {
	switch {
	case mode&1 == 0:
		return tls.NoClientCert
	case mode&2 != 0:
		return tls.RequireAndVerifyClientCert
	}
	return tls.VerifyClientCertIfGiven
}

// SplitCertKey splits an ssl_certificates entry "cert.pem:key.pem" at its
// last colon; an entry without one names a file holding both.
func SplitCertKey(entry string) (cert, key string) {
	if i := strings.LastIndexByte(entry, ':'); i > 0 && i < len(entry)-1 {
		return entry[:i], entry[i+1:]
	}
	return entry, entry
}
