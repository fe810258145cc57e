// Package rpc implements both ends of the runner plugin protocol over
// go-plugin's gRPC transport:
//
//   - the plugin side: Server dispatches the gRPC services of plugins/proto
//     to the Go implementations of an sdk.Plugin;
//   - the host side: Client wraps the gRPC connection to a plugin process and
//     offers the same Go interfaces (sdk.Source, sdk.Target, sdk.Session,
//     sdk.Hook, sdk.Notifier), so the engine does not care whether a plugin
//     runs in-process or in a child process;
//   - the go-plugin glue both sides share: Handshake and GRPCPlugin.
//
// Everything the host sees from a plugin is an *Error naming the plugin and
// the operation; a plugin process that went away is reported as such
// (errors.Is(err, ErrCrashed)), not as a gRPC transport message.
package rpc

import (
	"context"
	"errors"
	"fmt"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// ProtocolVersion is the version of the runner plugin protocol
// (plugins/proto/runner.proto) this package speaks.
const ProtocolVersion = 1

// pluginKey names the one go-plugin "plugin" a runner plugin process serves.
// A runner plugin binary serves all its block types behind this single key;
// the kinds and types are routed by the protocol itself.
const pluginKey = "runner"

// Handshake is what host and plugin must agree on before talking. The
// cookie only keeps people from running a plugin binary by hand by mistake;
// it is not a security measure (the plugin's checksum and AutoMTLS are).
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "RUNNER_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "d2f4c3e1-6b1a-4e55-9a3e-backup-runner-plugin",
}

// GRPCPlugin is the go-plugin glue. A plugin process sets Impl; the host
// sets ClientOptions and gets a *Client from Dispense.
type GRPCPlugin struct {
	// net/rpc is refused on both sides: only gRPC is spoken.
	plugin.NetRPCUnsupportedPlugin

	// Impl serves the plugin's services (plugin side only).
	Impl *Server
	// ClientOptions configure the Client (host side only).
	ClientOptions ClientOptions
}

var _ plugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers the runner services on the plugin's gRPC server.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Impl == nil {
		return errors.New("runner plugin glue: no server to serve")
	}
	p.Impl.Register(s)
	return nil
}

// GRPCClient returns the host-side *Client. go-plugin cancels ctx when the
// plugin process has exited, which is how the Client tells a crash from
// other transport errors.
func (p *GRPCPlugin) GRPCClient(ctx context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (interface{}, error) {
	return NewClient(conn, ctx.Done(), p.ClientOptions), nil
}

// PluginSet is the go-plugin plugin set holding p. go-plugin's Reattach path
// needs it as ClientConfig.Plugins (it does not negotiate versions).
func PluginSet(p *GRPCPlugin) plugin.PluginSet {
	return plugin.PluginSet{pluginKey: p}
}

// VersionedPlugins is p for every protocol version spoken, for
// ClientConfig.VersionedPlugins and ServeConfig.VersionedPlugins.
func VersionedPlugins(p *GRPCPlugin) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{ProtocolVersion: PluginSet(p)}
}

// Dispense returns the *Client of a started go-plugin client protocol.
func Dispense(cp plugin.ClientProtocol) (*Client, error) {
	raw, err := cp.Dispense(pluginKey)
	if err != nil {
		return nil, fmt.Errorf("dispense: %w", err)
	}
	c, ok := raw.(*Client)
	if !ok {
		return nil, fmt.Errorf("dispense: got %T, not a runner plugin client", raw)
	}
	return c, nil
}

// LogLevelEnv is the environment variable through which the host tells a
// plugin process the lowest log level it wants ("debug", "info", "warn" or
// "error"), so that a plugin does not format and ship lines the host would
// drop.
const LogLevelEnv = "RUNNER_PLUGIN_LOG_LEVEL"
