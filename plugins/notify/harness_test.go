package notify

import (
	"context"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/sdktest"
)

// TestThroughTheHarness sends one notification of each type as the runner
// will: through gRPC, with the configuration crossing the wire, to real
// servers on loopback.
func TestThroughTheHarness(t *testing.T) {
	c := sdktest.Start(t, Plugin())
	ctx := context.Background()
	cert := newTestCert(t)
	ms := startMailServer(t, mailOpts{cert: cert, user: testUser, pass: testPassword, requireAuth: true})
	hook := newRecorder(t, false)
	ping := newRecorder(t, false)

	for _, tc := range []struct {
		typeName string
		attrs    map[string]cty.Value
	}{
		{EmailType, baseEmail(t, ms, cert)},
		{WebhookType, map[string]cty.Value{"url": cty.StringVal(hook.URL + "/hook")}},
		{PingType, map[string]cty.Value{"url": cty.StringVal(ping.URL + "/ping/uuid")}},
	} {
		n, err := c.Notifier(ctx, tc.typeName)
		if err != nil {
			t.Fatal(err)
		}
		inst := sdk.Instance{
			TypeName: tc.typeName, Address: "notify." + tc.typeName + ".ops",
			Config: config.MustBuild(n.Schema(), tc.attrs),
		}
		if err := n.Notify(ctx, inst, failureNote); err != nil {
			t.Fatalf("%s: %v", tc.typeName, err)
		}
	}
	if got := ms.received(); len(got) != 1 || !strings.Contains(got[0].data, "Subject: [runner "+hostname()+"] backup of site failed") {
		t.Errorf("mail: %+v", got)
	}
	if got := hook.got(); len(got) != 1 || !strings.Contains(got[0].body, `"event":"failure"`) {
		t.Errorf("webhook: %+v", got)
	}
	if got := ping.got(); len(got) != 1 || got[0].path != "/ping/uuid/fail" {
		t.Errorf("ping: %+v", got)
	}

	// An error crosses the wire with the notifier's name and the server.
	n, err := c.Notifier(ctx, WebhookType)
	if err != nil {
		t.Fatal(err)
	}
	gone := newRecorder(t, false, 404)
	inst := sdk.Instance{TypeName: WebhookType, Address: "notify.webhook.ops",
		Config: config.MustBuild(n.Schema(), map[string]cty.Value{"url": cty.StringVal(gone.URL + "/gone")})}
	err = n.Notify(ctx, inst, failureNote)
	if err == nil || !strings.Contains(err.Error(), `notify webhook "ops": POST `+gone.URL+"/gone: 404 Not Found") {
		t.Fatalf("err = %v", err)
	}
	t.Log(err)
}
