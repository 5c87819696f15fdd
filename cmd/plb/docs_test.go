package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/plb/plb/config"
)

// The configuration examples in README.md and docs/*.md are fenced blocks
// whose info string names their syntax: ```toml, ```perlbal or ```plb
// (PLB's key value file). A block is a whole file, unless its info string
// also says "fragment" (```toml fragment): then it adds to the document's
// first whole block of the same syntax, its main example (TOML tables
// merged key by key, Perlbal and PLB lines appended), as the text around
// it says. Any other info string (sh, go, none) is not
// configuration; an untagged block that looks like a configuration fails
// the test, so that no example escapes it.

// docBlock is a fenced configuration block of a document.
type docBlock struct {
	file     string
	line     int    // of the opening fence
	syntax   string // toml, perlbal or plb
	fragment bool
	text     string
}

var fence = regexp.MustCompile("^\\s*```(.*)$")

// docBlocks returns the configuration blocks of a document, and a
// problem for each untagged block that looks like one.
func docBlocks(file string, data []byte) (out []docBlock, problems []string) {
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		m := fence.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		start := i
		var body []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, lines[i])
		}
		info := strings.Fields(m[1])
		text := strings.Join(body, "\n") + "\n"
		lang := ""
		if len(info) > 0 {
			lang = info[0]
		}
		switch lang {
		case "toml", "perlbal", "plb":
			b := docBlock{file: file, line: start + 1, syntax: lang, text: text}
			for _, w := range info[1:] {
				if w == "fragment" {
					b.fragment = true
				}
			}
			out = append(out, b)
		case "":
			if s := looksLikeConfig(text); s != "" {
				problems = append(problems, fmt.Sprintf("%s:%d: an untagged block that looks like a %s configuration: open it with ```%s (or ```%s fragment)",
					file, start+1, s, s, s))
			}
		}
	}
	return out, problems
}

var tomlTable = regexp.MustCompile(`^\[(global|defaults|pool\.|service\.)`)

// looksLikeConfig names the syntax an untagged block seems to be in, or
// "" for anything else (shell sessions, logs, diagrams).
func looksLikeConfig(text string) string {
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if tomlTable.MatchString(line) {
			return "toml"
		}
		break
	}
	switch config.Detect([]byte(text)) {
	case config.SyntaxPerlbal:
		return "perlbal"
	case config.SyntaxPLB:
		return "plb"
	}
	return ""
}

// TestDocsConfigBlocks loads every configuration block of README.md and
// docs/*.md the way plb -n loads a file (loadConfigFS, then Validate): the
// syntax must be detected as tagged, the file must load and validate
// without warnings, and no service may listen in Linux's ephemeral port
// range. The checks of the host that -n adds (users, chroot_dir, the
// files' contents) are left out: the examples name files of a machine
// that is not this one, so every path they name is taken as present.
func TestDocsConfigBlocks(t *testing.T) {
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{"../../README.md"}, files...)
	n := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		blocks, problems := docBlocks(file, data)
		for _, p := range problems {
			t.Error(p)
		}
		var whole []docBlock // the whole blocks so far: fragments add to the first
		for _, b := range blocks {
			n++
			name := fmt.Sprintf("%s:%d", strings.TrimPrefix(file, "../../"), b.line)
			text := b.text
			if b.fragment {
				base := firstOf(whole, b.syntax)
				if base == nil {
					t.Errorf("%s: a %s fragment with no whole %s block above it to add to", name, b.syntax, b.syntax)
					continue
				}
				text, err = mergeBlocks(b.syntax, base.text, b.text)
				if err != nil {
					t.Errorf("%s: %v", name, err)
					continue
				}
				name += fmt.Sprintf(" (added to the block at line %d)", base.line)
			} else {
				whole = append(whole, b)
			}
			if got := syntaxName(config.Detect([]byte(text))); got != b.syntax {
				t.Errorf("%s: tagged %s, but plb reads it as %s", name, b.syntax, got)
				continue
			}
			var warnings []error
			fsys := docFS{name: "block." + b.syntax, data: []byte(text)}
			c, err := loadConfigFS(fsys.name, fsys, func(err error) { warnings = append(warnings, err) })
			if err == nil {
				err = c.Validate()
			}
			if err == nil && len(warnings) > 0 {
				err = errors.Join(warnings...)
			}
			if err != nil {
				t.Errorf("%s: %v\n%s", name, err, numbered(text))
				continue
			}
			for _, s := range c.Services {
				if port := listenPort(s.Listen); s.Enabled && port >= 32768 && port <= 60999 {
					t.Errorf("%s: service %s listens on %s, inside Linux's ephemeral port range: use a port below 32768", name, s.Name, s.Listen)
				}
			}
		}
	}
	if n < 10 {
		t.Errorf("found only %d configuration blocks: has the tagging changed?", n)
	}
}

