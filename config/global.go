package config

import (
	"maps"
	"slices"
	"strings"
)

// setGlobal sets one global key: Perlbal's SERVER keys (reference/perlbal.md
// §1.5) plus plb's process keys (workers, shutdown_grace and PLB's user,
// group, chroot_dir, log_level, log_file, max_clients, backlog). SERVER and
// TOML's [global] share it.
func setGlobal(g *Global, key, val string) error {
	num := func(dst *int) error {
		n, ok := parseInt(val)
		if !ok {
			return errorf("Expected numeric parameter")
		}
		*dst = n
		return nil
	}
	switch key {
	case "workers":
		return num(&g.Workers)
	case "max_clients":
		return num(&g.MaxClients)
	case "backlog":
		return num(&g.Backlog)
	case "max_connections":
		return num(&g.MaxConnections)
	case "shutdown_grace":
		return num(&g.ShutdownGrace)
	case "log_level":
		switch val {
		case "0", "1", "2", "3":
			g.LogLevel = int(val[0] - '0')
			return nil
		}
		return errorf("log_level must be 0, 1, 2 or 3")
	case "log_file":
		g.LogFile = val
		return nil
	case "pidfile":
		if val == "" || val == "0" {
			return errorf("Expected full pathname to pidfile")
		}
		g.PidFile = val
		return nil
	case "user":
		g.User = val
		return nil
	case "group":
		g.Group = val
		return nil
	case "chroot_dir":
		g.Chroot = val
		return nil
	case "aio_mode":
		switch val {
		case "none":
			g.AIOMode = val
			return nil
		case "linux":
			return errorf("Linux::AIO no longer supported")
		case "ioaio":
			return errorf("IO::AIO not available")
		}
		return errorf("Unknown AIO mode")
	case "aio_threads", "nice_level":
		if _, ok := parseSignedInt(val); !ok {
			return errorf("Expected numeric parameter")
		}
	case "track_obj", "crash_backtrace":
		if val != "0" && val != "1" {
			return errorf("Expected 1 or 0")
		}
	default:
		if !isReproxyKey(key) {
			return errorf("unknown server option '%s'", val)
		}
		if _, ok := parseSignedInt(val); !ok {
			return errorf("Expected numeric parameter")
		}
	}
	if g.Extra == nil {
		g.Extra = make(map[string]string)
	}
	g.Extra[key] = val
	return nil
}

// Place is where a key was set: a file and a line (0: unknown).
type Place struct {
	File string
	Line int
}

// setPlace records where key was set.
func (g *Global) setPlace(key, file string, line int) {
	if g.Places == nil {
		g.Places = make(map[string]Place)
	}
	g.Places[key] = Place{File: file, Line: line}
}

// GlobalError places err at the line that set the global key, or at the
// configuration file when no line did (a default, or the console): a check
// made after parsing then reads "file:line: message" as a parse error does.
func (c *Config) GlobalError(key string, err error) error {
	if pl, ok := c.Global.Places[key]; ok {
		return c.at(pl.File, pl.Line, err)
	}
	return c.at("", 0, err)
}

// isReproxyKey matches max_reproxy_connections and
// max_reproxy_connections(<host:port>). Unlike Perlbal, whose per-host form
// sets the global cap, the per-host value is kept under its own key.
func isReproxyKey(key string) bool {
	const k = "max_reproxy_connections"
	if key == k {
		return true
	}
	rest, ok := strings.CutPrefix(key, k+"(")
	return ok && len(rest) > 1 && strings.HasSuffix(rest, ")")
}

// globalValues lists the non-default global settings in dump order.
func globalValues(g *Global) []kv {
	var out []kv
	str := func(k, v string) {
		if v != "" {
			out = append(out, kv{k, v})
		}
	}
	num := func(k string, v, def int) {
		if v != def {
			out = append(out, kv{k, int64(v)})
		}
	}
	num("workers", g.Workers, 0)
	if g.LogLevel >= 0 {
		out = append(out, kv{"log_level", int64(g.LogLevel)})
	}
	str("log_file", g.LogFile)
	str("pidfile", g.PidFile)
	str("user", g.User)
	str("group", g.Group)
	str("chroot_dir", g.Chroot)
	num("max_clients", g.MaxClients, 0)
	num("backlog", g.Backlog, 1024)
	num("max_connections", g.MaxConnections, 0)
	num("shutdown_grace", g.ShutdownGrace, 0)
	str("aio_mode", g.AIOMode)
	for _, k := range slices.Sorted(maps.Keys(g.Extra)) {
		out = append(out, kv{k, g.Extra[k]})
	}
	return out
}

// kv is one dumped key and value (bool, int64, string or []string).
type kv struct {
	key string
	val any
}
