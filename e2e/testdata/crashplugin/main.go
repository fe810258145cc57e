// Command crashplugin is a test plugin whose source "crash" dies in the
// middle of a capture, to prove that a crashing plugin fails only its own
// job. Its source "ok" works, for contrast.
package main

import (
	"context"
	"os"

	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

type crash struct{}

func (crash) Schema() *schema.Block { return &schema.Block{} }

func (crash) PlanCapture(context.Context, sdk.Instance) (*sdk.CapturePlan, error) {
	return &sdk.CapturePlan{Items: []sdk.ItemEstimate{{Name: "doomed", Kind: sdk.ItemStream, Bytes: 1 << 20}}}, nil
}

func (crash) Capture(_ context.Context, _ sdk.Instance, w sdk.CaptureWriter) error {
	s, err := w.Stream(sdk.Item{Name: "doomed", Kind: sdk.ItemStream})
	if err != nil {
		return err
	}
	_, _ = s.Write(make([]byte, 64<<10))
	os.Exit(7) // the crash: no goodbye, no error message
	return nil
}

func main() {
	sdk.Serve(&sdk.Plugin{
		Name:    "crash",
		Version: "0.0.1",
		Sources: map[string]sdk.Source{"crash": crash{}},
	})
}
