package sdk

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"

	"github.com/backup-runner/runner/plugins/sdk/rpc"
)

// stderr is the process's standard error as it was at start. go-plugin's
// Serve replaces os.Stderr with a pipe forwarded to the host's "synced
// stderr", which the runner discards; log lines must go to the real file
// descriptor 2, which the host reads and re-emits as its own log records.
var stderr = os.Stderr

const (
	// parentPoll is how often Serve checks that the runner is still there.
	parentPoll = 500 * time.Millisecond
	// shutdownGrace bounds the release of target sessions the host left
	// open when it went away.
	shutdownGrace = 10 * time.Second
	// timeFormat is the timestamp format go-plugin's host parses.
	timeFormat = "2006-01-02T15:04:05.000000Z07:00"
)

// Serve runs p as a runner plugin: it checks p's schemas (exiting with
// status 1 and a message on stderr if one is invalid), then serves the
// runner host over go-plugin gRPC until the host closes the connection,
// and returns. main should return right after.
//
// A plugin process must not outlive the runner: besides the kernel signal
// the host asks for (Linux Pdeathsig), Serve watches for the parent process
// to change, which catches a runner killed with SIGKILL on any Unix, and
// then releases the target sessions still open and exits.
func Serve(p *Plugin) {
	if err := rpc.CheckPlugin(p); err != nil {
		name := "(unnamed)"
		if p != nil && p.Name != "" {
			name = p.Name
		}
		fmt.Fprintf(stderr, "runner plugin %q is invalid:\n%v\n", name, err)
		os.Exit(1)
	}
	// Read (and removed from the environment) before anything else runs.
	localTLS, err := rpc.ServerTLSFromEnv()
	if err != nil {
		fmt.Fprintf(stderr, "runner plugin %q: %v\n", p.Name, err)
		os.Exit(1)
	}
	log := Logger()
	srv := rpc.NewServer(p, log)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		watchParent(stop, srv, log)
	}()

	var tlsProvider func() (*tls.Config, error)
	if localTLS != nil {
		tlsProvider = func() (*tls.Config, error) { return localTLS, nil }
	}
	plugin.Serve(&plugin.ServeConfig{
		TLSProvider:      tlsProvider,
		HandshakeConfig:  rpc.Handshake,
		VersionedPlugins: rpc.VersionedPlugins(&rpc.GRPCPlugin{Impl: srv}),
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:       p.Name,
			Output:     stderr,
			JSONFormat: true,
			Level:      hclog.LevelFromString(levelName(logLevel())),
		}),
	})

	close(stop)
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Error("releasing target sessions at shutdown", "error", err)
	}
}

// watchParent exits the process when the parent process changes (the
// runner died and the plugin was re-parented), after releasing what the
// host left prepared. It returns when stop is closed.
func watchParent(stop <-chan struct{}, srv *rpc.Server, log *slog.Logger) {
	ppid := os.Getppid()
	t := time.NewTicker(parentPoll)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if os.Getppid() == ppid {
			continue
		}
		log.Error("the runner process went away; plugin exiting", "runner_pid", ppid)
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		if err := srv.Shutdown(ctx); err != nil {
			log.Error("releasing target sessions", "error", err)
		}
		cancel()
		os.Exit(1)
	}
}

var (
	loggerOnce sync.Once
	logger     *slog.Logger
)

// Logger returns the plugin's logger. It writes JSON lines to the process's
// original standard error, in the shape the runner host re-emits as its own
// log records (keys @level, @message, @timestamp; other attributes are kept
// as fields), at the level the host asked for.
func Logger() *slog.Logger {
	loggerOnce.Do(func() {
		logger = slog.New(newLogHandler(stderr, logLevel()))
	})
	return logger
}

// logLevel is the level the host asked for through rpc.LogLevelEnv, Info
// if it did not.
func logLevel() slog.Level {
	switch strings.ToLower(os.Getenv(rpc.LogLevelEnv)) {
	case "trace", "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

func levelName(l slog.Level) string {
	switch {
	case l < slog.LevelDebug:
		return "trace"
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	}
	return "error"
}

func newLogHandler(w io.Writer, level slog.Leveler) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				if t, ok := a.Value.Any().(time.Time); ok {
					return slog.String("@timestamp", t.Format(timeFormat))
				}
			case slog.LevelKey:
				if l, ok := a.Value.Any().(slog.Level); ok {
					return slog.String("@level", levelName(l))
				}
			case slog.MessageKey:
				return slog.Attr{Key: "@message", Value: a.Value}
			}
			return a
		},
	})
}
