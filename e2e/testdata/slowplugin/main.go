// Command slowplugin is a test plugin whose source "slow" blocks in
// Capture until it is cancelled, so tests can interrupt or kill runner
// while a plugin is busy and check that no plugin process survives.
package main

import (
	"context"
	"os"
	"path/filepath"

	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

type slow struct{}

func (slow) Schema() *schema.Block { return &schema.Block{} }

func (slow) PlanCapture(context.Context, sdk.Instance) (*sdk.CapturePlan, error) {
	return &sdk.CapturePlan{}, nil
}

func (slow) Capture(ctx context.Context, _ sdk.Instance, _ sdk.CaptureWriter) error {
	// Tell the test that the capture is under way.
	if dir := os.Getenv("SLOWPLUGIN_READY_DIR"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "capturing"), nil, 0o644)
	}
	<-ctx.Done()
	return ctx.Err()
}

func main() {
	sdk.Serve(&sdk.Plugin{
		Name:    "slow",
		Version: "0.0.1",
		Sources: map[string]sdk.Source{"slow": slow{}},
	})
}
