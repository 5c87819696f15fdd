package config

import (
	"net"
	"strings"
)

// Options configure an Interp and the loaders. The zero value works: no
// environment variables, Perlbal's plugins, the OS file system.
type Options struct {
	// Env looks up $NAME in Perlbal lines (nil: every variable is empty).
	// The package never reads the process environment itself.
	Env func(name string) string
	// Plugins looks up a plugin by name for LOAD (nil: DefaultPlugins).
	Plugins func(name string) (Plugin, bool)
	// PluginNames lists the plugins Plugins finds, for the error of a LOAD
	// that names none of them (nil: those of DefaultPluginNames that
	// Plugins finds).
	PluginNames func() []string
	// Warn receives what a load accepts but reports, each a *Error with
	// its file:line: nodefile lines without a node (nil: not reported).
	Warn func(error)
	// FS checks paths and reads nodefiles and INCLUDEd files (nil: OSFS).
	FS FS
	// InterfaceAddr resolves ${ip:IFACE} (nil: the interface's first IPv4
	// address from the net package).
	InterfaceAddr func(iface string) (string, error)
	// Running marks an interpreter used at run time: SERVER pidfile is
	// refused, as in Perlbal after start-up.
	Running bool
	// Verbose is the initial VERBOSE state (Perlbal: on for management
	// connections, off for config files).
	Verbose bool
	// Fallback runs the commands that are not configuration commands when
	// loading a Perlbal file (nil: they fail with "unknown command: <cmd>").
	Fallback func(line string) ([]string, error)
}

func (o *Options) fill() {
	if o.Plugins == nil {
		o.Plugins = DefaultPlugins
	}
	if o.FS == nil {
		o.FS = OSFS{}
	}
	if o.InterfaceAddr == nil {
		o.InterfaceAddr = interfaceAddr
	}
}

// maxIncludeDepth bounds INCLUDE nesting (a file including itself).
const maxIncludeDepth = 16

// Interp executes Perlbal configuration commands against a Config. It holds
// one connection's context (the service or pool last created or USEd, and
// VERBOSE), as Perlbal's CommandContext: the management console makes one
// per connection, a config file gets its own. It has no side effects beyond
// the model and reading files: ENABLE only sets Enabled, and the runtime
// reconciles. Not safe for concurrent use.
type Interp struct {
	ed      editor
	opts    Options
	context string // last created or USEd service or pool
	verbose bool
	depth   int    // INCLUDE nesting
	file    string // file being run, for Service.File and Pool.File
	lineNo  int    // line being run, for Service.Line and Pool.Line
}

// NewInterp returns an interpreter editing c.
func NewInterp(c *Config, o Options) *Interp {
	o.fill()
	return &Interp{ed: newEditor(c, o), opts: o, verbose: o.Verbose}
}

// Config returns the configuration being edited.
func (in *Interp) Config() *Config { return in.ed.cfg }

// SetConfig makes the interpreter edit c from now on, keeping its context
// (the console edits a fresh clone of the live snapshot per command).
func (in *Interp) SetConfig(c *Config) { in.ed.cfg = c }

// Context returns the name of the service or pool last created or USEd.
func (in *Interp) Context() string { return in.context }

// Verbose reports the VERBOSE state: whether the console should answer OK
// to a successful command.
func (in *Interp) Verbose() bool { return in.verbose }

// Exec runs one command line with Perlbal's line processing and returns its
// output lines (without the OK; nil for most commands). An error's text is
// Perlbal's message, to be shown as "ERROR: <text>". A command word that is
// not a configuration command gives ErrNotConfigCommand.
func (in *Interp) Exec(line string) ([]string, error) {
	cmd, orig, err := in.prepare(line)
	if err != nil || cmd == "" {
		return nil, err
	}
	base := cmd
	for i := 0; i < len(cmd); i++ {
		if !isWord(cmd[i]) {
			base = cmd[:i]
			break
		}
	}
	if base == "" {
		return nil, errorf("invalid command")
	}
	switch base {
	case "create":
		return nil, in.create(cmd)
	case "use":
		return nil, in.use(cmd)
	case "set":
		return nil, in.set(cmd)
	case "default":
		return nil, in.defaultCmd(cmd)
	case "pool":
		return nil, in.pool(cmd)
	case "enable", "disable":
		return nil, in.enable(cmd)
	case "header":
		return nil, in.header(cmd)
	case "load":
		return nil, in.load(cmd, orig)
	case "unload":
		return nil, in.unload(cmd)
	case "reload":
		return nil, in.reload(cmd)
	case "server":
		return nil, in.server(cmd)
	case "verbose":
		return nil, in.verboseCmd(cmd)
	}
	if in.pluginCommand(base) {
		switch base {
		case "vhost", "vpath":
			return nil, in.vhost(base, cmd)
		case "access":
			return nil, in.access(cmd)
		case "redirect":
			return nil, in.redirect(cmd)
		case "include":
			return in.include(cmd)
		case "throttle":
			return nil, in.throttle(cmd)
		}
	}
	return nil, ErrNotConfigCommand
}

