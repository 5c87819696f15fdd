package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/plb/plb/config"
	"github.com/plb/plb/etc"
	"github.com/plb/plb/server"
)

// version is the plb release.
const version = "0.1.0"

const usage = `usage: plb [options]
  -c, --config FILE    configuration file: TOML, Perlbal or PLB syntax
                       (default /etc/plb.conf, else the embedded demo)
  -B, --daemonize      run in the background (also --daemon)
  -d, --loglevel N     0 debug, 1 info, 2 warnings (default), 3 errors only
  -l, --logfile FILE   log to FILE instead of stderr
  -p, --pidfile FILE   write the process id to FILE
  -n                   check the configuration, print it normalized, exit
  -h, --help           this help
  -v, --version        print the version
`

// flags are the parsed command line.
type flags struct {
	config, logfile, pidfile string
	loglevel                 int // -1: unset
	daemon, check            bool
}

var errUsage = errors.New("usage")

// parseFlags reads PLB's and Perlbal's switches: short ("-c FILE",
// "-cFILE"), long ("--config FILE", "--config=FILE").
func parseFlags(args []string, stderr io.Writer) (flags, error) {
	f := flags{loglevel: -1}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := a, "", false
		switch {
		case strings.HasPrefix(a, "--"):
			name = a[2:]
			if k := strings.IndexByte(name, '='); k >= 0 {
				name, val, hasVal = name[:k], name[k+1:], true
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			name = a[1:2]
			if len(a) > 2 {
				val, hasVal = a[2:], true
			}
		default:
			fmt.Fprintf(stderr, "plb: unexpected argument %q\n", a)
			return f, errUsage
		}
		needs := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) {
				fmt.Fprintf(stderr, "plb: %s needs a value\n", a)
				return "", errUsage
			}
			i++
			return args[i], nil
		}
		var err error
		switch name {
		case "c", "config":
			f.config, err = needs()
		case "l", "logfile":
			f.logfile, err = needs()
		case "p", "pidfile":
			f.pidfile, err = needs()
		case "d", "loglevel":
			var v string
			if v, err = needs(); err == nil {
				n, perr := strconv.Atoi(v)
				if perr != nil || n < 0 || n > 3 {
					fmt.Fprintf(stderr, "plb: log level must be 0..3, not %q\n", v)
					return f, errUsage
				}
				f.loglevel = n
			}
		case "B", "daemonize", "daemon":
			f.daemon = true
		case "n":
			f.check = true
		case "h", "help":
			return f, errHelp
		case "v", "version":
			return f, errVersion
		default:
			fmt.Fprintf(stderr, "plb: unknown option %q\n", a)
			return f, errUsage
		}
		if err != nil {
			return f, err
		}
	}
	return f, nil
}

var (
	errHelp    = errors.New("help")
	errVersion = errors.New("version")
)

// run is the whole program; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parseFlags(args, stderr)
	switch {
	case errors.Is(err, errHelp):
		fmt.Fprint(stdout, usage)
		return 0
	case errors.Is(err, errVersion):
		fmt.Fprintf(stdout, "plb %s (Perlbal 1.80 and PLB 0.3 compatible)\n", version)
		return 0
	case err != nil:
		fmt.Fprint(stderr, usage)
		return 2
	}
	cfg, err := loadConfig(f.config)
	if err != nil {
		fmt.Fprintf(stderr, "plb: %v\n", err)
		return 1
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "plb: %v\n", err)
		return 1
	}
	if f.check {
		stdout.Write(cfg.MarshalTOML())
		return 0
	}
	if f.daemon && os.Getenv("PLB_DAEMONIZED") == "" {
		return daemonize(stderr)
	}
	logfile := f.logfile
	if logfile == "" {
		logfile = cfg.Global.LogFile
	}
	logOut := stderr
	if logfile != "" {
		lf, err := os.OpenFile(logfile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			fmt.Fprintf(stderr, "plb: log file: %v\n", err)
			return 1
		}
		defer lf.Close()
		logOut = lf
	}
	level := 2
	if f.loglevel >= 0 {
		level = f.loglevel
	}
	if cfg.Global.LogLevel >= 0 {
		level = cfg.Global.LogLevel // PLB: a value in the file wins over -d
	}
	var lvl slog.LevelVar // a reload may change log_level
	lvl.Set(slogLevel(level))
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: &lvl}))

	srv, err := server.New(cfg, server.Options{Logger: log, Load: loadConfig})
	if err != nil {
		fmt.Fprintf(stderr, "plb: %v\n", err)
		return 1
	}
	if err := srv.Apply(cfg); err != nil {
		fmt.Fprintf(stderr, "plb: %v\n", err)
		srv.Engine().Stop()
		return 1
	}
	pidfile := f.pidfile
	if pidfile == "" {
		pidfile = cfg.Global.PidFile
	}
	if pidfile != "" {
		if err := os.WriteFile(pidfile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			fmt.Fprintf(stderr, "plb: pidfile: %v\n", err)
			srv.Engine().Stop()
			return 1
		}
		defer os.Remove(pidfile)
	}
	if path := os.Getenv("PLB_CPUPROFILE"); path != "" {
		// For profiling benchmarks: a CPU profile written at exit.
		if pf, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(pf)
			defer func() { pprof.StopCPUProfile(); pf.Close() }()
		}
	}
	log.Info("plb running", "version", version, "config", cfg.File, "workers", len(srv.Engine().Loops()))

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGPIPE)
	defer signal.Stop(sigs)
	go func() {
		for sig := range sigs {
			switch sig {
			case syscall.SIGTERM:
				log.Info("SIGTERM: draining")
				srv.Shutdown(true)
			case syscall.SIGINT:
				log.Info("SIGINT: stopping")
				srv.Shutdown(false)
			case syscall.SIGHUP:
				log.Info("SIGHUP: reloading", "config", f.config)
				if srv.Reload(f.config) == nil && srv.Config().Global.LogLevel >= 0 {
					lvl.Set(slogLevel(srv.Config().Global.LogLevel))
				}
			}
		}
	}()
	if err := srv.Run(ctx); err != nil {
		log.Error("stopped", "err", err)
		return 1
	}
	log.Info("plb stopped")
	return 0
}

// loadConfig loads path, /etc/plb.conf, or the embedded demo.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		if _, err := os.Stat("/etc/plb.conf"); err == nil {
			path = "/etc/plb.conf"
		} else {
			return config.Parse("(embedded default)", etc.Default(), os.Getenv)
		}
	}
	cfg, err := config.Load(path, os.Getenv)
	if err != nil {
		return nil, err
	}
	if data, rerr := os.ReadFile(path); rerr == nil && config.Detect(data) == config.SyntaxPerlbal && cfg.Global.Workers == 0 {
		// A Perlbal file gets Perlbal's single event loop unless it asks
		// for more (SERVER workers = N): backend connection reuse and
		// request order then behave exactly as under Perlbal.
		cfg.Global.Workers = 1
	}
	return cfg, nil
}

func slogLevel(plb int) slog.Level {
	switch plb {
	case 0:
		return slog.LevelDebug
	case 1:
		return slog.LevelInfo
	case 2:
		return slog.LevelWarn
	}
	return slog.LevelError
}

// daemonize re-executes plb detached from the terminal (Go cannot fork) and
// returns the parent's exit status.
func daemonize(stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "plb: daemonize: %v\n", err)
		return 1
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintf(stderr, "plb: daemonize: %v\n", err)
		return 1
	}
	defer null.Close()
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), "PLB_DAEMONIZED=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "plb: daemonize: %v\n", err)
		return 1
	}
	cmd.Process.Release()
	return 0
}
