package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"runtime/trace"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/backup-runner/runner/internal/logging"
	"github.com/backup-runner/runner/internal/priority"
	"github.com/backup-runner/runner/runner"
)

// Exit codes, as documented in the README.
const (
	exitOK          = 0
	exitError       = 1 // a configuration or runner error
	exitChanges     = 2 // plan -detailed-exitcode: there is something to do; fmt -check: files need formatting
	exitJobsFailed  = 3 // apply: some jobs failed
	exitUsage       = 1 // a mistake on the command line
	versionUnknown  = "(devel)"
	defaultLogLevel = "warn"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = versionUnknown

// exitError carries an exit code through a command's error return.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

// silentExit ends the command with code and prints nothing more.
func silentExit(code int) error { return &exitCodeError{code: code} }

// usageError is a mistake in the command line.
func usageError(format string, args ...any) error {
	return &exitCodeError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// command is one subcommand. run gets the parsed globals and the remaining
// positional arguments.
type command struct {
	name   string
	args   string
	short  string
	long   string
	hidden bool
	flags  func(fs *flag.FlagSet)
	run    func(ctx context.Context, g *globals, args []string) error
}

var commands []*command

func register(c *command) { commands = append(commands, c) }

func findCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// globals are the options every command accepts, before or after its name.
type globals struct {
	dir       string
	vars      stringList
	varFiles  stringList
	json      bool
	verbose   bool
	logLevel  string
	logFormat string
	noColor   bool
	nice      int

	stdout, stderr io.Writer
	log            *slog.Logger
	// now is the clock: the system's, or RUNNER_NOW's.
	now func() time.Time
}

func (g *globals) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&g.dir, "C", defaultConfigDir(), "configuration `directory` (all its *.hcl files)")
	fs.Var(&g.vars, "var", "set a variable: -var `NAME=VALUE` (repeatable)")
	fs.Var(&g.varFiles, "var-file", "read variables from an HCL `file` (repeatable)")
	fs.BoolVar(&g.json, "json", false, "print machine-readable JSON")
	fs.BoolVar(&g.verbose, "v", false, "verbose: log at info level (same as --log-level info)")
	fs.StringVar(&g.logLevel, "log-level", "", "log `level`: debug, info, warn, error (default warn)")
	fs.StringVar(&g.logFormat, "log-format", "", "log `format`: text or json (default: text on a terminal, json otherwise)")
	fs.BoolVar(&g.noColor, "no-color", false, "no colors in logs and diagnostics")
	fs.IntVar(&g.nice, "nice", priority.Default, "run (and start plugins) at nice `value` N or lower priority, 0 to leave it as it is")
}

func defaultConfigDir() string {
	if d := os.Getenv("RUNNER_CONFIG_DIR"); d != "" {
		return d
	}
	return "/etc/runner"
}

func (g *globals) setupLog() error {
	level := g.logLevel
	if level == "" {
		level = defaultLogLevel
		if g.verbose {
			level = "info"
		}
	}
	lv, err := logging.ParseLevel(level)
	if err != nil {
		return usageError("%v", err)
	}
	l, err := logging.New(g.stderr, logging.Options{Level: lv, Format: g.logFormat, NoColor: g.noColor})
	if err != nil {
		return usageError("%v", err)
	}
	g.log = l
	return nil
}

