package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/backup-runner/runner/plugins/proto"
	"github.com/backup-runner/runner/plugins/sdk/internal/pluginapi"
	"github.com/backup-runner/runner/plugins/sdk/schema"
	"github.com/backup-runner/runner/plugins/sdk/wire"
)

// SourceClient is a plugin source type seen from the host. It implements
// sdk.Source and sdk.Applier; Apply fails if the plugin's source cannot
// apply snapshots.
type SourceClient struct {
	c        *Client
	typeName string
	block    *schema.Block
}

var (
	_ pluginapi.Source  = (*SourceClient)(nil)
	_ pluginapi.Applier = (*SourceClient)(nil)
)

// Source returns the source type typeName of the plugin.
func (c *Client) Source(ctx context.Context, typeName string) (*SourceClient, error) {
	b, err := c.block(ctx, schema.KindSource, typeName)
	if err != nil {
		return nil, err
	}
	return &SourceClient{c: c, typeName: typeName, block: b}, nil
}

// Schema returns the source type's block schema.
func (s *SourceClient) Schema() *schema.Block { return s.block }

// PlanCapture asks for a read-only estimate of a capture.
func (s *SourceClient) PlanCapture(ctx context.Context, inst pluginapi.Instance) (*pluginapi.CapturePlan, error) {
	op := "plan capture " + inst.Address
	pi, err := s.c.instance(s.typeName, inst)
	if err != nil {
		return nil, &Error{Plugin: s.c.name, Op: op, Err: err}
	}
	resp, err := s.c.source.PlanCapture(ctx, &proto.PlanCaptureRequest{Instance: pi})
	if err != nil {
		return nil, s.c.fail(ctx, op, err)
	}
	if diags := wire.DiagnosticsFromProto(resp.GetDiagnostics()); diags.HasErrors() {
		return nil, &Error{Plugin: s.c.name, Op: op, Err: diagsError(diags)}
	}
	return wire.PlanFromProto(resp), nil
}

func diagsError(diags schema.Diagnostics) error {
	var errs []error
	for _, d := range diags {
		if d.Severity == schema.Error {
			errs = append(errs, errors.New(d.Summary))
		}
	}
	return errors.Join(errs...)
}

// Capture runs a capture and replays its items into w: tree items as
// w.Tree, stream items through w.Stream, and the final result as w.Done.
// If the capture fails while a stream item is open, that item is closed
// with the error, so w never mistakes a partial item for a whole one.
func (s *SourceClient) Capture(ctx context.Context, inst pluginapi.Instance, w pluginapi.CaptureWriter) (err error) {
	op := "capture " + inst.Address
	if w == nil {
		return &Error{Plugin: s.c.name, Op: op, Err: errors.New("no capture writer")}
	}
	pi, err := s.c.instance(s.typeName, inst)
	if err != nil {
		return &Error{Plugin: s.c.name, Op: op, Err: err}
	}
	// Returning early (a failing writer, a protocol error) must stop the
	// plugin's side as well: cancelling the call does that.
	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := s.c.source.Capture(callCtx, &proto.CaptureRequest{Instance: pi})
	if err != nil {
		return s.c.fail(ctx, op, err)
	}

	var (
		cur     pluginapi.StreamWriter // open stream item
		curName string
		tree    string // tree item waiting for its ItemEnd
		done    bool
	)
	defer func() {
		if cur != nil && err != nil {
			_ = cur.CloseWithError(err)
		}
	}()
	protoErr := func(format string, args ...any) error {
		return &Error{Plugin: s.c.name, Op: op, Err: fmt.Errorf("protocol error: "+format, args...)}
	}
	for {
		m, rerr := stream.Recv()
		if rerr == io.EOF {
			if !done || cur != nil || tree != "" {
				return protoErr("the capture stream ended before the capture was done")
			}
			return nil
		}
		if rerr != nil {
			return s.c.fail(ctx, op, rerr)
		}
		if done {
			return protoErr("message after the end of the capture")
		}
		switch msg := m.GetMsg().(type) {
		case *proto.CaptureMessage_ItemStart:
			if cur != nil || tree != "" {
				return protoErr("item %q started inside another item", msg.ItemStart.GetName())
			}
			item, err := wire.ItemFromProto(msg.ItemStart)
			if err != nil {
				return protoErr("%v", err)
			}
			if item.Kind == pluginapi.ItemTree {
				if err := w.Tree(item); err != nil {
					return fmt.Errorf("capture %s: item %q: %w", inst.Address, item.Name, err)
				}
				tree = item.Name
				continue
			}
			sw, err := w.Stream(item)
			if err != nil {
				return fmt.Errorf("capture %s: item %q: %w", inst.Address, item.Name, err)
			}
			cur, curName = sw, item.Name
		case *proto.CaptureMessage_Data:
			if cur == nil {
				return protoErr("data outside a stream item")
			}
			if _, err := cur.Write(msg.Data.GetBytes()); err != nil {
				return fmt.Errorf("capture %s: item %q: %w", inst.Address, curName, err)
			}
		case *proto.CaptureMessage_ItemEnd:
			end := msg.ItemEnd
			switch {
			case tree != "" && end.GetName() == tree:
				if end.GetError() != "" {
					return &Error{Plugin: s.c.name, Op: op, Err: fmt.Errorf("item %q: %s", tree, end.GetError())}
				}
				tree = ""
			case cur != nil && end.GetName() == curName:
				if end.GetError() != "" {
					return &Error{Plugin: s.c.name, Op: op, Err: fmt.Errorf("item %q: %s", curName, end.GetError())}
				}
				sw := cur
				cur = nil
				if err := sw.Close(); err != nil {
					return fmt.Errorf("capture %s: item %q: %w", inst.Address, curName, err)
				}
			default:
				return protoErr("end of item %q that is not open", end.GetName())
			}
		case *proto.CaptureMessage_Done:
			if cur != nil || tree != "" {
				return protoErr("capture done while an item is open")
			}
			if err := w.Done(wire.CaptureResultFromProto(msg.Done)); err != nil {
				return fmt.Errorf("capture %s: %w", inst.Address, err)
			}
			done = true
		default:
			return protoErr("unknown message %T", msg)
		}
	}
}

