package runner

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	config "github.com/backup-runner/runner/hcl"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

// notifyTimeout bounds sending one event to all of a job's notifiers.
const notifyTimeout = 2 * time.Minute

// Notify sends an event to every notifier of the job. Each notifier sends
// only the events its configuration lists. Failing to notify is logged and
// returned as warnings: it never changes a job's outcome. Notifications go
// out even when ctx was cancelled (a run stopped by SIGTERM still reports
// its failure), within their own deadline.
func (e *Engine) Notify(ctx context.Context, j *config.Job, n sdk.Notification) []string {
	plugins := &jobPlugins{launcher: e.Plugins}
	defer plugins.close()
	return e.notify(ctx, plugins, j, n)
}

// notify is Notify with the job's plugin processes, so that the several
// notifications of one run start each notifier plugin once.
func (e *Engine) notify(ctx context.Context, plugins *jobPlugins, j *config.Job, n sdk.Notification) []string {
	if len(j.Notify) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), notifyTimeout)
	defer cancel()
	if n.Fields == nil {
		n.Fields = map[string]string{}
	}
	n.Fields["job"] = j.Name
	n.Fields["role"] = string(j.Role)
	n.Fields["host"] = Hostname()
	var warnings []string
	for _, in := range j.Notify {
		c, err := plugins.get(ctx, schema.KindNotify, in.Block.TypeName)
		if err == nil {
			err = c.Notify(ctx, instance(in), n)
		}
		if err != nil {
			e.log().Warn("notification not sent", "job", j.Name, "notifier", in.Address, "event", n.Event, "error", err)
			warnings = append(warnings, fmt.Sprintf("%s: %v", in.Address, err))
		}
	}
	return warnings
}

// notifyRun tells the job's notifiers how a run ended: failure, or
// recovery (success after failures) or success, and forget when the run
// forgot snapshots.
func (e *Engine) notifyRun(ctx context.Context, plugins *jobPlugins, j *config.Job, res *JobResult) {
	if len(j.Notify) == 0 {
		return
	}
	fields := map[string]string{
		"status":      string(res.Status),
		"duration":    res.Duration.Round(time.Millisecond).String(),
		"files":       strconv.FormatInt(res.Files, 10),
		"bytes":       strconv.FormatInt(res.Bytes, 10),
		"added_bytes": strconv.FormatInt(res.AddedBytes, 10),
	}
	if res.Snapshot != "" {
		fields["snapshot"] = res.Snapshot
	}
	var body strings.Builder
	n := sdk.Notification{Fields: fields}
	switch {
	case res.Status == StatusFailure:
		n.Event = sdk.EventFailure
		n.Subject = fmt.Sprintf("job %s failed", j.Name)
		fields["error"] = res.Error
		fmt.Fprintf(&body, "The run of job %s failed: %s\n", j.Name, res.Error)
	case res.Recovered:
		n.Event = sdk.EventRecovery
		n.Subject = fmt.Sprintf("job %s recovered", j.Name)
		fmt.Fprintf(&body, "Job %s succeeded again after failing.\n", j.Name)
	default:
		n.Event = sdk.EventSuccess
		n.Subject = fmt.Sprintf("job %s succeeded", j.Name)
	}
	if res.Status == StatusSuccess {
		fmt.Fprintf(&body, "Snapshot %s: %d files, %d bytes captured, %d bytes new, in %s.\n",
			short(res.Snapshot), res.Files, res.Bytes, res.AddedBytes, res.Duration.Round(time.Millisecond))
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(&body, "warning: %s\n", w)
	}
	n.Body = body.String()
	warns := e.notify(ctx, plugins, j, n)
	if len(res.Forgotten) > 0 {
		var fb strings.Builder
		ids := make([]string, 0, len(res.Forgotten))
		for _, f := range res.Forgotten {
			ids = append(ids, short(f.Snapshot))
			fmt.Fprintf(&fb, "forgot %s from %s: %s\n", short(f.Snapshot), f.Time.Format(time.RFC3339), f.Reason)
		}
		warns = append(warns, e.notify(ctx, plugins, j, sdk.Notification{
			Event:   sdk.EventForget,
			Subject: fmt.Sprintf("job %s forgot %d snapshots", j.Name, len(res.Forgotten)),
			Body:    fb.String(),
			Fields:  map[string]string{"snapshots": strings.Join(ids, " "), "count": strconv.Itoa(len(res.Forgotten))},
		})...)
	}
	for _, w := range warns {
		res.Warnings = append(res.Warnings, "notify "+w)
	}
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
