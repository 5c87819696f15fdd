package config

import (
	"strconv"
	"strings"
)

// tomlIndex maps TOML key paths to the line where each is first defined,
// for error messages: the TOML decoder keeps key positions private. It
// scans table headers and "key =" statements, stepping over strings,
// comments, arrays and inline tables; keys inside inline tables fall back to
// the line of their enclosing key.
type tomlIndex map[string]int

// Limits on TOML nesting: the decoder takes quadratic time in the length of
// dotted keys and in the depth of inline tables, and plb's schema needs
// neither beyond a few levels.
const (
	maxTOMLDepth = 16 // nested arrays and inline tables
	maxTOMLDots  = 32 // dots outside strings on one line
)

// indexTOML indexes src; it fails, with the line, on input nested beyond
// the limits.
func indexTOML(src string) (tomlIndex, int, bool) {
	idx := tomlIndex{}
	var table []string
	line, depth, dots := 1, 0, 0
	stmt := true // at the start of a statement
	for i := 0; i < len(src); {
		c := src[i]
		switch c {
		case '\n':
			line++
			i++
			dots = 0
			if depth == 0 {
				stmt = true
			}
			continue
		case '.':
			if dots++; dots > maxTOMLDots {
				return nil, line, false
			}
		case ' ', '\t', '\r':
			i++
			continue
		case '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
			continue
		}
		if stmt && depth == 0 {
			stmt = false
			if c == '[' {
				j := i + 1
				if j < len(src) && src[j] == '[' {
					j++
				}
				if keys, _, ok := parseKeyPath(src, j); ok {
					table = keys
					idx.record(keys, line)
					for i < len(src) && src[i] != '\n' {
						i++
					}
					continue
				}
			}
			if keys, k, ok := parseKeyPath(src, i); ok && k < len(src) && src[k] == '=' {
				idx.record(append(append([]string(nil), table...), keys...), line)
				i = k + 1
				continue
			}
		}
		switch c {
		case '"', '\'':
			i = skipTOMLString(src, i, &line)
			continue
		case '[', '{':
			if depth++; depth > maxTOMLDepth {
				return nil, line, false
			}
		case ']', '}':
			if depth > 0 {
				depth--
			}
		}
		i++
	}
	return idx, 0, true
}

func (idx tomlIndex) record(keys []string, line int) {
	for n := 1; n <= len(keys); n++ {
		k := strings.Join(keys[:n], "\x00")
		if _, ok := idx[k]; !ok {
			idx[k] = line
		}
	}
}

// line returns the line of path, or of its longest recorded prefix (0 if
// none).
func (idx tomlIndex) line(path ...string) int {
	for n := len(path); n > 0; n-- {
		if l, ok := idx[strings.Join(path[:n], "\x00")]; ok {
			return l
		}
	}
	return 0
}

// parseKeyPath parses a dotted TOML key at src[i:] and returns the keys and
// the index after it and any blanks.
func parseKeyPath(src string, i int) ([]string, int, bool) {
	var keys []string
	for {
		for i < len(src) && (src[i] == ' ' || src[i] == '\t') {
			i++
		}
		if i >= len(src) {
			return nil, i, false
		}
		var k string
		switch c := src[i]; {
		case c == '"':
			j := i + 1
			for j < len(src) && src[j] != '"' && src[j] != '\n' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(src) || src[j] != '"' {
				return nil, i, false
			}
			u, err := strconv.Unquote(src[i : j+1])
			if err != nil {
				u = src[i+1 : j]
			}
			k, i = u, j+1
		case c == '\'':
			j := strings.IndexAny(src[i+1:], "'\n")
			if j < 0 || src[i+1+j] != '\'' {
				return nil, i, false
			}
			k, i = src[i+1:i+1+j], i+j+2
		case isBareKey(c):
			j := i
			for j < len(src) && isBareKey(src[j]) {
				j++
			}
			k, i = src[i:j], j
		default:
			return nil, i, false
		}
		keys = append(keys, k)
		for i < len(src) && (src[i] == ' ' || src[i] == '\t') {
			i++
		}
		if i < len(src) && src[i] == '.' {
			if len(keys) >= maxTOMLDots {
				return nil, i, false
			}
			i++
			continue
		}
		return keys, i, true
	}
}

func isBareKey(c byte) bool { return isWord(c) || c == '-' }

// skipTOMLString returns the index after the string starting at src[i],
// counting newlines in multi-line strings.
func skipTOMLString(src string, i int, line *int) int {
	q := src[i]
	if strings.HasPrefix(src[i:], string([]byte{q, q, q})) {
		j := i + 3
		for j < len(src) {
			if src[j] == '\n' {
				*line++
			}
			if q == '"' && src[j] == '\\' {
				if j+1 < len(src) && src[j+1] == '\n' {
					*line++
				}
				j += 2
				continue
			}
			if strings.HasPrefix(src[j:], string([]byte{q, q, q})) {
				j += 3
				for j < len(src) && src[j] == q { // up to two more quotes belong to the string
					j++
				}
				return j
			}
			j++
		}
		return j
	}
	j := i + 1
	for j < len(src) && src[j] != q && src[j] != '\n' {
		if q == '"' && src[j] == '\\' {
			j++
		}
		j++
	}
	if j < len(src) && src[j] == q {
		j++
	}
	return j
}
