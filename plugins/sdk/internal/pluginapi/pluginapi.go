// Package pluginapi defines the Go contract between a runner plugin and the
// runner host. Plugin authors use these types through package sdk, which
// re-exports every one of them under the same name: they live here only so
// that the protocol packages (sdk/rpc, sdk/wire) can use them while sdk
// itself imports sdk/rpc to implement sdk.Serve (sdk -> rpc -> sdk would be
// an import cycle).
package pluginapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/sdk/schema"
)

// Plugin describes one plugin binary. Every map is keyed by the block type
// name (the first label: source "files" ... has type name "files") or, for
// Functions, by the HCL function name.
type Plugin struct {
	Name      string
	Version   string
	Sources   map[string]Source
	Targets   map[string]Target
	Hooks     map[string]Hook
	Notifiers map[string]Notifier
	Functions map[string]Function
}

// Instance identifies one configured block: its type, its address in the
// configuration (e.g. source.wordpress.site["blog"]) and its evaluated
// configuration, an object of the type the block's schema implies.
type Instance struct {
	TypeName string
	Address  string
	Config   cty.Value
}

// Schemer is implemented by every block type.
type Schemer interface {
	Schema() *schema.Block
}

// Validator is implemented by block types that check their configuration
// beyond its types (e.g. an absolute path, a known mode). Validate must not
// contact any server or change anything.
type Validator interface {
	Validate(ctx context.Context, config cty.Value) schema.Diagnostics
}

// ---------------------------------------------------------------- sources

// Source captures something to protect into items.
type Source interface {
	Schemer
	// PlanCapture estimates, read-only, what Capture would produce.
	PlanCapture(ctx context.Context, inst Instance) (*CapturePlan, error)
	// Capture produces the items of one snapshot through w.
	Capture(ctx context.Context, inst Instance, w CaptureWriter) error
}

// Applier is implemented by sources that can write a snapshot back
// (restore, replicate).
type Applier interface {
	Apply(ctx context.Context, req ApplyRequest, r ItemReader) error
}

// ItemKind says how an item's content reaches the host.
type ItemKind int

const (
	// ItemTree: files under a local path that the host reads itself, so bulk
	// data does not cross RPC.
	ItemTree ItemKind = iota + 1
	// ItemStream: bytes written through the capture stream (e.g. a dump).
	ItemStream
)

func (k ItemKind) String() string {
	switch k {
	case ItemTree:
		return "tree"
	case ItemStream:
		return "stream"
	}
	return "unknown"
}

// CapturePlan is the read-only estimate of a capture.
type CapturePlan struct {
	Items []ItemEstimate
	Notes []string
}

// ItemEstimate estimates one item.
type ItemEstimate struct {
	Name   string
	Kind   ItemKind
	Files  int64
	Bytes  int64
	Detail string
}

// TreeSpec describes a tree item.
type TreeSpec struct {
	Root          string   // absolute local path
	Paths         []string // relative to Root; empty means all of Root
	Excludes      []string // gitignore-like patterns
	OneFileSystem bool
}

// Item is the header of one captured or applied item.
type Item struct {
	Name string
	Kind ItemKind
	Tree *TreeSpec // for ItemTree
	Meta map[string]string
}

// CaptureWriter receives a capture's items.
type CaptureWriter interface {
	// Tree announces a tree item; the host reads it after Capture returns.
	Tree(item Item) error
	// Stream starts a stream item; write its bytes, then Close it. Closing
	// with CloseWithError fails the capture.
	Stream(item Item) (StreamWriter, error)
	// Done records the snapshot's source metadata. Call it at most once.
	Done(CaptureResult) error
}

// StreamWriter is the body of one stream item.
type StreamWriter interface {
	io.Writer
	Close() error
	CloseWithError(err error) error
}

// CaptureResult is what a capture says about the snapshot as a whole.
type CaptureResult struct {
	Meta     map[string]string
	Warnings []string
	Partial  bool
}

