// Command testhost is a tiny runner for the host package's tests of what
// happens to plugin processes when the runner dies.
//
//	testhost internal-plugin NAME   serve the built-in test plugin NAME
//	testhost run NAME=PATH...       launch the built-in plugin and the given
//	                                pinned plugins, print "PID n" for each
//	                                and "READY", then wait for SIGTERM or
//	                                SIGINT, close the catalog and exit
//	testhost raw PATH               start PATH as a plugin without the
//	                                catalog (no parent-death signal), print
//	                                its PID and "READY", and wait forever
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/host"
	"github.com/backup-runner/runner/plugins/host/internal/testplugin"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/rpc"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testhost internal-plugin NAME | run NAME=PATH... | raw PATH")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case host.InternalPluginArg:
		if len(os.Args) != 3 {
			err = fmt.Errorf("usage: testhost internal-plugin NAME")
			break
		}
		testplugin.Mark(os.Args[2])
		sdk.Serve(testplugin.New(os.Args[2]))
		return
	case "run":
		err = run(os.Args[2:])
	case "raw":
		err = raw(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testhost:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cat := host.NewCatalog(host.Options{
		SelfExe:  self,
		Builtins: []*sdk.Plugin{testplugin.New("builtin")},
		Dirs:     []string{},
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	defer cat.Close()
	names := []string{"builtin"}
	for _, a := range args {
		name, path, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("bad argument %q", a)
		}
		sum, err := fileSum(path)
		if err != nil {
			return err
		}
		if err := cat.AddPinned(name, path, sum, "testhost"); err != nil {
			return err
		}
		names = append(names, name)
	}
	lctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, name := range names {
		inst, err := cat.Launch(lctx, name)
		if err != nil {
			return err
		}
		fmt.Printf("PID %d\n", inst.Pid())
	}
	// Calling a function starts the built-in's schema process too.
	fn, err := cat.Function(lctx, "builtin_echo")
	if err != nil {
		return err
	}
	if _, err := fn.Call([]cty.Value{cty.StringVal("x")}); err != nil {
		return err
	}
	fmt.Println("READY")
	<-ctx.Done()
	cat.Close()
	fmt.Println("CLOSED")
	return nil
}

func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func raw(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: testhost raw PATH")
	}
	cmd := exec.Command(args[0])
	cmd.Env = append(os.Environ(),
		rpc.Handshake.MagicCookieKey+"="+rpc.Handshake.MagicCookieValue,
		fmt.Sprintf("PLUGIN_PROTOCOL_VERSIONS=%d", rpc.ProtocolVersion))
	// Its own process group, like the catalog does, but no parent-death
	// signal: only the plugin's own watch of its parent can end it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	fmt.Printf("PID %d\n", cmd.Process.Pid)
	fmt.Println("READY")
	select {}
}
