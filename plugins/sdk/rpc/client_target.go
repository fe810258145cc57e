package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/backup-runner/runner/plugins/proto"
	"github.com/backup-runner/runner/plugins/sdk/internal/pluginapi"
	"github.com/backup-runner/runner/plugins/sdk/schema"
	"github.com/backup-runner/runner/plugins/sdk/wire"
)

// TargetClient is a plugin target type seen from the host.
type TargetClient struct {
	c        *Client
	typeName string
	block    *schema.Block
}

var _ pluginapi.Target = (*TargetClient)(nil)

// Target returns the target type typeName of the plugin.
func (c *Client) Target(ctx context.Context, typeName string) (*TargetClient, error) {
	b, err := c.block(ctx, schema.KindTarget, typeName)
	if err != nil {
		return nil, err
	}
	return &TargetClient{c: c, typeName: typeName, block: b}, nil
}

// Schema returns the target type's block schema.
func (t *TargetClient) Schema() *schema.Block { return t.block }

// Prepare brings the target up and returns a session, a *SessionClient.
func (t *TargetClient) Prepare(ctx context.Context, inst pluginapi.Instance, readOnly bool) (pluginapi.Session, error) {
	op := "prepare " + inst.Address
	pi, err := t.c.instance(t.typeName, inst)
	if err != nil {
		return nil, &Error{Plugin: t.c.name, Op: op, Err: err}
	}
	resp, err := t.c.target.Prepare(ctx, &proto.PrepareRequest{Instance: pi, ReadOnly: readOnly})
	if err != nil {
		return nil, t.c.fail(ctx, op, err)
	}
	return &SessionClient{c: t.c, id: resp.GetSession(), address: inst.Address, localRoot: resp.GetLocalRoot()}, nil
}

// SessionClient is a prepared target session seen from the host.
type SessionClient struct {
	c         *Client
	id        string
	address   string
	localRoot string

	mu       sync.Mutex
	released bool
}

var _ pluginapi.Session = (*SessionClient)(nil)

// LocalRoot is the directory the plugin says the host may use directly, or "".
func (s *SessionClient) LocalRoot() string { return s.localRoot }

func (s *SessionClient) op(verb, name string) string {
	if name == "" {
		return fmt.Sprintf("%s %s", verb, s.address)
	}
	return fmt.Sprintf("%s %s %s", verb, s.address, name)
}

// Put stores an object, streaming r in chunks. If reading r fails, the call
// is cancelled, so the plugin never stores the object.
func (s *SessionClient) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	op := s.op("put", name)
	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := s.c.target.Put(callCtx)
	if err != nil {
		return s.c.fail(ctx, op, err)
	}
	send := func(m *proto.PutMessage) error {
		if err := stream.Send(m); err != nil {
			if err == io.EOF {
				// The plugin ended the call early: its status says why.
				_, err = stream.CloseAndRecv()
				if err == nil {
					err = errors.New("the plugin ended the put before receiving all data")
				}
			}
			return s.c.fail(ctx, op, err)
		}
		return nil
	}
	if err := send(&proto.PutMessage{Msg: &proto.PutMessage_Header{Header: &proto.PutHeader{
		Session: s.id, Name: name, Size: size,
	}}}); err != nil {
		return err
	}
	buf := make([]byte, chunkSize)
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if err := send(&proto.PutMessage{Msg: &proto.PutMessage_Data{Data: &proto.Data{Bytes: buf[:n]}}}); err != nil {
				return err
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("%s: read data: %w", op, rerr)
		}
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		return s.c.fail(ctx, op, err)
	}
	return nil
}