// ApplyRequest says where and how a snapshot is applied.
type ApplyRequest struct {
	Instance     Instance
	SnapshotMeta map[string]string
	Destination  string // empty: into place; else a directory beside the live data
	DryRun       bool
	// Options are source-specific restore options (runner restore's
	// --option KEY=VALUE and the flags that map onto it, such as
	// --to-database NAME as "database").
	Options map[string]string
	// Notes receives what the apply changed (or, in a dry run, would
	// change), one line each, for the operator; set by the host. Call it
	// through Note, which is safe when it is nil.
	Notes func(string)
}

// Note reports one line of what the apply changes (or would change).
func (r ApplyRequest) Note(format string, args ...any) {
	if r.Notes != nil {
		r.Notes(fmt.Sprintf(format, args...))
	}
}

// ItemReader yields the items of a snapshot being applied. Next returns
// io.EOF after the last item; for a stream item, the returned reader is
// valid until the next call to Next.
type ItemReader interface {
	Next() (Item, io.Reader, error)
}

// ---------------------------------------------------------------- targets

// ErrNotFound is returned (or wrapped) by target object verbs for an object
// that does not exist. It crosses the wire as gRPC NOT_FOUND.
var ErrNotFound = errors.New("object not found")

// Target stores repositories.
type Target interface {
	Schemer
	// Prepare brings the target up (mount, checks) and returns a session.
	// readOnly asks for only what reading needs (plans, dry runs).
	Prepare(ctx context.Context, inst Instance, readOnly bool) (Session, error)
}

// Session is a prepared target. Release must be called exactly once.
type Session interface {
	// LocalRoot is a local directory the host may use directly instead of
	// the object verbs, or "".
	LocalRoot() string
	// Put stores an object whole; a concurrent reader sees the old object,
	// or none, never a partial one.
	Put(ctx context.Context, name string, r io.Reader, size int64) error
	// Get reads length bytes at offset (length 0: to the end).
	Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error)
	// List calls fn for every object whose name starts with prefix.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	Delete(ctx context.Context, name string) error
	Stat(ctx context.Context, name string) (ObjectInfo, error)
	Usage(ctx context.Context) (Usage, error)
	// Release undoes Prepare (unmount, ...). It runs on failure too.
	Release(ctx context.Context) error
}

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Name    string
	Size    int64
	ModTime time.Time
}

// Usage reports space; -1 means unknown.
type Usage struct {
	TotalBytes int64
	FreeBytes  int64
	UsedBytes  int64
}

// ---------------------------------------------------------------- hooks

// Hook brings something up before a job and down after it.
type Hook interface {
	Schemer
	Up(ctx context.Context, req HookRequest) ([]string, error)
	Down(ctx context.Context, req HookRequest) ([]string, error)
}

// HookRequest carries the instance and the job's environment
// (RUNNER_JOB, RUNNER_STATUS, RUNNER_SNAPSHOT, ...).
type HookRequest struct {
	Instance Instance
	Env      map[string]string
	DryRun   bool
}

// ---------------------------------------------------------------- notifiers

// Notifier sends a notification about a significant event.
type Notifier interface {
	Schemer
	Notify(ctx context.Context, inst Instance, n Notification) error
}

// Notification is one event worth telling someone about.
type Notification struct {
	Event   string // failure, recovery, forget, restore, role_change, success
	Subject string
	Body    string
	Fields  map[string]string
}

// ---------------------------------------------------------------- functions

// Function is an HCL function a plugin adds, such as wordpress_sites(root).
// Impl receives arguments already converted to the parameter types.
type Function struct {
	Spec schema.Function
	Impl func(ctx context.Context, args []cty.Value) (cty.Value, error)
}

// ArgError is an error about one argument of a function call; Index is
// 0-based.
type ArgError struct {
	Index int
	Err   error
}

func (e *ArgError) Error() string { return e.Err.Error() }
func (e *ArgError) Unwrap() error { return e.Err }
