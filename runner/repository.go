package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	config "github.com/backup-runner/runner/hcl"
	"github.com/backup-runner/runner/internal/repo"
	"github.com/backup-runner/runner/internal/repo/local"
	"github.com/backup-runner/runner/internal/secret"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

// sessionStorage adapts a prepared target's object verbs to the
// repository's storage interface. Only the not-found error needs mapping.
type sessionStorage struct{ s sdk.Session }

var _ repo.Storage = sessionStorage{}

func mapNotFound(err error) error {
	if err != nil && errors.Is(err, sdk.ErrNotFound) && !errors.Is(err, repo.ErrNotFound) {
		return fmt.Errorf("%w (%w)", repo.ErrNotFound, err)
	}
	return err
}

func (a sessionStorage) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	return mapNotFound(a.s.Put(ctx, name, r, size))
}

func (a sessionStorage) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	rc, err := a.s.Get(ctx, name, offset, length)
	return rc, mapNotFound(err)
}

func (a sessionStorage) List(ctx context.Context, prefix string, fn func(repo.ObjectInfo) error) error {
	return mapNotFound(a.s.List(ctx, prefix, func(o sdk.ObjectInfo) error {
		return fn(repo.ObjectInfo{Name: o.Name, Size: o.Size, ModTime: o.ModTime})
	}))
}

func (a sessionStorage) Delete(ctx context.Context, name string) error {
	return mapNotFound(a.s.Delete(ctx, name))
}

func (a sessionStorage) Stat(ctx context.Context, name string) (repo.ObjectInfo, error) {
	o, err := a.s.Stat(ctx, name)
	return repo.ObjectInfo{Name: o.Name, Size: o.Size, ModTime: o.ModTime}, mapNotFound(err)
}

// storageFor returns the repository storage of a prepared target: the
// local directory directly when the target offers one (no bulk data
// through RPC), its object verbs otherwise.
func storageFor(sess sdk.Session) (repo.Storage, string, error) {
	if root := sess.LocalRoot(); root != "" {
		st, err := local.New(root)
		if err != nil {
			return nil, "", fmt.Errorf("open repository directory %s: %w", root, err)
		}
		return st, root, nil
	}
	return sessionStorage{sess}, "", nil
}

// ReadPassphrase reads a target's password_file (see package secret: a
// file that group or others may read is refused, as the passphrase
// protects every backup).
func ReadPassphrase(path string) ([]byte, error) {
	s, err := secret.ReadFile("password_file", path)
	if err != nil {
		return nil, err
	}
	return []byte(s), nil
}

// TargetSession is a target brought up for one operation: its hooks up,
// its plugin prepared. Close brings everything down in reverse order.
type TargetSession struct {
	e       *Engine
	target  *config.Instance
	plugins *jobPlugins
	up      []*config.Instance
	sess    sdk.Session
	Storage repo.Storage
	// LocalRoot is the repository directory when the target has one.
	LocalRoot string
	dryRun    bool
	notes     []string
	log       *slog.Logger
}

// OpenTarget brings a target up for an operation outside a job run (init,
// snapshots, restore, check, forget, prune): its hooks, then Prepare.
func (e *Engine) OpenTarget(ctx context.Context, target *config.Instance, readOnly bool, env map[string]string) (*TargetSession, error) {
	return e.openTarget(ctx, target, readOnly, false, env)
}

func (e *Engine) openTarget(ctx context.Context, target *config.Instance, readOnly, dryRun bool, env map[string]string) (*TargetSession, error) {
	ts := &TargetSession{e: e, target: target, plugins: &jobPlugins{launcher: e.Plugins}, dryRun: dryRun, log: e.log().With("target", target.Address)}
	if err := ts.open(ctx, readOnly, env); err != nil {
		ts.Close(false)
		return nil, err
	}
	return ts, nil
}

func (ts *TargetSession) open(ctx context.Context, readOnly bool, env map[string]string) error {
	for _, h := range ts.target.Hooks {
		c, err := ts.plugins.get(ctx, schema.KindHook, h.Block.TypeName)
		if err != nil {
			return fmt.Errorf("%s: %w", h.Address, err)
		}
		notes, err := c.Up(ctx, sdk.HookRequest{Instance: instance(h), Env: env, DryRun: ts.dryRun})
		ts.notes = append(ts.notes, notes...)
		if err != nil {
			return fmt.Errorf("%s up: %w", h.Address, err)
		}
		ts.up = append(ts.up, h)
	}
	tc, err := ts.plugins.get(ctx, schema.KindTarget, ts.target.Block.TypeName)
	if err != nil {
		return fmt.Errorf("%s: %w", ts.target.Address, err)
	}
	sess, err := tc.Prepare(ctx, instance(ts.target), readOnly)
	if err != nil {
		return fmt.Errorf("prepare %s: %w", ts.target.Address, err)
	}
	ts.sess = sess
	st, root, err := storageFor(sess)
	if err != nil {
		return err
	}
	ts.Storage, ts.LocalRoot = st, root
	return nil
}