// pluginCommand reports whether a LOADed plugin adds command word base.
func (in *Interp) pluginCommand(base string) bool {
	for _, name := range in.ed.cfg.Loaded {
		if pl, ok := in.ed.plugins(name); ok {
			for _, c := range pl.Commands {
				if c == base {
					return true
				}
			}
		}
	}
	return false
}

// prepare is Perlbal's line processing: drop from the first "#", trim,
// collapse whitespace, expand ${ip:IFACE} and $NAME, and lower-case
// everything before the first "=". orig is the text before expansion and
// lower-casing (LOAD uses it). An empty cmd is a no-op.
func (in *Interp) prepare(line string) (cmd, orig string, err error) {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	line = collapseSpace(line)
	orig = line
	if strings.Contains(line, "$") {
		line, err = in.expand(line)
		if err != nil {
			return "", "", err
		}
	}
	if eq := strings.IndexByte(line, '='); eq >= 0 {
		line = toLowerASCII(line[:eq]) + line[eq:]
	} else {
		line = toLowerASCII(line)
	}
	if line == "" || isSpace(line[0]) {
		return "", orig, nil
	}
	return line, orig, nil
}

// collapseSpace trims s and turns every run of whitespace into one space.
func collapseSpace(s string) string {
	s = trimSpace(s)
	clean := true
	for i := 0; i < len(s); i++ {
		if isSpace(s[i]) && (s[i] != ' ' || i > 0 && s[i-1] == ' ') {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for i := 0; i < len(s); i++ {
		if isSpace(s[i]) {
			space = true
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// expand replaces ${type:arg} (only ${ip:IFACE}), then $NAME (unset: empty).
func (in *Interp) expand(s string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 || i+3 > len(s) {
			break
		}
		j := strings.IndexByte(s[i+3:], '}')
		if j < 0 {
			break
		}
		j += i + 3
		v, err := in.expandVar(s[i+2 : j])
		if err != nil {
			return "", err
		}
		b.WriteString(s[:i])
		b.WriteString(v)
		s = s[j+1:]
	}
	b.WriteString(s)
	s = b.String()
	b.Reset()
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			break
		}
		j := i + 1
		for j < len(s) && isWord(s[j]) {
			j++
		}
		b.WriteString(s[:i])
		if j == i+1 {
			b.WriteByte('$')
		} else if in.opts.Env != nil {
			b.WriteString(in.opts.Env(s[i+1 : j]))
		}
		s = s[j:]
	}
	b.WriteString(s)
	return b.String(), nil
}

func (in *Interp) expandVar(v string) (string, error) {
	colon := strings.IndexByte(v, ':')
	if colon <= 0 || colon == len(v)-1 || !isWordString(v[:colon]) {
		return "", errorf("Unknown config variable: %s", v)
	}
	typ, arg := v[:colon], v[colon+1:]
	if typ != "ip" {
		return "", errorf("Unknown config variable type: %s", typ)
	}
	if !isWordString(arg) {
		return "", errorf("Bogus-looking iface name")
	}
	ip, err := in.opts.InterfaceAddr(arg)
	if err != nil || ip == "" {
		return "", errorf("Can't find IP of interface '%s'", arg)
	}
	return ip, nil
}

// interfaceAddr returns the first IPv4 address of an interface.
func interfaceAddr(name string) (string, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return "", err
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.String(), nil
		}
	}
	return "", errorf("no IPv4 address")
}

// usage is the error of a command whose arguments do not parse.
func usage(text, base string) error {
	if text == "" {
		return errorf("Invalid syntax to '%s' command", base)
	}
	return errorf("%s", text)
}

// words splits cmd on single spaces, as Perlbal's regexes with literal
// spaces do (a tab or double space from an expanded variable fails them).
func words(cmd string) []string { return strings.Split(cmd, " ") }

// fields splits on runs of whitespace, as \s+.
func fields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r < 0x80 && isSpace(byte(r)) })
}
