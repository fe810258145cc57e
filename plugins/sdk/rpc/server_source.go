package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/backup-runner/runner/plugins/proto"
	"github.com/backup-runner/runner/plugins/sdk/internal/pluginapi"
	"github.com/backup-runner/runner/plugins/sdk/schema"
	"github.com/backup-runner/runner/plugins/sdk/wire"
)

type sourceServer struct {
	proto.UnimplementedSourceServer
	s *Server
}

func (ss *sourceServer) PlanCapture(ctx context.Context, req *proto.PlanCaptureRequest) (*proto.PlanCaptureResponse, error) {
	impl, inst, err := ss.s.instance(schema.KindSource, req.GetInstance())
	if err != nil {
		return nil, err
	}
	var plan *pluginapi.CapturePlan
	err = ss.s.call("PlanCapture", inst.Address, func() error {
		var err error
		plan, err = impl.(pluginapi.Source).PlanCapture(ctx, inst)
		return err
	})
	if err != nil {
		return nil, toStatus(ctx, err)
	}
	return wire.PlanToProto(plan), nil
}

func (ss *sourceServer) Capture(req *proto.CaptureRequest, stream proto.Source_CaptureServer) error {
	impl, inst, err := ss.s.instance(schema.KindSource, req.GetInstance())
	if err != nil {
		return err
	}
	w := &captureWriter{stream: stream, names: map[string]bool{}}
	err = ss.s.call("Capture", inst.Address, func() error {
		return impl.(pluginapi.Source).Capture(stream.Context(), inst, w)
	})
	// Whatever happened, the writer is dead from now on: a goroutine the
	// plugin left behind must not write into a stream gRPC has finished.
	if ferr := w.finish(err == nil); err == nil {
		err = ferr
	}
	return toStatus(stream.Context(), err)
}

// captureWriter is the plugin-side CaptureWriter: it turns calls into
// CaptureMessages. gRPC streams must not be sent on concurrently, so every
// send happens under mu.
type captureWriter struct {
	stream proto.Source_CaptureServer

	mu     sync.Mutex
	open   *streamWriter   // the stream item being written, if any
	names  map[string]bool // item names seen, which must be unique
	done   bool            // Done was sent
	closed bool            // Capture returned
}

var _ pluginapi.CaptureWriter = (*captureWriter)(nil)

// usable reports why the writer cannot take a new item now, if it cannot.
// Called with mu held.
func (w *captureWriter) usable() error {
	switch {
	case w.closed:
		return errors.New("capture writer used after Capture returned")
	case w.done:
		return errors.New("capture writer used after Done")
	case w.open != nil:
		return fmt.Errorf("stream item %q is still open: close it first", w.open.name)
	}
	return nil
}

func (w *captureWriter) start(item pluginapi.Item, kind pluginapi.ItemKind) (*proto.ItemStart, error) {
	if item.Kind == 0 {
		item.Kind = kind
	}
	if item.Kind != kind {
		return nil, fmt.Errorf("item %q: a %s item cannot be written as a %s item", item.Name, item.Kind, kind)
	}
	if err := wire.CheckItem(item); err != nil {
		return nil, err
	}
	if w.names[item.Name] {
		return nil, fmt.Errorf("item %q written twice", item.Name)
	}
	w.names[item.Name] = true
	return wire.ItemToProto(item), nil
}

func (w *captureWriter) Tree(item pluginapi.Item) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	ps, err := w.start(item, pluginapi.ItemTree)
	if err != nil {
		return err
	}
	if err := w.stream.Send(&proto.CaptureMessage{Msg: &proto.CaptureMessage_ItemStart{ItemStart: ps}}); err != nil {
		return err
	}
	return w.stream.Send(&proto.CaptureMessage{Msg: &proto.CaptureMessage_ItemEnd{ItemEnd: &proto.ItemEnd{Name: item.Name}}})
}

func (w *captureWriter) Stream(item pluginapi.Item) (pluginapi.StreamWriter, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return nil, err
	}
	ps, err := w.start(item, pluginapi.ItemStream)
	if err != nil {
		return nil, err
	}
	if err := w.stream.Send(&proto.CaptureMessage{Msg: &proto.CaptureMessage_ItemStart{ItemStart: ps}}); err != nil {
		return nil, err
	}
	w.open = &streamWriter{w: w, name: item.Name}
	return w.open, nil
}