// Apply writes a snapshot back through the plugin, sending the items r
// yields.
func (s *SourceClient) Apply(ctx context.Context, req pluginapi.ApplyRequest, r pluginapi.ItemReader) error {
	op := "apply " + req.Instance.Address
	if r == nil {
		return &Error{Plugin: s.c.name, Op: op, Err: errors.New("no item reader")}
	}
	pi, err := s.c.instance(s.typeName, req.Instance)
	if err != nil {
		return &Error{Plugin: s.c.name, Op: op, Err: err}
	}
	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := s.c.source.Apply(callCtx)
	if err != nil {
		return s.c.fail(ctx, op, err)
	}
	// send returns the plugin's own verdict when it has already ended the
	// call (gRPC reports that as io.EOF on Send).
	send := func(m *proto.ApplyMessage) error {
		if err := stream.Send(m); err != nil {
			if err == io.EOF {
				_, err = stream.CloseAndRecv()
				if err == nil {
					err = errors.New("the plugin ended the apply before receiving every item")
				}
			}
			return s.c.fail(ctx, op, err)
		}
		return nil
	}
	err = send(&proto.ApplyMessage{Msg: &proto.ApplyMessage_Begin{Begin: &proto.ApplyBegin{
		Instance:     pi,
		SnapshotMeta: req.SnapshotMeta,
		Destination:  req.Destination,
		DryRun:       req.DryRun,
		Options:      req.Options,
	}}})
	if err != nil {
		return err
	}
	buf := make([]byte, chunkSize)
	for {
		item, body, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("apply %s: read snapshot: %w", req.Instance.Address, err)
		}
		if err := wire.CheckItem(item); err != nil {
			return fmt.Errorf("apply %s: %w", req.Instance.Address, err)
		}
		if err := send(&proto.ApplyMessage{Msg: &proto.ApplyMessage_ItemStart{ItemStart: wire.ItemToProto(item)}}); err != nil {
			return err
		}
		end := &proto.ItemEnd{Name: item.Name}
		var readErr error
		if item.Kind == pluginapi.ItemStream && body != nil {
			for {
				n, rerr := io.ReadFull(body, buf)
				if n > 0 {
					if err := send(&proto.ApplyMessage{Msg: &proto.ApplyMessage_Data{Data: &proto.Data{Bytes: buf[:n]}}}); err != nil {
						return err
					}
				}
				if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
					break
				}
				if rerr != nil {
					readErr = rerr
					end.Error = rerr.Error()
					break
				}
			}
		}
		if err := send(&proto.ApplyMessage{Msg: &proto.ApplyMessage_ItemEnd{ItemEnd: end}}); err != nil {
			return err
		}
		if readErr != nil {
			// The plugin has been told the item failed; cancelling the call
			// (deferred) stops the rest of the apply.
			return fmt.Errorf("apply %s: read item %q: %w", req.Instance.Address, item.Name, readErr)
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return s.c.fail(ctx, op, err)
	}
	for _, n := range resp.GetNotes() {
		req.Note("%s", n)
	}
	return nil
}
