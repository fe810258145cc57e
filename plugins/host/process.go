package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	plugin "github.com/hashicorp/go-plugin"

	"github.com/backup-runner/runner/plugins/sdk/rpc"
)

// proc is one plugin process the catalog started.
type proc struct {
	name   string
	gp     *plugin.Client
	client *rpc.Client
	cmd    *exec.Cmd
	stderr *stderrLog

	mu          sync.Mutex
	started     bool // go-plugin's start returned: cmd.Process is settled
	stopped     bool // the host asked it to stop: its exit is no crash
	groupKilled bool

	killMu sync.Mutex // serializes stop
}

// pid is the process id, 0 if it never started. Call it only once the
// start is over (markStarted).
func (p *proc) pid() int {
	if p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// markStarted records that go-plugin's start returned, and reports whether
// the process was asked to stop meanwhile.
func (p *proc) markStarted() (stopNow bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.started = true
	return p.stopped
}

// exitReason says why the process ended. go-plugin closes the client's
// "exited" channel only after cmd.Wait returned, so cmd.ProcessState is
// safe to read here.
func (p *proc) exitReason() string {
	p.mu.Lock()
	stopped := p.stopped
	p.mu.Unlock()
	if stopped {
		return "stopped by runner"
	}
	reason := "exited"
	if st := p.cmd.ProcessState; st != nil {
		reason = st.String()
	}
	if pl := p.stderr.panicLine(); pl != "" {
		reason += ": " + pl
	}
	return reason
}

// stop ends the process: go-plugin asks it to shut down and kills it if it
// does not within 2 s. The plugin runs in its own process group; the group
// is killed afterwards so that children the plugin started (a dump tool, a
// VPN client) do not survive it either. A process still being started is
// stopped by its starter as soon as the start is over. stop may be called
// more than once.
func (p *proc) stop() {
	p.mu.Lock()
	p.stopped = true
	started := p.started
	p.mu.Unlock()
	if !started {
		return
	}
	p.killMu.Lock()
	defer p.killMu.Unlock()
	p.gp.Kill() // waits for the process to end; idempotent
	if !p.groupKilled {
		p.groupKilled = true
		if pid := p.pid(); pid > 0 {
			killGroup(pid)
		}
	}
}

// checksumError is returned when a pinned plugin's file does not have the
// sha256 its plugin block pins.
type checksumError struct {
	path      string
	have, pin string
}

func (e *checksumError) Error() string {
	return fmt.Sprintf("checksum mismatch for %s: file has sha256 %s, config pins %s", e.path, e.have, e.pin)
}

// fileSHA256 returns the sha256 of the file at path.
func fileSHA256(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return h.Sum(nil), nil
}

// verifyChecksum checks the pinned sha256 of path before it is executed.
func verifyChecksum(path string, pin []byte) error {
	have, err := fileSHA256(path)
	if err != nil {
		return err
	}
	if !bytes.Equal(have, pin) {
		return &checksumError{path: path, have: hex.EncodeToString(have), pin: hex.EncodeToString(pin)}
	}
	return nil
}

// start launches a process for e and connects to it. The context bounds
// the wait for the connection; a process that connects after ctx ended is
// stopped, not leaked.
func (c *Catalog) start(ctx context.Context, e *entry) (*proc, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if e.path == "" {
		return nil, errors.New("cannot start a built-in plugin: the catalog was given no runner executable (Options.SelfExe)")
	}
	var secure *plugin.SecureConfig
	if e.origin == originPinned {
		// Checked here, before anything runs, for a clear message; and by
		// go-plugin again right before exec, which narrows the window in
		// which the file could be swapped.
		if err := verifyChecksum(e.path, e.sha256); err != nil {
			return nil, err
		}
		secure = &plugin.SecureConfig{Checksum: e.sha256, Hash: sha256.New()}
	}

	log := c.log.With("plugin", e.name)
	cmd := exec.Command(e.path, e.args...)
	cmd.SysProcAttr = sysProcAttr()
	cmd.Env = []string{rpc.LogLevelEnv + "=" + levelEnv(c.log)}
	// A built-in plugin is this executable: it takes its TLS key from us
	// (rpc.LocalTLS), which saves the P-521 keys and signatures of
	// go-plugin's AutoMTLS, more than half of starting a plugin. Others
	// negotiate with AutoMTLS.
	var tlsConfig *tls.Config
	if e.origin == originBuiltin {
		lt, err := rpc.NewLocalTLS()
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", e.path, err)
		}
		tlsConfig = lt.ClientConfig()
		cmd.Env = append(cmd.Env, lt.Env())
	}
	p := &proc{name: e.name, cmd: cmd, stderr: newStderrLog(log)}
	p.gp = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: rpc.Handshake,
		VersionedPlugins: rpc.VersionedPlugins(&rpc.GRPCPlugin{ClientOptions: rpc.ClientOptions{
			Name:       e.name,
			ExitReason: p.exitReason,
		}}),
		Cmd:              cmd,
		SecureConfig:     secure,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         tlsConfig == nil,
		TLSConfig:        tlsConfig,
		Managed:          true,
		StartTimeout:     c.opts.StartTimeout,
		Logger:           newHCLogger(log, filepath.Base(e.path)),
		Stderr:           p.stderr,
	})
	if err := c.track(p); err != nil { // counts the goroutine below in c.wg
		return nil, err
	}

	type started struct {
		client *rpc.Client
		err    error
	}
	ch := make(chan started) // unbuffered: exactly one side takes the result
	abandon := make(chan struct{})
	go func() {
		defer c.wg.Done()
		var r started
		cp, err := p.gp.Client()
		if err == nil {
			r.client, err = rpc.Dispense(cp)
		}
		r.err = err
		if p.markStarted() {
			// Stopped (Close, Instance.Close) while starting.
			p.stop()
			if r.err == nil {
				r.err = errors.New("stopped while starting (plugin catalog closed)")
			}
		}
		select {
		case ch <- r:
		case <-abandon:
			c.untrack(p)
			p.stop()
		}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			c.untrack(p)
			p.stop()
			return nil, startError(e.path, r.err, p.stderr.lastLines())
		}
		p.client = r.client
		return p, nil
	case <-ctx.Done():
		close(abandon)
		return nil, fmt.Errorf("start %s: %w", e.path, ctx.Err())
	}
}

// startError explains why a plugin process could not be started. go-plugin
// stopped the process (and read all its output) before this is called, so
// what the plugin wrote is complete and usually says more than go-plugin.
func startError(path string, err error, output []string) error {
	switch {
	case errors.Is(err, plugin.ErrChecksumsDoNotMatch):
		return fmt.Errorf("checksum mismatch for %s (the file changed after it was checked)", path)
	case strings.HasPrefix(err.Error(), "Unrecognized remote plugin message"):
		// go-plugin's message spans a dozen lines of generic advice.
		err = errors.New("it did not answer the plugin handshake (is it a runner plugin, built for this system?)")
	}
	if len(output) > 0 {
		return fmt.Errorf("start %s: %w; its last output: %s", path, err, strings.Join(output, " | "))
	}
	return fmt.Errorf("start %s: %w", path, err)
}