// Get reads length bytes of an object at offset (length 0: to the end).
// A missing object is reported by Get itself, as an error matching
// sdk.ErrNotFound. Close the reader to end the call early.
func (s *SessionClient) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	op := s.op("get", name)
	if offset < 0 || length < 0 {
		return nil, &Error{Plugin: s.c.name, Op: op, Err: errors.New("negative offset or length")}
	}
	callCtx, cancel := context.WithCancel(ctx)
	stream, err := s.c.target.Get(callCtx, &proto.GetRequest{Session: s.id, Name: name, Offset: offset, Length: length})
	if err != nil {
		cancel()
		return nil, s.c.fail(ctx, op, err)
	}
	// Receive the first message now: the plugin opens the object before
	// sending anything, so "not found" arrives here and not on a later Read.
	gr := &getReader{s: s, ctx: ctx, op: op, stream: stream, cancel: cancel}
	if err := gr.recv(); err != nil && err != io.EOF {
		cancel()
		return nil, err
	}
	return gr, nil
}

type getReader struct {
	s      *SessionClient
	ctx    context.Context
	op     string
	stream proto.Target_GetClient
	cancel context.CancelFunc
	buf    []byte
	err    error
}

func (g *getReader) recv() error {
	d, err := g.stream.Recv()
	switch {
	case err == io.EOF:
		g.err = io.EOF
		g.cancel()
	case err != nil:
		g.err = g.s.c.fail(g.ctx, g.op, err)
		g.cancel()
	default:
		g.buf = d.GetBytes()
	}
	return g.err
}

func (g *getReader) Read(p []byte) (int, error) {
	for len(g.buf) == 0 {
		if g.err != nil {
			return 0, g.err
		}
		_ = g.recv()
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	return n, nil
}

func (g *getReader) Close() error {
	g.cancel()
	if g.err == nil {
		g.err = errors.New("read after Close")
	}
	return nil
}

// List calls fn for every object whose name starts with prefix. An error
// from fn stops the listing and is returned as it is.
func (s *SessionClient) List(ctx context.Context, prefix string, fn func(pluginapi.ObjectInfo) error) error {
	op := s.op("list", prefix)
	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := s.c.target.List(callCtx, &proto.ListRequest{Session: s.id, Prefix: prefix})
	if err != nil {
		return s.c.fail(ctx, op, err)
	}
	for {
		oi, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return s.c.fail(ctx, op, err)
		}
		if err := fn(wire.ObjectInfoFromProto(oi)); err != nil {
			return err
		}
	}
}

// Delete removes an object.
func (s *SessionClient) Delete(ctx context.Context, name string) error {
	_, err := s.c.target.Delete(ctx, &proto.DeleteRequest{Session: s.id, Name: name})
	return s.c.fail(ctx, s.op("delete", name), err)
}

// Stat describes an object; a missing one gives an error matching
// sdk.ErrNotFound.
func (s *SessionClient) Stat(ctx context.Context, name string) (pluginapi.ObjectInfo, error) {
	oi, err := s.c.target.Stat(ctx, &proto.StatRequest{Session: s.id, Name: name})
	if err != nil {
		return pluginapi.ObjectInfo{}, s.c.fail(ctx, s.op("stat", name), err)
	}
	return wire.ObjectInfoFromProto(oi), nil
}

// Usage reports space on the target.
func (s *SessionClient) Usage(ctx context.Context) (pluginapi.Usage, error) {
	u, err := s.c.target.Usage(ctx, &proto.UsageRequest{Session: s.id})
	if err != nil {
		return pluginapi.Usage{}, s.c.fail(ctx, s.op("usage", ""), err)
	}
	return wire.UsageFromProto(u), nil
}

// Release undoes Prepare. Only the first call reaches the plugin.
func (s *SessionClient) Release(ctx context.Context) error {
	s.mu.Lock()
	already := s.released
	s.released = true
	s.mu.Unlock()
	if already {
		return &Error{Plugin: s.c.name, Op: s.op("release", ""), Err: errors.New("session already released")}
	}
	_, err := s.c.target.Release(ctx, &proto.ReleaseRequest{Session: s.id})
	return s.c.fail(ctx, s.op("release", ""), err)
}
