package notify

import (
	"context"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

const (
	defaultPingTimeout = "10s"
	// maxPingBody bounds the text a POST ping carries (healthchecks.io
	// keeps the first 100 kB of a ping's body as its log).
	maxPingBody = 10_000
)

var (
	defaultPingEvents = []string{EventStart, EventSuccess, EventFailure, EventRecovery}
	pingMethods       = []string{"POST", "GET", "HEAD"}
)

// Ping is the ping notifier, for dead man's switch services in the style
// of healthchecks.io: on start it requests URL + start_suffix ("/start"),
// on success and recovery URL + success_suffix (""), on failure URL +
// fail_suffix ("/fail"). A POST carries the notification's text as the
// ping's body (which healthchecks.io shows in its log); GET and HEAD send
// nothing but the request. The suffixes go at the end of the URL's path,
// before any query. Answers and retries as for webhook.
type Ping struct {
	backoff time.Duration // before the first retry; tests shorten it
}

var (
	_ sdk.Notifier  = (*Ping)(nil)
	_ sdk.Validator = (*Ping)(nil)
)

// Schema describes the ping notifier block.
func (*Ping) Schema() *schema.Block {
	return &schema.Block{
		Description: "Pings a healthchecks.io-style URL when a job starts, succeeds or fails.",
		Attributes: []*schema.Attribute{
			{Name: "url", Type: cty.String, Required: true, Description: `Ping URL, e.g. "https://hc-ping.com/UUID".`},
			{Name: "method", Type: cty.String, Description: `HTTP method: "POST" (default, with the notification's text as body), "GET" or "HEAD".`},
			{Name: "start_suffix", Type: cty.String, Description: `Appended to url's path for start (default "/start").`},
			{Name: "success_suffix", Type: cty.String, Description: `Appended to url's path for success and recovery (default "").`},
			{Name: "fail_suffix", Type: cty.String, Description: `Appended to url's path for failure (default "/fail").`},
			{Name: "ca_file", Type: cty.String, Description: "PEM file of CA certificates trusted besides the system's."},
			eventsAttr(defaultPingEvents),
			retriesAttr(),
			timeoutAttr(defaultPingTimeout),
		},
	}
}

type pingSettings struct {
	url      *url.URL
	method   string
	suffixes map[string]string // event -> suffix
	caFile   string
	events   map[string]bool
	retries  int
	timeout  time.Duration
}

func decodePing(v cty.Value) (*pingSettings, schema.Diagnostics) {
	o := config.New(v)
	s := &pingSettings{suffixes: map[string]string{}}
	var diags, d schema.Diagnostics
	s.url, d = decodeURL(o, "url")
	diags = append(diags, d...)
	s.method, d = decodeMethod(o, "POST", pingMethods)
	diags = append(diags, d...)
	for _, sfx := range []struct {
		attr, def string
		events    []string
	}{
		{"start_suffix", "/start", []string{EventStart}},
		{"success_suffix", "", []string{EventSuccess, EventRecovery}},
		{"fail_suffix", "/fail", []string{EventFailure}},
	} {
		val := o.StringOr(sfx.attr, sfx.def)
		if val != "" && (!strings.HasPrefix(val, "/") || strings.ContainsAny(val, "?#")) {
			diags = append(diags, schema.Errorf([]string{sfx.attr}, "%s must be empty or a path that starts with /, such as /fail, not %q", sfx.attr, val))
		}
		for _, ev := range sfx.events {
			s.suffixes[ev] = val
		}
	}
	s.caFile, d = decodeAbsPath(o, "ca_file")
	diags = append(diags, d...)
	s.events, d = decodeEvents(o, defaultPingEvents, defaultPingEvents)
	diags = append(diags, d...)
	s.retries, d = decodeRetries(o)
	diags = append(diags, d...)
	s.timeout, d = decodeTimeout(o, defaultPingTimeout)
	diags = append(diags, d...)
	return s, diags
}

// Validate checks the configuration without connecting.
func (*Ping) Validate(_ context.Context, v cty.Value) schema.Diagnostics {
	_, diags := decodePing(v)
	return diags
}

// Notify pings the URL for n's event if events lists it.
func (p *Ping) Notify(ctx context.Context, inst sdk.Instance, n sdk.Notification) error {
	lbl := label(inst)
	s, diags := decodePing(inst.Config)
	if err := configError(lbl, diags); err != nil {
		return err
	}
	if !s.events[n.Event] {
		return nil
	}
	r := &request{
		method: s.method, url: pingURL(s.url, s.suffixes[n.Event]),
		caFile: s.caFile, retries: s.retries, backoff: p.backoff,
	}
	if s.method == "POST" {
		r.body = []byte(truncateUTF8(messageText(inst.Address, n), maxPingBody))
		r.contentType = "text/plain; charset=utf-8"
	}
	return deliver(ctx, lbl, s.timeout, r)
}

// pingURL appends suffix to u's path.
func pingURL(u *url.URL, suffix string) *url.URL {
	c := *u
	if suffix != "" {
		c.Path = strings.TrimSuffix(c.Path, "/") + suffix
		if c.RawPath != "" {
			// Keep the original escaping; EscapedPath falls back to
			// escaping Path itself should the two disagree.
			c.RawPath = strings.TrimSuffix(c.RawPath, "/") + suffix
		}
	}
	return &c
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
