package config

import (
	"errors"
	"strings"
)

// LoadPerlbal reads a Perlbal configuration file: every line runs through
// the interpreter (with a fresh context), and the first failing line stops
// the load with "file:line: <Perlbal's message>". env looks up $NAME (nil:
// empty). The result is not validated; Load does that.
func LoadPerlbal(path string, env func(string) string) (*Config, error) {
	return LoadPerlbalWith(path, Options{Env: env})
}

// LoadPerlbalWith is LoadPerlbal with options.
func LoadPerlbalWith(path string, o Options) (*Config, error) {
	o.fill()
	data, err := o.FS.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parsePerlbal(path, data, o)
}

func parsePerlbal(name string, data []byte, o Options) (*Config, error) {
	c := New()
	c.File = name
	in := NewInterp(c, o)
	in.file = name
	if _, err := in.run(data); err != nil {
		return nil, err
	}
	return c, nil
}

// run executes the lines of a file. Commands that are not configuration
// commands go to Options.Fallback, else fail as Perlbal's unknown command.
func (in *Interp) run(data []byte) ([]string, error) {
	var out []string
	n := 0
	for line := range strings.SplitSeq(string(data), "\n") {
		n++
		in.lineNo = n
		o, err := in.Exec(line)
		if errors.Is(err, ErrNotConfigCommand) {
			if in.opts.Fallback != nil {
				o, err = in.opts.Fallback(line)
			} else {
				cmd, _, _ := in.prepare(line)
				err = errorf("unknown command: %s", commandWord(cmd))
			}
		}
		out = append(out, o...)
		if err != nil {
			return out, at(in.file, n, err)
		}
	}
	in.lineNo = 0
	return out, nil
}

func commandWord(cmd string) string {
	for i := 0; i < len(cmd); i++ {
		if !isWord(cmd[i]) {
			return cmd[:i]
		}
	}
	return cmd
}
