package rpc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/backup-runner/runner/plugins/sdk/internal/pluginapi"
)

// ErrCrashed is wrapped by errors about a plugin process that went away in
// the middle of a call (it crashed, was killed, or closed the connection).
var ErrCrashed = errors.New("plugin process exited")

// Error is an error from a plugin call, naming the plugin and the
// operation: `plugin "files": capture source.files.docs: permission denied`.
type Error struct {
	Plugin string // the plugin's name
	Op     string // e.g. "capture source.files.docs"
	Err    error
}

func (e *Error) Error() string {
	if e.Op == "" {
		return fmt.Sprintf("plugin %q: %v", e.Plugin, e.Err)
	}
	return fmt.Sprintf("plugin %q: %s: %v", e.Plugin, e.Op, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// notFoundError carries the plugin's message for a missing object and
// matches sdk.ErrNotFound, so the host can tell "absent" from "broken".
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string        { return e.msg }
func (e *notFoundError) Is(target error) bool { return target == pluginapi.ErrNotFound }

// crashError says that the plugin process is gone and, when known, why.
type crashError struct{ reason string }

func (e *crashError) Error() string {
	if e.reason == "" {
		return "the plugin process exited during the call (crashed or was killed)"
	}
	return "the plugin process exited during the call: " + e.reason
}

func (e *crashError) Unwrap() error { return ErrCrashed }

// exitWait bounds how long an error that looks like a lost connection waits
// for go-plugin to notice that the process has exited, which it does a
// moment after the connection drops.
const exitWait = 2 * time.Second

// fail wraps err from a call to the plugin into an *Error.
func (c *Client) fail(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Plugin: c.name, Op: op, Err: c.cause(ctx, err)}
}

// cause translates a gRPC error into what it means for the host.
func (c *Client) cause(ctx context.Context, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.NotFound:
		return &notFoundError{msg: st.Message()}
	case codes.DeadlineExceeded:
		// Either gRPC gave up waiting or the plugin's handler saw the
		// call's deadline pass (possibly a moment before ctx here did).
		return fmt.Errorf("no answer before the deadline: %w", context.DeadlineExceeded)
	case codes.OK:
		return err
	}
	// The caller's own deadline or cancellation comes first: a call cut by
	// its deadline is reported as such even if the plugin died meanwhile.
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(cerr, context.DeadlineExceeded) {
			return fmt.Errorf("no answer before the deadline: %w", cerr)
		}
		return fmt.Errorf("canceled: %w", cerr)
	}
	switch st.Code() {
	case codes.Unavailable, codes.Canceled, codes.Internal, codes.Unknown:
		// A process that died shows as a dropped transport: Unavailable,
		// Canceled when the host closed the connection, sometimes Internal
		// for a stream cut in the middle. Unknown is the plugin's own
		// errors (and Internal its panics), so those wait less or not at
		// all for go-plugin to notice an exit.
		var wait time.Duration
		switch st.Code() {
		case codes.Unavailable, codes.Canceled:
			wait = exitWait
		case codes.Internal:
			wait = exitWait / 8
		}
		if c.waitExited(wait) {
			return &crashError{reason: c.exitReason()}
		}
		if st.Code() == codes.Unavailable || st.Code() == codes.Canceled {
			return fmt.Errorf("lost the connection to the plugin process (%s): %w", st.Message(), ErrCrashed)
		}
	}
	return errors.New(st.Message())
}

// waitExited reports whether the plugin process has exited, waiting up to d
// for it.
func (c *Client) waitExited(d time.Duration) bool {
	if c.exited == nil {
		return false
	}
	select {
	case <-c.exited:
		return true
	default:
	}
	if d <= 0 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.exited:
		return true
	case <-t.C:
		return false
	}
}

func (c *Client) exitReason() string {
	if c.opts.ExitReason == nil {
		return ""
	}
	return c.opts.ExitReason()
}
