package config

import (
	"errors"
	"fmt"
	"strings"
)

// Syntax is a configuration file syntax.
type Syntax int

// The three syntaxes.
const (
	SyntaxTOML    Syntax = iota // plb's own
	SyntaxPerlbal               // Perlbal's command language
	SyntaxPLB                   // Pure Load Balancer's key value lines
)

// String returns "toml", "perlbal" or "plb".
func (s Syntax) String() string {
	switch s {
	case SyntaxPerlbal:
		return "perlbal"
	case SyntaxPLB:
		return "plb"
	}
	return "toml"
}

// Detect decides a file's syntax from its first statement (the first line
// that is not blank or a comment): a Perlbal command word (CREATE, LOAD,
// SET, SERVER, ...) means Perlbal; "key value" with a PLB key means PLB;
// anything else is TOML.
func Detect(data []byte) Syntax {
	for line := range strings.SplitSeq(string(data), "\n") {
		line = trimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if line[0] == '[' {
			return SyntaxTOML
		}
		word := line
		if i := strings.IndexFunc(line, func(r rune) bool { return r == '=' || r < 0x80 && isSpace(byte(r)) }); i >= 0 {
			word = line[:i]
		}
		if isPerlbalCommand(toLowerASCII(word)) {
			return SyntaxPerlbal
		}
		if isPLBKey(word) && !strings.Contains(line, "=") {
			return SyntaxPLB
		}
		return SyntaxTOML
	}
	return SyntaxTOML
}

func isPerlbalCommand(w string) bool {
	switch w {
	case "create", "load", "set", "server", "use", "pool", "enable", "disable", "header",
		"default", "vhost", "vpath", "include", "access", "redirect", "unload", "reload",
		"verbose", "xs", "mime":
		return true
	}
	return false
}

// Load reads, parses and validates a configuration file in any of the three
// syntaxes (see Detect). env looks up $NAME in Perlbal files (nil: empty).
// Every error names file:line.
func Load(path string, env func(string) string) (*Config, error) {
	return LoadWith(path, Options{Env: env})
}

// LoadWith is Load with options.
func LoadWith(path string, o Options) (*Config, error) {
	o.fill()
	data, err := o.FS.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseWith(path, data, o)
}

// Parse parses and validates an in-memory configuration; name is used in
// error messages and as Config.File.
func Parse(name string, data []byte, env func(string) string) (*Config, error) {
	return ParseWith(name, data, Options{Env: env})
}

// ParseWith is Parse with options.
func ParseWith(name string, data []byte, o Options) (*Config, error) {
	o.fill()
	var (
		c   *Config
		err error
	)
	switch Detect(data) {
	case SyntaxPerlbal:
		c, err = parsePerlbal(name, data, o)
	case SyntaxPLB:
		c, err = parsePLB(name, data, o)
	default:
		c, err = parseTOML(name, data, o)
		if err != nil {
			err = plbAsTOMLHint(name, data, err)
		}
	}
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// plbAsTOMLHint explains a TOML error in a file written as PLB's
// "key value" lines with "=" between them ("listen_ip = 0.0.0.0"), which
// Detect reads as TOML: the error then points at the first such line and
// shows how PLB writes it.
func plbAsTOMLHint(name string, data []byte, err error) error {
	n := 0
	for line := range strings.SplitSeq(string(data), "\n") {
		n++
		line = trimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		key, val = trimSpace(key), trimSpace(val)
		if !ok || !isPLBKey(key) {
			return err
		}
		if i := strings.IndexByte(val, '#'); i >= 0 {
			val = trimSpace(val[:i])
		}
		val = strings.Trim(val, `"'`)
		return &Error{File: name, Line: n, Err: fmt.Errorf("PLB's syntax is 'key value', without '=': write '%s %s' (with '=', plb reads the file as TOML: %s)",
			key, val, tomlMessage(err))}
	}
	return err
}

// tomlMessage is err's message without its file:line.
func tomlMessage(err error) string {
	var ce *Error
	if errors.As(err, &ce) {
		return ce.Err.Error()
	}
	return err.Error()
}
