package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/backup-runner/runner/plugins/proto"
	"github.com/backup-runner/runner/plugins/sdk/internal/pluginapi"
	"github.com/backup-runner/runner/plugins/sdk/schema"
	"github.com/backup-runner/runner/plugins/sdk/wire"
)

type targetServer struct {
	proto.UnimplementedTargetServer
	s *Server
}

func (ts *targetServer) Prepare(ctx context.Context, req *proto.PrepareRequest) (*proto.PrepareResponse, error) {
	impl, inst, err := ts.s.instance(schema.KindTarget, req.GetInstance())
	if err != nil {
		return nil, err
	}
	var sess pluginapi.Session
	var root string
	err = ts.s.call("Prepare", inst.Address, func() error {
		var err error
		sess, err = impl.(pluginapi.Target).Prepare(ctx, inst, req.GetReadOnly())
		if err == nil && sess == nil {
			err = errors.New("Prepare returned no session")
		}
		if err == nil {
			root = sess.LocalRoot()
		}
		return err
	})
	if err != nil {
		return nil, toStatus(ctx, err)
	}
	id, err := ts.s.addSession(&serverSession{sess: sess, address: inst.Address})
	if err != nil {
		// Nobody could release it later: undo Prepare now.
		_ = ts.s.call("Release", inst.Address, func() error { return sess.Release(ctx) })
		return nil, err
	}
	return &proto.PrepareResponse{Session: id, LocalRoot: root}, nil
}

func (ts *targetServer) Release(ctx context.Context, req *proto.ReleaseRequest) (*proto.ReleaseResponse, error) {
	// The session is forgotten even if Release fails: Release runs exactly
	// once, and a second attempt could not do better than the plugin did.
	ss, err := ts.s.takeSession(req.GetSession())
	if err != nil {
		return nil, err
	}
	if err := ts.s.call("Release", ss.address, func() error { return ss.sess.Release(ctx) }); err != nil {
		return nil, toStatus(ctx, err)
	}
	return &proto.ReleaseResponse{}, nil
}

func (ts *targetServer) Put(stream proto.Target_PutServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	h := first.GetHeader()
	if h == nil {
		return status.Error(codes.InvalidArgument, "put stream must start with a header")
	}
	if h.GetName() == "" {
		return status.Error(codes.InvalidArgument, "put: no object name")
	}
	ss, err := ts.s.session(h.GetSession())
	if err != nil {
		return err
	}
	r := &putReader{stream: stream, name: h.GetName(), size: h.GetSize()}
	err = ts.s.call("Put", ss.address, func() error {
		return ss.sess.Put(stream.Context(), h.GetName(), r, h.GetSize())
	})
	if err == nil {
		// Success without reading everything means a truncated object.
		var n int64
		n, err = io.Copy(io.Discard, r)
		if err == nil && n > 0 {
			err = status.Errorf(codes.Internal, "put %s: Put returned before reading %d bytes of it", h.GetName(), n)
		}
	}
	if err != nil {
		return toStatus(stream.Context(), err)
	}
	return stream.SendAndClose(&proto.PutResponse{})
}

// putReader reads the Data of a Put stream. When the header gave a size, a
// body of another length is an error, so the plugin never stores a
// truncated object as complete.
type putReader struct {
	stream proto.Target_PutServer
	name   string
	size   int64 // -1: unknown
	got    int64
	buf    []byte
	err    error
}

func (r *putReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		m, err := r.stream.Recv()
		switch {
		case err == io.EOF:
			if r.size >= 0 && r.got != r.size {
				r.err = fmt.Errorf("put %s: got %d bytes, header said %d: %w", r.name, r.got, r.size, io.ErrUnexpectedEOF)
			} else {
				r.err = io.EOF
			}
		case err != nil:
			r.err = err
		case m.GetData() == nil:
			r.err = fmt.Errorf("put %s: unexpected %T after the header", r.name, m.GetMsg())
		default:
			r.buf = m.GetData().GetBytes()
			r.got += int64(len(r.buf))
			if r.size >= 0 && r.got > r.size {
				r.buf = nil
				r.err = fmt.Errorf("put %s: more than the %d bytes the header said", r.name, r.size)
			}
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (ts *targetServer) Get(req *proto.GetRequest, stream proto.Target_GetServer) error {
	ss, err := ts.s.session(req.GetSession())
	if err != nil {
		return err
	}
	if req.GetOffset() < 0 || req.GetLength() < 0 {
		return status.Errorf(codes.InvalidArgument, "get %s: negative offset or length", req.GetName())
	}
	return toStatus(stream.Context(), ts.s.call("Get", ss.address, func() error {
		rc, err := ss.sess.Get(stream.Context(), req.GetName(), req.GetOffset(), req.GetLength())
		if err != nil {
			return err
		}
		if rc == nil {
			return fmt.Errorf("get %s: Get returned no reader", req.GetName())
		}
		defer rc.Close()
		buf := make([]byte, chunkSize)
		for {
			n, err := io.ReadFull(rc, buf)
			if n > 0 {
				if serr := stream.Send(&proto.Data{Bytes: buf[:n]}); serr != nil {
					return serr
				}
			}
			switch err {
			case nil:
			case io.EOF, io.ErrUnexpectedEOF:
				return nil
			default:
				return fmt.Errorf("get %s: %w", req.GetName(), err)
			}
		}
	}))
}

func (ts *targetServer) List(req *proto.ListRequest, stream proto.Target_ListServer) error {
	ss, err := ts.s.session(req.GetSession())
	if err != nil {
		return err
	}
	return toStatus(stream.Context(), ts.s.call("List", ss.address, func() error {
		return ss.sess.List(stream.Context(), req.GetPrefix(), func(oi pluginapi.ObjectInfo) error {
			return stream.Send(wire.ObjectInfoToProto(oi))
		})
	}))
}

func (ts *targetServer) Delete(ctx context.Context, req *proto.DeleteRequest) (*proto.DeleteResponse, error) {
	ss, err := ts.s.session(req.GetSession())
	if err != nil {
		return nil, err
	}
	if err := ts.s.call("Delete", ss.address, func() error { return ss.sess.Delete(ctx, req.GetName()) }); err != nil {
		return nil, toStatus(ctx, err)
	}
	return &proto.DeleteResponse{}, nil
}

func (ts *targetServer) Stat(ctx context.Context, req *proto.StatRequest) (*proto.ObjectInfo, error) {
	ss, err := ts.s.session(req.GetSession())
	if err != nil {
		return nil, err
	}
	var oi pluginapi.ObjectInfo
	err = ts.s.call("Stat", ss.address, func() error {
		var err error
		oi, err = ss.sess.Stat(ctx, req.GetName())
		return err
	})
	if err != nil {
		return nil, toStatus(ctx, err)
	}
	return wire.ObjectInfoToProto(oi), nil
}

func (ts *targetServer) Usage(ctx context.Context, req *proto.UsageRequest) (*proto.UsageResponse, error) {
	ss, err := ts.s.session(req.GetSession())
	if err != nil {
		return nil, err
	}
	var u pluginapi.Usage
	err = ts.s.call("Usage", ss.address, func() error {
		var err error
		u, err = ss.sess.Usage(ctx)
		return err
	})
	if err != nil {
		return nil, toStatus(ctx, err)
	}
	return wire.UsageToProto(u), nil
}
