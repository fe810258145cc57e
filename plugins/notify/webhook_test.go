package notify

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/sdk"
)

// hit is one request a test HTTP server received.
type hit struct {
	method, path, query string
	header              http.Header
	body                string
}

// recorder is an httptest server on loopback that records what it gets
// and answers with the status codes of replies in turn (then 200).
type recorder struct {
	*httptest.Server
	mu      sync.Mutex
	hits    []hit
	replies []int
}

func newRecorder(t *testing.T, tls bool, replies ...int) *recorder {
	t.Helper()
	r := &recorder{replies: replies}
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.hits = append(r.hits, hit{req.Method, req.URL.Path, req.URL.RawQuery, req.Header.Clone(), string(b)})
		code := http.StatusOK
		if len(r.replies) > 0 {
			code, r.replies = r.replies[0], r.replies[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(code)
		_, _ = io.WriteString(w, http.StatusText(code)+" from the test server\n")
	})
	r.Server = httptest.NewUnstartedServer(h)
	// A client refusing the test certificate is what some tests are
	// about: not worth a line on stderr.
	r.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tls {
		r.StartTLS()
	} else {
		r.Start()
	}
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) got() []hit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hit(nil), r.hits...)
}

// caFile writes the TLS test server's certificate as a PEM file.
func (r *recorder) caFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate().Raw})
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func instance(t *testing.T, n sdk.Notifier, typeName string, attrs map[string]cty.Value) sdk.Instance {
	t.Helper()
	v, err := config.Build(n.Schema(), attrs)
	if err != nil {
		t.Fatal(err)
	}
	return sdk.Instance{TypeName: typeName, Address: "notify." + typeName + ".ops", Config: v}
}

// fast is a webhook with short pauses between retries.
func fastWebhook() *Webhook { return &Webhook{backoff: 10 * time.Millisecond} }