// Close releases the target and brings its hooks down, reporting the
// first problem; ok says whether the operation succeeded (RUNNER_STATUS).
func (ts *TargetSession) Close(ok bool) error {
	dctx, cancel := ts.e.downContext()
	defer cancel()
	var first error
	if ts.sess != nil {
		if err := ts.sess.Release(dctx); err != nil {
			first = fmt.Errorf("release %s: %w", ts.target.Address, err)
		}
	}
	status := StatusSuccess
	if !ok {
		status = StatusFailure
	}
	for i := len(ts.up) - 1; i >= 0; i-- {
		h := ts.up[i]
		c, err := ts.plugins.get(dctx, schema.KindHook, h.Block.TypeName)
		if err == nil {
			var notes []string
			notes, err = c.Down(dctx, sdk.HookRequest{Instance: instance(h), Env: map[string]string{"RUNNER_STATUS": string(status)}, DryRun: ts.dryRun})
			ts.notes = append(ts.notes, notes...)
		}
		if err != nil && first == nil {
			first = fmt.Errorf("%s down: %w", h.Address, err)
		}
	}
	ts.plugins.close()
	return first
}

// repoOpenOptions are the options every repository open uses.
func (e *Engine) repoOpenOptions(target *config.Instance, lock repo.LockMode) (repo.OpenOptions, error) {
	o := repo.OpenOptions{Lock: lock, Logger: e.log(), TempDir: e.tempDir(), Now: e.Now}
	if target.PasswordFile != "" {
		pass, err := ReadPassphrase(target.PasswordFile)
		if err != nil {
			return o, fmt.Errorf("%s: %w", target.Address, err)
		}
		o.Passphrase = pass
	}
	return o, nil
}

// tempDir is where packs are assembled before upload: under state_dir, so
// they stay on this machine's disk and not in a small /tmp.
func (e *Engine) tempDir() string {
	d := filepath.Join(e.Config.Runner.StateDir, "tmp")
	if err := os.MkdirAll(d, 0o700); err != nil {
		return ""
	}
	return d
}

// OpenRepository opens the repository on an open target session.
func (e *Engine) OpenRepository(ctx context.Context, ts *TargetSession, lock repo.LockMode) (*repo.Repository, error) {
	return e.openRepo(ctx, ts.target, ts.Storage, lock)
}

// openRepo opens the repository of target on st, saying how to create it
// when there is none.
func (e *Engine) openRepo(ctx context.Context, target *config.Instance, st repo.Storage, lock repo.LockMode) (*repo.Repository, error) {
	o, err := e.repoOpenOptions(target, lock)
	if err != nil {
		return nil, err
	}
	r, err := repo.Open(ctx, st, o)
	if errors.Is(err, repo.ErrNoRepository) {
		return nil, fmt.Errorf("%s holds no repository yet: create it with runner init %s", target.Address, target.Address)
	}
	if err != nil {
		return nil, fmt.Errorf("open repository on %s: %w", target.Address, err)
	}
	return r, nil
}

// InitResult says what runner init created.
type InitResult struct {
	Target    string `json:"target"`
	Where     string `json:"where,omitempty"`
	ID        string `json:"id"`
	Encrypted bool   `json:"encrypted"`
}

// InitRepository creates the repository on a target.
func (e *Engine) InitRepository(ctx context.Context, target *config.Instance) (res *InitResult, err error) {
	o := repo.InitOptions{Unencrypted: target.PasswordFile == "", Now: e.Now}
	if target.PasswordFile != "" {
		if o.Passphrase, err = ReadPassphrase(target.PasswordFile); err != nil {
			return nil, fmt.Errorf("%s: %w", target.Address, err)
		}
	}
	ts, err := e.OpenTarget(ctx, target, false, map[string]string{"RUNNER_OPERATION": "init"})
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := ts.Close(err == nil); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err := repo.Init(ctx, ts.Storage, o); err != nil {
		if errors.Is(err, repo.ErrRepositoryExists) {
			return nil, fmt.Errorf("%s already holds a repository; nothing was changed", target.Address)
		}
		return nil, fmt.Errorf("init repository on %s: %w", target.Address, err)
	}
	r, err := e.OpenRepository(ctx, ts, repo.LockNone)
	if err != nil {
		return nil, err
	}
	defer func() { _ = r.Close(context.Background()) }()
	return &InitResult{Target: target.Address, Where: ts.LocalRoot, ID: r.Config().ID, Encrypted: target.PasswordFile != ""}, nil
}
