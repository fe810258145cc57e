// Package sdktest runs a runner plugin inside a Go test and hands back the
// real host-side client, so a plugin author tests the plugin exactly as the
// runner will call it: through gRPC, the wire encoding and the protocol's
// checks, only without a separate process.
//
//	func TestCapture(t *testing.T) {
//		c := sdktest.Start(t, myplugin.New())
//		src, err := c.Source(ctx, "files")
//		...
//	}
package sdktest

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"

	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/rpc"
)

// startTimeout bounds how long the in-process server may take to listen.
const startTimeout = 10 * time.Second

// Start serves p in this test process through go-plugin's test mode and
// returns a host-side client connected to it. The plugin is checked first
// as sdk.Serve would (an invalid schema fails the test). Log lines of the
// plugin's server go to t.Log. Everything is stopped by t.Cleanup; target
// sessions the test left unreleased are released then, and reported.
func Start(t testing.TB, p *sdk.Plugin) *rpc.Client {
	t.Helper()
	if err := rpc.CheckPlugin(p); err != nil {
		t.Fatalf("sdktest: invalid plugin: %v", err)
	}
	tl := &testLog{t: t}
	srv := rpc.NewServer(p, slog.New(slog.NewTextHandler(tl, nil)))

	ctx, cancel := context.WithCancel(context.Background())
	reattachCh := make(chan *plugin.ReattachConfig, 1)
	closeCh := make(chan struct{})
	go plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  rpc.Handshake,
		VersionedPlugins: rpc.VersionedPlugins(&rpc.GRPCPlugin{Impl: srv}),
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger:           hclog.NewNullLogger(),
		Test: &plugin.ServeTestConfig{
			Context:          ctx,
			ReattachConfigCh: reattachCh,
			CloseCh:          closeCh,
		},
	})
	stopServer := func() {
		cancel()
		<-closeCh
	}

	var rc *plugin.ReattachConfig
	select {
	case rc = <-reattachCh:
	case <-closeCh:
		cancel()
		t.Fatal("sdktest: the plugin server stopped before it was ready")
	case <-time.After(startTimeout):
		stopServer()
		t.Fatal("sdktest: the plugin server did not start")
	}
	// The plugin runs in this process: instead of go-plugin's default,
	// which polls the pid until the process dies (never, in a test), the
	// attached "process" ends when the in-process server stops.
	rc.ReattachFunc = func() (runner.AttachedRunner, error) {
		return &inProcess{done: closeCh}, nil
	}

	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: rpc.Handshake,
		// On the Reattach path go-plugin does not negotiate a version, so
		// it takes the plugin set from Plugins, not VersionedPlugins.
		Plugins:          rpc.PluginSet(&rpc.GRPCPlugin{ClientOptions: rpc.ClientOptions{Name: p.Name}}),
		Reattach:         rc,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           hclog.NewNullLogger(),
	})
	cp, err := client.Client()
	if err != nil {
		stopServer()
		t.Fatalf("sdktest: connect to the plugin: %v", err)
	}
	c, err := rpc.Dispense(cp)
	if err != nil {
		_ = cp.Close()
		stopServer()
		t.Fatalf("sdktest: %v", err)
	}

	t.Cleanup(func() {
		// In test mode go-plugin's Kill does not stop anything. Closing the
		// connection asks the server to stop (go-plugin's controller); the
		// context is cancelled only if that did not work, because go-plugin
		// stops its server without a lock on both paths, which races.
		_ = cp.Close()
		select {
		case <-closeCh:
		case <-time.After(startTimeout):
			t.Errorf("sdktest: the plugin server did not stop when asked")
		}
		stopServer()
		client.Kill()
		sctx, scancel := context.WithTimeout(context.Background(), startTimeout)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("sdktest: releasing sessions left open: %v", err)
		}
		tl.close()
	})
	return c
}

// inProcess stands for the plugin "process" when it runs inside the test.
type inProcess struct {
	done <-chan struct{}
}

func (p *inProcess) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *inProcess) Kill(context.Context) error { return nil }
func (p *inProcess) ID() string                 { return "in-process" }

func (p *inProcess) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (p *inProcess) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

var _ runner.AttachedRunner = (*inProcess)(nil)

// testLog writes log lines to t.Log until the test's cleanup, and drops
// them afterwards (a plugin goroutine may outlive the test; t.Log would
// then panic).
type testLog struct {
	mu     sync.Mutex
	t      testing.TB
	closed bool
}

var _ io.Writer = (*testLog)(nil)

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.t.Log("plugin: " + strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (l *testLog) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
}