func TestWebhookPostsTheDocumentedJSON(t *testing.T) {
	t.Setenv("RUNNER_NOW", "2026-01-31T05:00:00+01:00")
	srv := newRecorder(t, false)
	inst := instance(t, &Webhook{}, WebhookType, map[string]cty.Value{
		"url":     cty.StringVal(srv.URL + "/hooks/runner?channel=ops"),
		"headers": cty.MapVal(map[string]cty.Value{"Authorization": cty.StringVal("Bearer t0ken"), "X-Team": cty.StringVal("ops")}),
	})
	if err := fastWebhook().Notify(context.Background(), inst, failureNote); err != nil {
		t.Fatal(err)
	}
	hits := srv.got()
	if len(hits) != 1 {
		t.Fatalf("%d requests", len(hits))
	}
	h := hits[0]
	if h.method != "POST" || h.path != "/hooks/runner" || h.query != "channel=ops" {
		t.Errorf("request %s %s?%s", h.method, h.path, h.query)
	}
	for name, want := range map[string]string{
		"Content-Type":  "application/json",
		"Authorization": "Bearer t0ken",
		"X-Team":        "ops",
		"User-Agent":    "runner/" + config.Version,
	} {
		if got := h.header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	var got WebhookPayload
	dec := json.NewDecoder(strings.NewReader(h.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("body %s: %v", h.body, err)
	}
	want := WebhookPayload{
		Version:  1,
		Event:    "failure",
		Status:   "failed",
		Job:      "site",
		Subject:  "backup of site failed",
		Body:     "capture: mysqldump exited with status 2",
		Text:     "backup of site failed\n\ncapture: mysqldump exited with status 2",
		Fields:   failureNote.Fields,
		Time:     "2026-01-31T04:00:00Z",
		Host:     hostname(),
		Notifier: "notify.webhook.ops",
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("payload\n%s\nwant\n%s", gotJSON, wantJSON)
	}
	// The keys as documented, whatever the Go names.
	var keys map[string]any
	_ = json.Unmarshal([]byte(h.body), &keys)
	for _, k := range []string{"version", "event", "status", "job", "subject", "body", "text", "fields", "time", "host", "notifier"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("payload has no %q", k)
		}
	}
}

func TestWebhookMethodAndEvents(t *testing.T) {
	srv := newRecorder(t, false)
	inst := instance(t, &Webhook{}, WebhookType, map[string]cty.Value{
		"url":    cty.StringVal(srv.URL),
		"method": cty.StringVal("put"),
		"events": strs(EventRestore),
	})
	ctx := context.Background()
	for _, ev := range Events {
		if err := fastWebhook().Notify(ctx, inst, sdk.Notification{Event: ev}); err != nil {
			t.Fatal(err)
		}
	}
	hits := srv.got()
	if len(hits) != 1 || hits[0].method != "PUT" || !strings.Contains(hits[0].body, `"event":"restore"`) {
		t.Fatalf("hits %+v", hits)
	}
	// An empty Fields still gives an object, never null.
	if !strings.Contains(hits[0].body, `"fields":{}`) {
		t.Errorf("body %s", hits[0].body)
	}
}

func TestWebhookRetriesServerErrors(t *testing.T) {
	srv := newRecorder(t, false, 503, 503)
	inst := instance(t, &Webhook{}, WebhookType, map[string]cty.Value{"url": cty.StringVal(srv.URL)})
	if err := fastWebhook().Notify(context.Background(), inst, failureNote); err != nil {
		t.Fatal(err)
	}
	hits := srv.got()
	if len(hits) != 3 {
		t.Fatalf("%d attempts, want 3", len(hits))
	}
	for _, h := range hits[1:] {
		if h.body != hits[0].body {
			t.Error("a retry sent a different body")
		}
	}
}

func TestWebhookGivesUpAfterRetries(t *testing.T) {
	srv := newRecorder(t, false, 503, 503, 503, 503, 503)
	inst := instance(t, &Webhook{}, WebhookType, map[string]cty.Value{
		"url":     cty.StringVal(srv.URL + "/hook?token=s3cret"),
		"retries": cty.NumberIntVal(2),
	})
	err := fastWebhook().Notify(context.Background(), inst, failureNote)
	if err == nil {
		t.Fatal("no error")
	}
	t.Log(err)
	msg := err.Error()
	for _, want := range []string{`notify webhook "ops": POST ` + srv.URL + "/hook?token=…: 503 Service Unavailable", "(after 3 attempts)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "s3cret") {
		t.Errorf("error %q shows the token", msg)
	}
	if n := len(srv.got()); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
}

func TestWebhookClientErrorIsNotRetried(t *testing.T) {
	srv := newRecorder(t, false, 404)
	inst := instance(t, &Webhook{}, WebhookType, map[string]cty.Value{"url": cty.StringVal(srv.URL + "/nowhere")})
	err := fastWebhook().Notify(context.Background(), inst, failureNote)
	want := `notify webhook "ops": POST ` + srv.URL + "/nowhere: 404 Not Found: Not Found from the test server"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	if n := len(srv.got()); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}

func TestWebhookConnectionErrorsAreRetriedAndNamed(t *testing.T) {
	srv := newRecorder(t, false)
	url := srv.URL + "/hook?key=s3cret"
	srv.Close() // refuses connections from now on
	inst := instance(t, &Webhook{}, WebhookType, map[string]cty.Value{"url": cty.StringVal(url), "retries": cty.NumberIntVal(1)})
	err := fastWebhook().Notify(context.Background(), inst, failureNote)
	if err == nil || !strings.Contains(err.Error(), "POST "+srv.URL+"/hook?key=…: ") || !strings.Contains(err.Error(), "(after 2 attempts)") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q shows the key", err)
	}
}

func TestWebhookRetriesStayWithinTheTimeout(t *testing.T) {
	srv := newRecorder(t, false, 503, 503, 503, 503, 503, 503)
	inst := instance(t, &Webhook{}, WebhookType, map[string]cty.Value{
		"url": cty.StringVal(srv.URL), "timeout": cty.StringVal("1s"), "retries": cty.NumberIntVal(5),
	})
	start := time.Now()
	// Pauses of 400ms, 800ms: the second would end after the timeout.
	err := (&Webhook{backoff: 400 * time.Millisecond}).Notify(context.Background(), inst, failureNote)
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("took %s, timeout 1s", d)
	}
	if n := len(srv.got()); n != 2 {
		t.Errorf("%d attempts, want 2", n)
	}
}