func syntaxName(s config.Syntax) string { return s.String() }

func firstOf(blocks []docBlock, syntax string) *docBlock {
	for i := range blocks {
		if blocks[i].syntax == syntax {
			return &blocks[i]
		}
	}
	return nil
}

// mergeBlocks adds a fragment to a whole block: TOML tables merge key by
// key (the fragment's values win), other syntaxes run their lines after
// the base's.
func mergeBlocks(syntax, base, frag string) (string, error) {
	if syntax != "toml" {
		return base + frag, nil
	}
	var a, b map[string]any
	if _, err := toml.Decode(base, &a); err != nil {
		return "", fmt.Errorf("base block: %v", err)
	}
	if _, err := toml.Decode(frag, &b); err != nil {
		return "", fmt.Errorf("fragment: %v", err)
	}
	merge(a, b)
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(a); err != nil {
		return "", err
	}
	return buf.String(), nil
}

func merge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

func numbered(text string) string {
	var b strings.Builder
	for i, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		fmt.Fprintf(&b, "%4d  %s\n", i+1, l)
	}
	return b.String()
}

func listenPort(listen string) int {
	i := strings.LastIndexByte(listen, ':')
	if i < 0 {
		return 0
	}
	n, _ := strconv.Atoi(listen[i+1:])
	return n
}

// docFS serves the block as the file name, and takes every other path an
// example names as present: a name with an extension (www.pem,
// nodes.txt) as an empty regular file, any other as a directory. Paths
// that exist here are what they are.
type docFS struct {
	name string
	data []byte
}

func (f docFS) Stat(name string) (fs.FileInfo, error) {
	if name == f.name {
		return docFile{name: name, size: int64(len(f.data))}, nil
	}
	if fi, err := os.Stat(name); err == nil {
		return fi, nil
	}
	return docFile{name: name, dir: filepath.Ext(name) == ""}, nil
}

func (f docFS) ReadFile(name string) ([]byte, error) {
	if name == f.name {
		return f.data, nil
	}
	if b, err := os.ReadFile(name); err == nil {
		return b, nil
	}
	return nil, nil
}

func (f docFS) Glob(pattern string) ([]string, error) { return filepath.Glob(pattern) }

// docFile is the file information of a path an example names.
type docFile struct {
	name string
	size int64
	dir  bool
}

func (d docFile) Name() string { return filepath.Base(d.name) }
func (d docFile) Size() int64  { return d.size }
func (d docFile) Mode() fs.FileMode {
	if d.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}
func (d docFile) ModTime() time.Time { return time.Time{} }
func (d docFile) IsDir() bool        { return d.dir }
func (d docFile) Sys() any           { return nil }

// TestDocBlocks: blocks are found by their info string, and an untagged
// block that looks like a configuration is reported.
func TestDocBlocks(t *testing.T) {
	doc := "# doc\n\n```toml\n[global]\nworkers = 1\n```\n\n```toml fragment\n[global]\n```\n\n" +
		"```sh\nplb -n\n```\n\n```\nCREATE SERVICE a\n```\n\n```\n# c\n[service.x]\n```\n\n```\nlevel=WARN msg=x\n```\n" +
		"  ```perlbal\n  LOAD vhosts\n  ```\n"
	blocks, problems := docBlocks("d.md", []byte(doc))
	var got []string
	for _, b := range blocks {
		got = append(got, fmt.Sprintf("%d %s %v %q", b.line, b.syntax, b.fragment, b.text))
	}
	want := []string{`3 toml false "[global]\nworkers = 1\n"`, `8 toml true "[global]\n"`, `28 perlbal false "  LOAD vhosts\n"`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("blocks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(problems) != 2 || !strings.HasPrefix(problems[0], "d.md:16: ") || !strings.Contains(problems[0], "```perlbal") ||
		!strings.HasPrefix(problems[1], "d.md:20: ") || !strings.Contains(problems[1], "```toml") {
		t.Errorf("problems: %q", problems)
	}
}
