package config

import "strings"

// ParseNodeList parses a nodefile: "#" starts a comment, and each line
// contributes its first node, an IPv4 address "a.b.c.d[:port]" found
// anywhere in the line (as Perlbal) or an IPv6 one "[addr][:port]"; the
// port defaults to 80. Lines without a valid node are skipped. The result
// is in "ip:port" form; safe from any goroutine.
func ParseNodeList(data []byte) []string {
	var nodes []string
	for line := range strings.SplitSeq(string(data), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		if n, ok := findNode(line); ok {
			nodes = append(nodes, n)
		}
	}
	return nodes
}

// findNode returns the leftmost node in line.
func findNode(line string) (string, bool) {
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '[':
			end := strings.IndexByte(line[i:], ']')
			if end < 0 {
				return "", false
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
				return n, true
			}
		case isDigit(line[i]):
			if j, ok := matchIPv4Port(line, i); ok {
				n, ok := parseNode(line[i:j])
				return n, ok
			}
		}
	}
	return "", false
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
