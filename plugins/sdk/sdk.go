// Package sdk is what a runner plugin author imports. A plugin is a Plugin
// value naming the block types and functions it provides; sdk.Serve runs it
// as a go-plugin gRPC server that the runner host starts as a child process.
//
// The same Go interfaces are what the host hands the engine for a launched
// plugin, so code written against them works in-process (tests) and across
// the process boundary alike.
//
// The types are defined in an internal package and re-exported here as
// aliases: sdk.Serve needs the protocol package sdk/rpc, which itself needs
// these types, and Go forbids the import cycle. For a plugin author the
// aliases are the types; the full documentation of each is on its
// definition (follow the alias).
package sdk

import (
	"github.com/backup-runner/runner/plugins/sdk/internal/pluginapi"
)

// Plugin describes one plugin binary. Every map is keyed by the block type
// name (the first label: source "files" ... has type name "files") or, for
// Functions, by the HCL function name.
type Plugin = pluginapi.Plugin

// Instance identifies one configured block: its type, its address in the
// configuration (e.g. source.wordpress.site["blog"]) and its evaluated
// configuration, an object of the type the block's schema implies.
type Instance = pluginapi.Instance

// Schemer is implemented by every block type.
type Schemer = pluginapi.Schemer

// Validator is implemented by block types that check their configuration
// beyond its types (e.g. an absolute path, a known mode). Validate must not
// contact any server or change anything.
type Validator = pluginapi.Validator

// ---------------------------------------------------------------- sources

// Source captures something to protect into items.
type Source = pluginapi.Source

// Applier is implemented by sources that can write a snapshot back
// (restore, replicate).
type Applier = pluginapi.Applier

// ItemKind says how an item's content reaches the host.
type ItemKind = pluginapi.ItemKind

const (
	// ItemTree: files under a local path that the host reads itself, so bulk
	// data does not cross RPC.
	ItemTree = pluginapi.ItemTree
	// ItemStream: bytes written through the capture stream (e.g. a dump).
	ItemStream = pluginapi.ItemStream
)

// CapturePlan is the read-only estimate of a capture.
type CapturePlan = pluginapi.CapturePlan

// ItemEstimate estimates one item.
type ItemEstimate = pluginapi.ItemEstimate

// TreeSpec describes a tree item.
type TreeSpec = pluginapi.TreeSpec

// Item is the header of one captured or applied item.
type Item = pluginapi.Item

// CaptureWriter receives a capture's items.
type CaptureWriter = pluginapi.CaptureWriter

// StreamWriter is the body of one stream item.
type StreamWriter = pluginapi.StreamWriter

// CaptureResult is what a capture says about the snapshot as a whole.
type CaptureResult = pluginapi.CaptureResult

// ApplyRequest says where and how a snapshot is applied.
type ApplyRequest = pluginapi.ApplyRequest

// ItemReader yields the items of a snapshot being applied.
type ItemReader = pluginapi.ItemReader

// ---------------------------------------------------------------- targets

// ErrNotFound is returned (or wrapped) by target object verbs for an object
// that does not exist. It crosses the wire as gRPC NOT_FOUND.
var ErrNotFound = pluginapi.ErrNotFound

// Target stores repositories.
type Target = pluginapi.Target

// Session is a prepared target. Release must be called exactly once.
type Session = pluginapi.Session

// ObjectInfo describes one stored object.
type ObjectInfo = pluginapi.ObjectInfo

// Usage reports space; -1 means unknown.
type Usage = pluginapi.Usage

// ---------------------------------------------------------------- hooks

// Hook brings something up before a job and down after it.
type Hook = pluginapi.Hook

// HookRequest carries the instance and the job's environment
// (RUNNER_JOB, RUNNER_STATUS, RUNNER_SNAPSHOT, ...).
type HookRequest = pluginapi.HookRequest

// ---------------------------------------------------------------- notifiers

// Notifier sends a notification about a significant event.
type Notifier = pluginapi.Notifier

// Notification is one event worth telling someone about.
type Notification = pluginapi.Notification

// The events the engine notifies (Notification.Event). Notifiers choose
// which to send; the last three are the "significant" ones an operator
// adds.
const (
	EventStart      = "start"       // a job started
	EventSuccess    = "success"     // a job succeeded
	EventFailure    = "failure"     // a job failed
	EventRecovery   = "recovery"    // a job succeeded after failing
	EventForget     = "forget"      // retention forgot snapshots
	EventRestore    = "restore"     // a snapshot was restored
	EventRoleChange = "role_change" // a job's role changed on this server
)

// MetaSummary is the snapshot metadata key (CaptureResult.Meta) of a
// one-line description of what the snapshot holds, which runner snapshots
// shows: "WordPress 6.1.9, https://blog.example.org, binlog
// mysql-bin.000003:1234".
const MetaSummary = "summary"

// Events lists every event, in the order above.
var Events = []string{EventStart, EventSuccess, EventFailure, EventRecovery, EventForget, EventRestore, EventRoleChange}

// ---------------------------------------------------------------- functions

// Function is an HCL function a plugin adds, such as wordpress_sites(root).
// Impl receives arguments already converted to the parameter types.
type Function = pluginapi.Function

// ArgError is an error about one argument of a function call; Index is
// 0-based.
type ArgError = pluginapi.ArgError
