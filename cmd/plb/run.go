package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/plb/plb/chroot"
	"github.com/plb/plb/config"
	"github.com/plb/plb/etc"
	"github.com/plb/plb/internal/version"
	"github.com/plb/plb/server"
)

const usage = `usage: plb [options]
  -c, --config FILE    configuration file: TOML, Perlbal or PLB syntax
                       (default /etc/plb.conf, else the embedded demo)
  -B, --daemonize      run in the background (also --daemon)
  -d, --loglevel N     0 debug, 1 info, 2 warnings (default), 3 errors only
  -l, --logfile FILE   log to FILE instead of stderr
  -p, --pidfile FILE   write the process id to FILE
  -n                   check the configuration as a start would, short of
                       binding ports (chroot_dir, user, group, files,
                       certificates), print it normalized, exit
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
//
// Start-up order (DESIGN.md section 7): parse and validate the
// configuration; with chroot_dir, check that every path it uses is inside
// the jail; open the log; raise RLIMIT_NOFILE; resolve user and group (while
// /etc is reachable); adopt the sockets systemd passed, if any; bind the
// listeners (as root for ports below 1024); write the pidfile; chroot and
// drop privileges; re-apply the configuration with its paths as seen in
// the jail; report readiness (to a -B parent and to systemd); serve.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parseFlags(args, stderr)
	switch {
	case errors.Is(err, errHelp):
		fmt.Fprint(stdout, usage)
		return 0
	case errors.Is(err, errVersion):
		fmt.Fprintf(stdout, "plb %s (%s)\n", version.Version, version.Compatible)
		return 0
	case err != nil:
		fmt.Fprint(stderr, usage)
		return 2
	}
	cfgPath := configPath(f.config)
	// Warnings (nodefile lines without a node) wait for the log.
	var warnings []error
	cfg, err := loadConfigFS(cfgPath, config.OSFS{}, func(err error) { warnings = append(warnings, err) })
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		printErrors(stderr, "", err)
		tellStarter(err)
		return 1
	}
	if f.check {
		printErrors(stderr, "warning: ", warnings...)
		if err := preflight(cfg); err != nil {
			printErrors(stderr, "", err)
			return 1
		}
		stdout.Write(cfg.MarshalTOML())
		return 0
	}
	if f.daemon && os.Getenv(envDaemonized) == "" {
		return daemonize(args, stderr)
	}
	os.Unsetenv(envDaemonized)
	// The path plb was started from, for a binary upgrade (SIGUSR2): the
	// new binary is found there, the running one may be gone by then.
	p := &process{f: f, cfgPath: cfgPath, cfg: cfg, st: &startup{stderr: stderr}, self: selfPath(), from: upgradedFrom()}
	return p.serve(ctx, warnings, stderr)
}

// process is a running plb (after the flags, the configuration check and
// daemonizing): its start-up, logs, server and signals.
type process struct {
	f       flags
	cfgPath string // the file a reload reads ("" for the demo)
	cfg     *config.Config
	st      *startup
	notify  *notifier
	log     *slog.Logger
	lvl     slog.LevelVar // a reload may change log_level
	lf      *logFile      // nil: logging to stderr
	logfile string
	jl      *jailLoader // nil without chroot_dir
	srv     *server.Server
	// self is the path plb was started from; from the old process's pid
	// when this one is a binary upgrade's new one (0: not); upgrading: a
	// SIGUSR2 upgrade is in progress (upgrade.go).
	self      string
	from      int
	upMu      sync.Mutex
	upgrading bool
	pf        *pidFile // the pidfile written (nil: none)
}

// serve starts plb, tells the parent (-B) and systemd it is ready, and
// runs until ctx ends or a signal stops it. Its exit code is run's.
func (p *process) serve(ctx context.Context, warnings []error, stderr io.Writer) int {
	var err error
	p.st.ready, err = readyPipe()
	if err != nil {
		return p.st.fail(err)
	}
	// Signals are queued from now on: a HUP or USR1 during start-up must
	// not kill plb (their default action); they are handled once it runs.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE)
	defer signal.Stop(sigs)
	notify, notifyErr := newNotifier()
	p.notify, p.st.notify = notify, notify // a failed start says why (startup.fail)
	defer notify.close()

	if jail := p.cfg.Global.Chroot; jail != "" {
		if err := chroot.CheckPaths(jail, jailPaths(p.cfg)); err != nil {
			return p.st.fail(fmt.Errorf("chroot_dir: %w", err))
		}
	}
	if err := p.openLog(stderr); err != nil {
		return p.st.fail(fmt.Errorf("log file: %w", err))
	}
	defer p.lf.Close()
	for _, w := range warnings {
		p.warn(w)
	}
	if notifyErr != nil {
		p.log.Warn("systemd notification socket unusable", "err", notifyErr)
	}
	pf, err := p.start()
	if err != nil {
		return p.st.fail(err)
	}
	p.pf = pf
	defer pf.remove(p.log)
	if path := os.Getenv("PLB_CPUPROFILE"); path != "" {
		// For profiling benchmarks: a CPU profile written at exit.
		if pf, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(pf)
			defer func() { pprof.StopCPUProfile(); pf.Close() }()
		}
	}
	if path := os.Getenv("PLB_MEMPROFILE"); path != "" {
		// For profiling benchmarks: what was allocated, written at exit.
		runtime.MemProfileRate = 4096
		defer func() {
			if pf, err := os.Create(path); err == nil {
				pprof.Lookup("allocs").WriteTo(pf, 0)
				pf.Close()
			}
		}()
	}
	p.log.Info("plb running", "version", version.Version, "config", p.cfg.File, "workers", len(p.srv.Engine().Loops()), "pid", os.Getpid())
	p.st.ok()
	notify.send(fmt.Sprintf("READY=1\nSTATUS=serving\nMAINPID=%d", os.Getpid()))
	go func() {
		for sig := range sigs {
			p.signal(sig)
		}
	}()
	err = p.srv.Run(ctx)
	notify.stopping()
	if err != nil {
		p.log.Error("stopped", "err", err)
		return 1
	}
	p.log.Info("plb stopped")
	return 0
}

// openLog opens the log: -l or log_file, else stderr; the level from -d,
// where a log_level in the file wins (PLB's).
func (p *process) openLog(stderr io.Writer) error {
	p.logfile = p.f.logfile
	if p.logfile == "" {
		p.logfile = p.cfg.Global.LogFile
	}
	out := stderr
	if p.logfile != "" {
		lf, err := openLogFile(p.logfile, p.f.daemon)
		if err != nil {
			return err
		}
		p.lf, out = lf, lf
	}
	level := 2
	if p.f.loglevel >= 0 {
		level = p.f.loglevel
	}
	if p.cfg.Global.LogLevel >= 0 {
		level = p.cfg.Global.LogLevel
	}
	p.lvl.Set(slogLevel(level))
	p.log = slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: &p.lvl}))
	return nil
}

// warn logs a configuration warning (a nodefile line without a node).
func (p *process) warn(err error) { p.log.Warn("configuration: " + err.Error()) }

// start does what must succeed before plb says it runs, in this order:
// the descriptor limit, the user and group looked up (before a chroot
// hides /etc/passwd), the server built and the configuration applied
// (listeners bound, as root for low ports), the pidfile written, then
// privileges dropped and, in a chroot, the configuration applied again as
// seen from inside. On error the engine is stopped.
func (p *process) start() (*pidFile, error) {
	cfg, log := p.cfg, p.log
	if err := raiseNoFile(cfg, log); err != nil {
		return nil, err
	}
	jail := cfg.Global.Chroot
	drop := cfg.Global.User != "" || cfg.Global.Group != "" || jail != ""
	if drop && p.from != 0 && os.Geteuid() != 0 {
		// A binary upgrade's new process: the old one dropped them, and
		// this one was born without.
		log.Info("privileges already dropped by the process upgraded from", "pid", p.from, "uid", os.Getuid())
		drop = false
	}
	var creds chroot.Creds
	if drop {
		var err error
		if creds, err = resolveCreds(cfg); err != nil {
			return nil, err
		}
	}
	inherited := inheritListeners(log)
	load := func(path string) (*config.Config, error) { return loadConfigFS(path, config.OSFS{}, p.warn) }
	if jail != "" {
		p.jl = newJailLoader(jail, p.warn)
		load = p.jl.load
		if p.cfgPath != "" {
			if _, err := p.jl.rebase(p.cfgPath); err != nil {
				log.Warn("the configuration file is outside chroot_dir: SIGHUP reload will fail (restart instead)",
					"config", p.cfgPath, "chroot_dir", jail)
			}
		}
	}
	srv, err := server.New(cfg, server.Options{Logger: log, Load: load, Inherited: inherited})
	if err != nil {
		return nil, err
	}
	p.srv = srv
	if err := srv.Apply(cfg); err != nil {
		srv.Engine().Stop()
		return nil, err
	}
	for _, is := range inherited {
		switch {
		case is.Used():
		case p.from != 0:
			// The old process's socket of a service the file no longer
			// has: closed, so that its clients are refused rather than
			// left waiting.
			log.Info("socket handed over by the upgrade matches no service: closed", "addr", is.Addr.String())
			is.Close()
		default:
			log.Warn("inherited socket matches no service's listen address: its clients wait unanswered",
				"addr", is.Addr.String(), "fd", is.FD, "name", is.Name)
		}
	}
	pf, err := p.pidfile()
	if err == nil && drop {
		err = p.drop(creds, pf)
	}
	if err != nil {
		pf.remove(log)
		srv.Engine().Stop()
		return nil, err
	}
	return pf, nil
}

// pidfile writes -p, pid_file, or with -B the default (nil: none).
func (p *process) pidfile() (*pidFile, error) {
	path := p.f.pidfile
	if path == "" {
		path = p.cfg.Global.PidFile
	}
	if path == "" && p.f.daemon {
		path = defaultPidfile
	}
	if path == "" {
		return nil, nil
	}
	return writePidfile(path, p.log, p.from)
}

// drop drops privileges to creds and, with chroot_dir, applies the
// configuration again as seen from inside the jail, where the pidfile and
// the log file are then found too.
func (p *process) drop(creds chroot.Creds, pf *pidFile) error {
	if err := chroot.Drop(creds); err != nil {
		return fmt.Errorf("dropping privileges: %w", err)
	}
	jail := p.cfg.Global.Chroot
	if jail != "" {
		// What plb opens from now on is seen from inside the jail.
		jailed, err := p.jl.rebaseConfig(p.cfg)
		if err == nil {
			err = p.srv.Apply(jailed)
		}
		if err != nil {
			return fmt.Errorf("chroot_dir: %w", err)
		}
		pf.jail(p.jl, p.log)
		p.lf.jail(p.jl, p.log)
	}
	p.log.Info("privileges dropped", "uid", os.Getuid(), "gid", os.Getgid(), "chroot_dir", jail)
	return nil
}

// signal handles one signal while plb runs: TERM drains, INT stops, HUP
// reloads the configuration, USR1 reopens the logs, USR2 upgrades the
// binary (upgrade.go; SIGPIPE is ignored).
func (p *process) signal(sig os.Signal) {
	log, srv, notify := p.log, p.srv, p.notify
	switch sig {
	case syscall.SIGTERM:
		log.Info("SIGTERM: draining")
		notify.stopping()
		srv.Shutdown(true)
	case syscall.SIGINT:
		log.Info("SIGINT: stopping")
		notify.stopping()
		srv.Shutdown(false)
	case syscall.SIGHUP:
		log.Info("SIGHUP: reloading", "config", p.cfgPath)
		notify.send(fmt.Sprintf("RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=%d", monotonicUsec()))
		err := srv.Reload(p.cfgPath)
		if err == nil && srv.Config().Global.LogLevel >= 0 {
			p.lvl.Set(slogLevel(srv.Config().Global.LogLevel))
		}
		status := "STATUS=serving"
		if err != nil {
			status = "STATUS=serving; last reload failed: " + firstLine(err.Error())
		}
		notify.send("READY=1\n" + status)
	case syscall.SIGUSR2:
		p.upgrade()
	case syscall.SIGUSR1:
		if err := srv.ReopenLogs(); err != nil {
			log.Error("SIGUSR1: access logs not all reopened; those still write to the old files", "err", err)
		}
		if p.lf == nil {
			log.Info("SIGUSR1: no log file to reopen (logging to stderr)")
			return
		}
		if err := p.lf.Reopen(); err != nil {
			log.Error("SIGUSR1: log file not reopened; still writing to the old one", "file", p.logfile, "err", err)
			return
		}
		log.Info("log reopened", "file", p.logfile)
	}
}

// configPath is the file plb reads: path, else /etc/plb.conf if it exists,
// else "" (the embedded demo). It is resolved once, so that a reload reads
// the same file.
func configPath(path string) string {
	if path == "" {
		if _, err := os.Stat(defaultConfig); err == nil {
			return defaultConfig
		}
	}
	return path
}

const (
	defaultConfig  = "/etc/plb.conf"
	defaultPidfile = "/var/run/plb.pid" // with -B and no other pidfile (PLB's)
)

// loadConfigFS loads path through fsys, or the embedded demo when path is
// ""; warn gets what the file has that plb accepts but reports.
func loadConfigFS(path string, fsys config.FS, warn func(error)) (*config.Config, error) {
	if path == "" {
		return config.Parse("(embedded default)", etc.Default(), os.Getenv)
	}
	cfg, err := config.LoadWith(path, config.Options{Env: os.Getenv, FS: fsys, Warn: warn})
	if err != nil {
		return nil, err
	}
	if data, rerr := fsys.ReadFile(path); rerr == nil && config.Detect(data) == config.SyntaxPerlbal && cfg.Global.Workers == 0 {
		// A Perlbal file gets Perlbal's single event loop unless it asks
		// for more (SERVER workers = N): backend connection reuse and
		// request order then behave exactly as under Perlbal.
		cfg.Global.Workers = 1
	}
	return cfg, nil
}

// printErrors prints each line of each error as "plb: <prefix><line>":
// errors.Join puts one problem a line.
func printErrors(w io.Writer, prefix string, errs ...error) {
	for _, err := range errs {
		for line := range strings.SplitSeq(err.Error(), "\n") {
			fmt.Fprintf(w, "plb: %s%s\n", prefix, line)
		}
	}
}

// firstLine is s up to its first newline.
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
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
