package config

import (
	"errors"
	"io/fs"
	"strconv"
	"strings"

	"github.com/plb/plb/pool"
)

// ParseNodeList parses a nodefile: "#" starts a comment, and each line
// contributes its first node, an IPv4 address "a.b.c.d[:port]" found
// anywhere in the line (as Perlbal) or an IPv6 one "[addr][:port]"; the
// port defaults to 80; a word "weight=N" after the node gives its weight
// (plb's). Lines without a valid node are skipped (ParseNodeFile reports
// them). The result is in "ip:port[ weight=N]" form (parseNodeSpec); safe
// from any goroutine.
func ParseNodeList(data []byte) []string {
	nodes, _ := ParseNodeFile("", data)
	return nodes
}

// ParseNodeFile is ParseNodeList that also returns an *Error naming
// name:line for each line that is neither blank nor a comment and holds no
// valid node. Perlbal drops such lines silently; a typo then removes a
// node without a word. Safe from any goroutine.
func ParseNodeFile(name string, data []byte) (nodes []string, bad []error) {
	line := 0
	for text := range strings.SplitSeq(string(data), "\n") {
		line++
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		if n, end, ok := findNode(text); ok {
			spec, err := nodeWeight(n, text[end:])
			if err != nil {
				bad = append(bad, &Error{File: name, Line: line, Err: err})
			}
			nodes = append(nodes, spec)
			if end < len(text) && runsOn(text[end]) {
				// "10.0.0.2:8O": Perlbal reads 10.0.0.2:8; so does plb, but
				// says so.
				bad = append(bad, &Error{File: name, Line: line,
					Err: errorf("%q read as node %s: the address runs into %q", shorten(trimSpace(text), 60), n, text[end:end+1])})
			}
			continue
		}
		if text = trimSpace(text); text != "" {
			bad = append(bad, &Error{File: name, Line: line,
				Err: errorf("no node in %q, line ignored (a line holds ip[:port], e.g. 10.0.0.1:8080 or [2001:db8::1]:80)", shorten(text, 60))})
		}
	}
	return nodes, bad
}

// nodeWeight returns node's spec (parseNodeSpec) from the rest of its
// nodefile line: "weight=N" among the words after the node gives it a
// weight; a weight that does not parse is an error, and the node keeps
// weight 1 (Perlbal, which has no weights, reads the node alone).
func nodeWeight(node, rest string) (string, error) {
	for _, f := range strings.Fields(rest) {
		if !strings.HasPrefix(f, "weight=") {
			continue
		}
		w, ok := parseWeight(f)
		if !ok {
			return node, errorf("%q: weight must be 0 to %d, node %s kept with weight 1", f, pool.MaxWeight, node)
		}
		if w != 1 {
			node += " weight=" + strconv.Itoa(w)
		}
		return node, nil
	}
	return node, nil
}

// errNodefileMissing is SET nodefile's error for a file that cannot be
// found. Perlbal's message is "File not found", which does not say which.
func errNodefileMissing(name string, err error) error {
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return errorf("nodefile '%s' not found", name)
	}
	return errorf("nodefile '%s': %s", name, errnoText(err))
}

// findNode returns the leftmost node in line and where it ends.
func findNode(line string) (string, int, bool) {
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '[':
			end := strings.IndexByte(line[i:], ']')
			if end < 0 {
				return "", 0, false
			}
			j := i + end + 1
			if j < len(line) && line[j] == ':' {
				k := j + 1
				for k < len(line) && isDigit(line[k]) {
					k++
				}
				if k > j+1 {
					j = k
				}
			}
			if n, ok := parseNode(line[i:j]); ok {
				return n, j, true
			}
		case isDigit(line[i]):
			if j, ok := matchIPv4Port(line, i); ok {
				n, ok := parseNode(line[i:j])
				return n, j, ok
			}
		}
	}
	return "", 0, false
}

// matchIPv4Port matches \d+\.\d+\.\d+\.\d+(?::\d+)? at line[i:] and
// returns its end.
func matchIPv4Port(line string, i int) (int, bool) {
	j := i
	for part := 0; part < 4; part++ {
		if part > 0 {
			if j >= len(line) || line[j] != '.' {
				return 0, false
			}
			j++
		}
		k := j
		for k < len(line) && isDigit(line[k]) {
			k++
		}
		if k == j {
			return 0, false
		}
		j = k
	}
	if j < len(line) && line[j] == ':' {
		k := j + 1
		for k < len(line) && isDigit(line[k]) {
			k++
		}
		if k > j+1 {
			j = k
		}
	}
	return j, true
}

// shorten cuts s to at most n bytes, marking the cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// runsOn reports whether b, right after a node, makes the node look like a
// piece of something longer (a letter, a digit, '.' or ':').
func runsOn(b byte) bool {
	return isDigit(b) || b == '.' || b == ':' || 'a' <= b|0x20 && b|0x20 <= 'z'
}