// count says "1 file" or "3 files".
func count[N int | int64 | uint64](n N, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// progress says whether to draw progress lines: on a terminal, not -json.
func (g *globals) progress() bool {
	return !g.json && logging.IsTerminal(g.stderr)
}

func (g *globals) color() bool {
	return !g.noColor && os.Getenv("NO_COLOR") == "" && logging.IsTerminal(g.stderr)
}

// Main runs the command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	pre := flag.NewFlagSet("runner", flag.ContinueOnError)
	pre.SetOutput(io.Discard)
	g.addFlags(pre)
	if err := pre.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout)
			return exitOK
		}
		fmt.Fprintf(stderr, "runner: %v\n", err)
		printUsage(stderr)
		return exitUsage
	}
	rest := pre.Args()
	if len(rest) == 0 {
		printUsage(stderr)
		return exitUsage
	}
	if rest[0] == "help" {
		if len(rest) > 1 {
			if c := findCommand(rest[1]); c != nil {
				commandFlagSet(c, g, stdout).Usage()
				return exitOK
			}
		}
		printUsage(stdout)
		return exitOK
	}
	cmd := findCommand(rest[0])
	if cmd == nil {
		fmt.Fprintf(stderr, "runner: unknown command %q\n", rest[0])
		printUsage(stderr)
		return exitUsage
	}
	fs := commandFlagSet(cmd, g, stderr)
	positional, err := parseInterspersed(fs, rest[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if err := g.setupLog(); err != nil {
		fmt.Fprintf(stderr, "runner: %v\n", err)
		return exitUsage
	}
	if g.now, err = runner.ClockFromEnv(); err != nil {
		fmt.Fprintf(stderr, "runner: %v\n", err)
		return exitUsage
	}
	// Backups yield the processor to the services they back up (a dump's
	// compression waits for the database's queries, not the other way
	// round). Set before any plugin starts, so that every plugin process
	// inherits it; a plugin process has it already.
	if cmd.name != "internal-plugin" {
		if err := priority.Lower(g.nice); err != nil {
			fmt.Fprintf(stderr, "runner: -nice: %v\n", err)
			return exitUsage
		}
	}

	// RUNNER_CPUPROFILE=FILE writes a CPU profile of the command, for
	// finding where a slow backup spends its time; RUNNER_TRACE=FILE an
	// execution trace (go tool trace), for finding where it waits instead
	// of working.
	for _, rec := range []struct {
		env   string
		start func(io.Writer) error
		stop  func()
	}{
		{"RUNNER_CPUPROFILE", pprof.StartCPUProfile, pprof.StopCPUProfile},
		{"RUNNER_TRACE", trace.Start, trace.Stop},
	} {
		if path := os.Getenv(rec.env); path != "" && cmd.name != "internal-plugin" {
			stop, err := startRecording(rec.env, path, rec.start, rec.stop)
			if err != nil {
				fmt.Fprintf(stderr, "runner: %v\n", err)
				return exitError
			}
			defer stop()
		}
	}
	// RUNNER_MEMPROFILE=FILE writes the allocations profile (what was
	// allocated where, and what is still in use) when the command ends.
	if path := os.Getenv("RUNNER_MEMPROFILE"); path != "" && cmd.name != "internal-plugin" {
		defer func() {
			if err := writeMemProfile(path); err != nil {
				fmt.Fprintf(stderr, "runner: %v\n", err)
			}
		}()
	}

	// SIGINT and SIGTERM cancel the context: running jobs stop, and what
	// they brought up is brought down before runner exits.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	err = cmd.run(ctx, g, positional)
	if err == nil {
		return exitOK
	}
	var ec *exitCodeError
	if errors.As(err, &ec) {
		if ec.err != nil {
			fmt.Fprintf(stderr, "runner %s: %v\n", cmd.name, ec.err)
		}
		return ec.code
	}
	fmt.Fprintf(stderr, "runner %s: %v\n", cmd.name, err)
	return exitError
}

// parseInterspersed parses flags wherever they stand among the positional
// arguments (runner restore site --to /tmp/x), as operators write them;
// after "--" everything is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var tail []string
	for i, a := range args {
		if a == "--" {
			args, tail = args[:i], args[i+1:]
			break
		}
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return append(positional, tail...), nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// startRecording creates path and starts a recorder (the CPU profiler or
// the execution tracer) writing to it; the returned func stops it. env
// names the variable that asked for it, for errors.
func startRecording(env, path string, start func(io.Writer) error, stop func()) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", env, err)
	}
	if err := start(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", env, err)
	}
	return func() { stop(); f.Close() }, nil
}

func writeMemProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("RUNNER_MEMPROFILE: %w", err)
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("RUNNER_MEMPROFILE: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("RUNNER_MEMPROFILE: %w", err)
	}
	return nil
}

func commandFlagSet(c *command, g *globals, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("runner "+c.name, flag.ContinueOnError)
	fs.SetOutput(out)
	// Globals are registered again so they may follow the command name; the
	// values parsed before it are kept as defaults.
	saved := *g
	g.addFlags(fs)
	g.dir, g.json, g.verbose, g.logLevel, g.logFormat, g.noColor, g.nice = saved.dir, saved.json, saved.verbose, saved.logLevel, saved.logFormat, saved.noColor, saved.nice
	g.vars, g.varFiles = saved.vars, saved.varFiles
	if c.flags != nil {
		c.flags(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: runner %s [options] %s\n\n%s\n", c.name, c.args, c.short)
		if c.long != "" {
			fmt.Fprintf(out, "\n%s\n", strings.TrimSpace(c.long))
		}
		fmt.Fprintf(out, "\nOptions:\n")
		fs.PrintDefaults()
	}
	return fs
}

func printUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: runner [options] COMMAND [options] [args]\n\nCommands:\n")
	visible := make([]*command, 0, len(commands))
	for _, c := range commands {
		if !c.hidden {
			visible = append(visible, c)
		}
	}
	sort.Slice(visible, func(i, j int) bool { return visible[i].name < visible[j].name })
	for _, c := range visible {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.short)
	}
	fmt.Fprintf(w, "\nGlobal options (before or after the command): -C DIR, -var NAME=VALUE, -var-file FILE,\n  -json, -v, --log-level LEVEL, --log-format text|json, --no-color, -nice N\n\nRun 'runner help COMMAND' for a command's options.\n")
}