func (w *captureWriter) Done(res pluginapi.CaptureResult) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	w.done = true
	return w.stream.Send(&proto.CaptureMessage{Msg: &proto.CaptureMessage_Done{Done: wire.CaptureResultToProto(res)}})
}

// finish ends the capture after the plugin's Capture returned. On success it
// checks that no stream item was left open and sends the Done the plugin
// did not send itself.
func (w *captureWriter) finish(ok bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	open, done := w.open, w.done
	w.closed = true
	if !ok {
		return nil
	}
	if open != nil {
		return status.Errorf(codes.Internal, "Capture returned with stream item %q still open", open.name)
	}
	if !done {
		return w.stream.Send(&proto.CaptureMessage{Msg: &proto.CaptureMessage_Done{Done: &proto.CaptureDone{}}})
	}
	return nil
}

// streamWriter is the body of one stream item. Writes are gathered into
// chunkSize Data messages.
type streamWriter struct {
	w     *captureWriter
	name  string
	buf   []byte
	ended bool
}

func (sw *streamWriter) Write(p []byte) (int, error) {
	sw.w.mu.Lock()
	defer sw.w.mu.Unlock()
	if err := sw.writable(); err != nil {
		return 0, err
	}
	n := 0
	for len(p) > 0 {
		if len(sw.buf) == 0 && len(p) >= chunkSize {
			// A whole chunk straight from the caller's slice: gRPC
			// encodes the message before Send returns, so no copy.
			if err := sw.sendData(p[:chunkSize]); err != nil {
				return n, err
			}
			p, n = p[chunkSize:], n+chunkSize
			continue
		}
		if sw.buf == nil {
			sw.buf = make([]byte, 0, chunkSize)
		}
		k := min(chunkSize-len(sw.buf), len(p))
		sw.buf = append(sw.buf, p[:k]...)
		p, n = p[k:], n+k
		if len(sw.buf) == chunkSize {
			if err := sw.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// writable is called with w.mu held.
func (sw *streamWriter) writable() error {
	if sw.ended {
		return fmt.Errorf("stream item %q already closed", sw.name)
	}
	if sw.w.closed {
		return fmt.Errorf("stream item %q written after Capture returned", sw.name)
	}
	return nil
}

func (sw *streamWriter) sendData(b []byte) error {
	return sw.w.stream.Send(&proto.CaptureMessage{Msg: &proto.CaptureMessage_Data{Data: &proto.Data{Bytes: b}}})
}

func (sw *streamWriter) flush() error {
	if len(sw.buf) == 0 {
		return nil
	}
	err := sw.sendData(sw.buf)
	sw.buf = sw.buf[:0]
	return err
}

func (sw *streamWriter) Close() error {
	return sw.end(nil)
}

func (sw *streamWriter) CloseWithError(err error) error {
	if err == nil {
		err = errors.New("stream closed with an unspecified error")
	}
	return sw.end(err)
}

func (sw *streamWriter) end(failure error) error {
	sw.w.mu.Lock()
	defer sw.w.mu.Unlock()
	if err := sw.writable(); err != nil {
		return err
	}
	sw.ended = true
	sw.w.open = nil
	end := &proto.ItemEnd{Name: sw.name}
	if failure != nil {
		end.Error = failure.Error()
		sw.buf = nil
	} else if err := sw.flush(); err != nil {
		return err
	}
	return sw.w.stream.Send(&proto.CaptureMessage{Msg: &proto.CaptureMessage_ItemEnd{ItemEnd: end}})
}

// ---------------------------------------------------------------- apply

func (ss *sourceServer) Apply(stream proto.Source_ApplyServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	begin := first.GetBegin()
	if begin == nil {
		return status.Error(codes.InvalidArgument, "apply stream must start with ApplyBegin")
	}
	impl, inst, err := ss.s.instance(schema.KindSource, begin.GetInstance())
	if err != nil {
		return err
	}
	applier, ok := impl.(pluginapi.Applier)
	if !ok {
		return status.Errorf(codes.Unimplemented, "source type %q cannot apply snapshots", inst.TypeName)
	}
	req := pluginapi.ApplyRequest{
		Instance:     inst,
		SnapshotMeta: begin.GetSnapshotMeta(),
		Destination:  begin.GetDestination(),
		DryRun:       begin.GetDryRun(),
		Options:      begin.GetOptions(),
	}
	var (
		notesMu sync.Mutex
		notes   []string
	)
	req.Notes = func(n string) { notesMu.Lock(); notes = append(notes, n); notesMu.Unlock() }
	r := &applyReader{stream: stream}
	err = ss.s.call("Apply", inst.Address, func() error {
		return applier.Apply(stream.Context(), req, r)
	})
	if err == nil {
		// A plugin that returns success without having read every item
		// would silently skip part of a restore: refuse that.
		err = r.rest()
	}
	if err != nil {
		return toStatus(stream.Context(), err)
	}
	notesMu.Lock()
	defer notesMu.Unlock()
	return stream.SendAndClose(&proto.ApplyResponse{Notes: notes})
}

// applyReader is the plugin-side ItemReader over the Apply stream.
type applyReader struct {
	stream proto.Source_ApplyServer
	cur    *itemBody
	eof    bool
}

var _ pluginapi.ItemReader = (*applyReader)(nil)

func (r *applyReader) Next() (pluginapi.Item, io.Reader, error) {
	if r.eof {
		return pluginapi.Item{}, nil, io.EOF
	}
	if r.cur != nil {
		// Skip what the plugin did not read of the previous item.
		if _, err := io.Copy(io.Discard, r.cur); err != nil {
			return pluginapi.Item{}, nil, err
		}
		r.cur = nil
	}
	m, err := r.stream.Recv()
	if err == io.EOF {
		r.eof = true
		return pluginapi.Item{}, nil, io.EOF
	}
	if err != nil {
		return pluginapi.Item{}, nil, err
	}
	ps := m.GetItemStart()
	if ps == nil {
		return pluginapi.Item{}, nil, fmt.Errorf("apply protocol: expected an item header, got %T", m.GetMsg())
	}
	item, err := wire.ItemFromProto(ps)
	if err != nil {
		return pluginapi.Item{}, nil, fmt.Errorf("apply protocol: %w", err)
	}
	r.cur = &itemBody{stream: r.stream, name: item.Name, tree: item.Kind == pluginapi.ItemTree}
	return item, r.cur, nil
}

// rest reads what is left after the plugin's Apply returned and fails if
// an item was left unread.
func (r *applyReader) rest() error {
	if r.cur != nil {
		n, err := io.Copy(io.Discard, r.cur)
		if err != nil {
			return err
		}
		if n > 0 {
			return status.Errorf(codes.Internal, "Apply returned before reading all of item %q", r.cur.name)
		}
	}
	item, _, err := r.Next()
	switch {
	case err == io.EOF:
		return nil
	case err != nil:
		return err
	}
	return status.Errorf(codes.Internal, "Apply returned before reading item %q", item.Name)
}

// itemBody reads the Data of one item up to its ItemEnd. A tree item has
// no Data, so its body is empty.
type itemBody struct {
	stream proto.Source_ApplyServer
	name   string
	tree   bool
	buf    []byte
	err    error // sticky: io.EOF at the end
}

func (b *itemBody) Read(p []byte) (int, error) {
	for len(b.buf) == 0 {
		if b.err != nil {
			return 0, b.err
		}
		m, err := b.stream.Recv()
		if err == io.EOF {
			b.err = fmt.Errorf("apply protocol: stream ended inside item %q", b.name)
			continue
		}
		if err != nil {
			b.err = err
			continue
		}
		switch msg := m.GetMsg().(type) {
		case *proto.ApplyMessage_Data:
			if b.tree {
				b.err = fmt.Errorf("apply protocol: data for tree item %q", b.name)
				continue
			}
			b.buf = msg.Data.GetBytes()
		case *proto.ApplyMessage_ItemEnd:
			end := msg.ItemEnd
			switch {
			case end.GetName() != b.name:
				b.err = fmt.Errorf("apply protocol: end of item %q inside item %q", end.GetName(), b.name)
			case end.GetError() != "":
				b.err = fmt.Errorf("item %q: the host could not read it: %s", b.name, end.GetError())
			default:
				b.err = io.EOF
			}
		default:
			b.err = fmt.Errorf("apply protocol: unexpected %s inside item %q",
				strings.TrimPrefix(fmt.Sprintf("%T", msg), "*proto.ApplyMessage_"), b.name)
		}
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	return n, nil
}