func TestWebhookTrustsCAFile(t *testing.T) {
	srv := newRecorder(t, true)
	attrs := map[string]cty.Value{"url": cty.StringVal(srv.URL)}
	err := fastWebhook().Notify(context.Background(), instance(t, &Webhook{}, WebhookType, attrs), failureNote)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without ca_file: err = %v", err)
	}
	attrs["ca_file"] = cty.StringVal(srv.caFile(t))
	if err := fastWebhook().Notify(context.Background(), instance(t, &Webhook{}, WebhookType, attrs), failureNote); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.got()); n != 1 {
		t.Errorf("%d requests reached the server, want 1", n)
	}
}

func fastPing() *Ping { return &Ping{backoff: 10 * time.Millisecond} }

func TestPingURLsPerEvent(t *testing.T) {
	srv := newRecorder(t, false)
	inst := instance(t, &Ping{}, PingType, map[string]cty.Value{"url": cty.StringVal(srv.URL + "/ping/0b6f1a6c/?rid=7")})
	ctx := context.Background()
	for _, ev := range Events {
		if err := fastPing().Notify(ctx, inst, sdk.Notification{Event: ev, Body: ev + " body", Fields: map[string]string{"job": "site"}}); err != nil {
			t.Fatal(err)
		}
	}
	hits := srv.got()
	want := []string{
		"POST /ping/0b6f1a6c/start?rid=7 start body",
		"POST /ping/0b6f1a6c/?rid=7 success body",
		"POST /ping/0b6f1a6c/fail?rid=7 failure body",
		"POST /ping/0b6f1a6c/?rid=7 recovery body",
	}
	if len(hits) != len(want) {
		t.Fatalf("%d pings, want %d: %+v", len(hits), len(want), hits)
	}
	for i, h := range hits {
		first, _, _ := strings.Cut(h.body, "\n")
		if got := h.method + " " + h.path + "?" + h.query + " " + first; got != want[i] {
			t.Errorf("ping %d: %q, want %q", i, got, want[i])
		}
		if !strings.Contains(h.body, "job: site") || h.header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("ping %d: body %q, type %q", i, h.body, h.header.Get("Content-Type"))
		}
	}
}

func TestPingGetWithOwnSuffixes(t *testing.T) {
	srv := newRecorder(t, false)
	inst := instance(t, &Ping{}, PingType, map[string]cty.Value{
		"url":            cty.StringVal(srv.URL + "/api/push/abc"),
		"method":         cty.StringVal("GET"),
		"start_suffix":   cty.StringVal(""),
		"success_suffix": cty.StringVal("/0"),
		"fail_suffix":    cty.StringVal("/1"),
		"events":         strs(EventSuccess, EventFailure),
	})
	for _, ev := range []string{EventStart, EventSuccess, EventFailure} {
		if err := fastPing().Notify(context.Background(), inst, sdk.Notification{Event: ev, Body: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, h := range srv.got() {
		got = append(got, h.method+" "+h.path+" "+h.body)
	}
	if want := []string{"GET /api/push/abc/0 ", "GET /api/push/abc/1 "}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("pings %q, want %q", got, want)
	}
}

func TestPingErrorsAreNamedAndRetried(t *testing.T) {
	srv := newRecorder(t, false, 503, 404)
	inst := instance(t, &Ping{}, PingType, map[string]cty.Value{"url": cty.StringVal(srv.URL + "/ping/uuid")})
	err := fastPing().Notify(context.Background(), inst, sdk.Notification{Event: EventFailure})
	want := `notify ping "ops": POST ` + srv.URL + "/ping/uuid/fail: 404 Not Found: Not Found from the test server (after 2 attempts)"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
}

func TestPingBodyIsBounded(t *testing.T) {
	srv := newRecorder(t, false)
	inst := instance(t, &Ping{}, PingType, map[string]cty.Value{"url": cty.StringVal(srv.URL)})
	long := strings.Repeat("é", maxPingBody)
	if err := fastPing().Notify(context.Background(), inst, sdk.Notification{Event: EventFailure, Body: long}); err != nil {
		t.Fatal(err)
	}
	b := srv.got()[0].body
	if len(b) > maxPingBody || !strings.HasPrefix(b, "éé") || strings.ToValidUTF8(b, "?") != b {
		t.Fatalf("body of %d bytes, valid UTF-8: %v", len(b), strings.ToValidUTF8(b, "?") == b)
	}
}
