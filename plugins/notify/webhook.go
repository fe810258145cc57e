package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

const defaultWebhookTimeout = "30s"

var (
	defaultWebhookEvents = []string{EventFailure, EventRecovery}
	webhookMethods       = []string{"POST", "PUT", "PATCH"}
)

// WebhookPayloadVersion is the version of the JSON object a webhook
// sends; it changes only when a field changes meaning or goes away.
const WebhookPayloadVersion = 1

// WebhookPayload is the JSON object the webhook notifier sends:
//
//	{
//	  "version":  1,
//	  "event":    "failure",
//	  "status":   "failed",
//	  "job":      "site",
//	  "subject":  "backup of site failed",
//	  "body":     "capture: mysqldump exited with status 2",
//	  "text":     "backup of site failed\n\ncapture: mysqldump exited with status 2",
//	  "fields":   {"job": "site", "status": "failed"},
//	  "time":     "2026-01-31T04:00:00Z",
//	  "host":     "web1",
//	  "notifier": "notify.webhook.chat"
//	}
//
// status is the "status" field, or a word for the event; job is the "job"
// field, left out when there is none; text is subject and body in one
// string, which chat services that read a "text" key (Slack, Mattermost)
// show as the message; fields is never null; time is RFC 3339 in UTC.
type WebhookPayload struct {
	Version  int               `json:"version"`
	Event    string            `json:"event"`
	Status   string            `json:"status"`
	Job      string            `json:"job,omitempty"`
	Subject  string            `json:"subject"`
	Body     string            `json:"body"`
	Text     string            `json:"text"`
	Fields   map[string]string `json:"fields"`
	Time     string            `json:"time"`
	Host     string            `json:"host"`
	Notifier string            `json:"notifier"`
}

// Webhook is the webhook notifier: it sends a WebhookPayload as JSON to a
// URL. An answer other than 2xx is an error naming the status; connection
// errors, 5xx and 429 answers are retried (retries times, pauses from
// 0.5 s doubling, or as Retry-After asks) within timeout.
type Webhook struct {
	backoff time.Duration // before the first retry; tests shorten it
}

var (
	_ sdk.Notifier  = (*Webhook)(nil)
	_ sdk.Validator = (*Webhook)(nil)
)

// Schema describes the webhook notifier block.
func (*Webhook) Schema() *schema.Block {
	return &schema.Block{
		Description: "Sends notifications as a JSON object to a URL.",
		Attributes: []*schema.Attribute{
			{Name: "url", Type: cty.String, Required: true, Description: "http:// or https:// URL to send to."},
			{Name: "method", Type: cty.String, Description: `HTTP method: "POST" (default), "PUT" or "PATCH".`},
			{Name: "headers", Type: cty.Map(cty.String), Sensitive: true, Description: `Extra request headers, e.g. { Authorization = "Bearer ${trimspace(file("/etc/runner/hook-token"))}" }; never shown.`},
			{Name: "ca_file", Type: cty.String, Description: "PEM file of CA certificates trusted besides the system's."},
			eventsAttr(defaultWebhookEvents),
			retriesAttr(),
			timeoutAttr(defaultWebhookTimeout),
		},
	}
}

type webhookSettings struct {
	url     *url.URL
	method  string
	headers map[string]string
	caFile  string
	events  map[string]bool
	retries int
	timeout time.Duration
}

func decodeWebhook(v cty.Value) (*webhookSettings, schema.Diagnostics) {
	o := config.New(v)
	s := &webhookSettings{}
	var diags, d schema.Diagnostics
	s.url, d = decodeURL(o, "url")
	diags = append(diags, d...)
	s.method, d = decodeMethod(o, "POST", webhookMethods)
	diags = append(diags, d...)
	if !o.IsUnknown("headers") {
		h, _, err := o.StringMap("headers")
		if err != nil {
			diags = append(diags, schema.Errorf([]string{"headers"}, "headers: %v", err))
		}
		names := make([]string, 0, len(h))
		for k := range h {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if !headerNameRe.MatchString(k) {
				diags = append(diags, schema.Errorf([]string{"headers"}, "headers: %q is not a valid header name", k))
			}
			if strings.ContainsAny(h[k], "\r\n\x00") {
				// The value may be a token: name the header only.
				diags = append(diags, schema.Errorf([]string{"headers"}, "headers: the value of %s has a line break or NUL", k))
			}
		}
		s.headers = h
	}
	s.caFile, d = decodeAbsPath(o, "ca_file")
	diags = append(diags, d...)
	s.events, d = decodeEvents(o, defaultWebhookEvents, Events)
	diags = append(diags, d...)
	s.retries, d = decodeRetries(o)
	diags = append(diags, d...)
	s.timeout, d = decodeTimeout(o, defaultWebhookTimeout)
	diags = append(diags, d...)
	return s, diags
}

// decodeMethod reads an HTTP method attribute, upper-casing it.
func decodeMethod(o config.Object, def string, allowed []string) (string, schema.Diagnostics) {
	m := strings.ToUpper(o.StringOr("method", def))
	for _, a := range allowed {
		if m == a {
			return m, nil
		}
	}
	return def, schema.Diagnostics{schema.Errorf([]string{"method"}, "method must be one of %s, not %q", strings.Join(allowed, ", "), m)}
}

// Validate checks the configuration without connecting.
func (*Webhook) Validate(_ context.Context, v cty.Value) schema.Diagnostics {
	_, diags := decodeWebhook(v)
	return diags
}

// Notify sends n as JSON if events lists its event.
func (w *Webhook) Notify(ctx context.Context, inst sdk.Instance, n sdk.Notification) error {
	lbl := label(inst)
	s, diags := decodeWebhook(inst.Config)
	if err := configError(lbl, diags); err != nil {
		return err
	}
	if !s.events[n.Event] {
		return nil
	}
	body, err := json.Marshal(webhookPayload(inst.Address, n, now()))
	if err != nil {
		return fmt.Errorf("%s: %w", lbl, err)
	}
	r := &request{
		method: s.method, url: s.url, headers: s.headers, body: body,
		contentType: "application/json", caFile: s.caFile, retries: s.retries, backoff: w.backoff,
	}
	return deliver(ctx, lbl, s.timeout, r)
}

// deliver sends r within timeout and names the notifier in the error.
func deliver(ctx context.Context, lbl string, timeout time.Duration, r *request) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := r.send(ctx); err != nil {
		if ctx.Err() != nil && errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
			return fmt.Errorf("%s: timed out after %s: %w", lbl, timeout, err)
		}
		return fmt.Errorf("%s: %w", lbl, err)
	}
	return nil
}

func webhookPayload(address string, n sdk.Notification, t time.Time) WebhookPayload {
	vars := templateVars(address, n)
	fields := make(map[string]string, len(n.Fields))
	for k, v := range n.Fields {
		fields[k] = v
	}
	subject := subjectOf(n)
	text := subject
	if b := strings.TrimSpace(n.Body); b != "" {
		text += "\n\n" + b
	}
	return WebhookPayload{
		Version:  WebhookPayloadVersion,
		Event:    n.Event,
		Status:   vars["status"],
		Job:      n.Fields["job"],
		Subject:  subject,
		Body:     n.Body,
		Text:     text,
		Fields:   fields,
		Time:     t.UTC().Format(time.RFC3339),
		Host:     hostname(),
		Notifier: address,
	}
}
