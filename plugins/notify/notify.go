// Package notify is the built-in "notify" plugin: it tells people and
// monitoring systems about what a run did. It provides three notifier
// types:
//
//	notify "email" "admin" {
//	  server        = "mail.example.org:587"
//	  username      = "runner@example.org"
//	  password_file = "/etc/runner/smtp-password"   # mode 0600
//	  from          = "Backups <runner@example.org>"
//	  to            = ["ops@example.org"]
//	  subject       = "[backup {host}] {job}: {status}"
//	  events        = ["failure", "recovery", "forget", "restore", "role_change"]
//	}
//
//	notify "webhook" "chat" {
//	  url     = "https://hooks.example.org/runner"
//	  headers = { Authorization = "Bearer ${trimspace(file("/etc/runner/hook-token"))}" }
//	}
//
//	notify "ping" "hc" {
//	  url = "https://hc-ping.com/0b6f1a6c-..."   # healthchecks.io style
//	}
//
// # Events
//
// The engine calls Notify for every event of a job; each notifier sends
// only the events its events attribute lists and ignores the others (Notify
// returns nil). The events are:
//
//	start        a job started
//	success      a job succeeded
//	failure      a job failed
//	recovery     a job succeeded after its previous run failed
//	forget       snapshots were forgotten
//	restore      a snapshot was restored
//	role_change  a job's role changed (primary <-> replica)
//
// email and webhook send failure and recovery by default; forget, restore
// and role_change are the "significant" events an operator adds to
// events. ping sends start, success, failure and recovery by default and
// knows only those.
//
// # Placeholders
//
// email's subject is a template with {name} placeholders (not ${name},
// which the configuration language would replace itself):
//
//	{event}     the event, e.g. failure
//	{subject}   the subject the engine gave the notification (or "EVENT of job JOB")
//	{host}      this machine's host name
//	{notifier}  the notifier's address, e.g. notify.email.admin
//	{job}       the notification's "job" field
//	{status}    the "status" field, or a word for the event (failed, recovered, ...)
//	{NAME}      any other field of the notification
//
// A placeholder the notification has no value for becomes empty. {{ is a
// literal {. The default subject is "[runner {host}] {subject}".
//
// # What the engine sends
//
// A Notification's Fields are shown whole: sorted "name: value" lines in
// an email, the "fields" object of a webhook, the text of a ping. By
// convention "job" names the job and "status" may override the word for
// the event; anything else (snapshot, error, bytes, duration, ...) is
// passed on as it is. Notifications are stamped with the time of
// RUNNER_NOW when it is set (RFC 3339), as the rest of the runner is.
//
// # Errors and secrets
//
// Every error of Notify starts with the notifier as configured
// (notify email "admin") and names the server or URL and the step that
// failed. Passwords (password_file, refused when group or others may read
// it), header values and the values of a URL's query never appear in an
// error. Validate checks syntax only: it reads no file and contacts no
// server.
package notify

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

// The notifier types this package provides.
const (
	EmailType   = "email"
	WebhookType = "webhook"
	PingType    = "ping"
)

// The events a notification can be about (defined by the SDK).
const (
	EventStart      = sdk.EventStart
	EventSuccess    = sdk.EventSuccess
	EventFailure    = sdk.EventFailure
	EventRecovery   = sdk.EventRecovery
	EventForget     = sdk.EventForget
	EventRestore    = sdk.EventRestore
	EventRoleChange = sdk.EventRoleChange
)

// Events lists every event, in the order the documentation gives them.
var Events = sdk.Events

// Plugin returns the notify plugin.
func Plugin() *sdk.Plugin {
	return &sdk.Plugin{
		Name:    "notify",
		Version: config.Version,
		Notifiers: map[string]sdk.Notifier{
			EmailType:   &Email{},
			WebhookType: &Webhook{},
			PingType:    &Ping{},
		},
	}
}

// statusWords say what happened in one word, for {status} when the
// notification has no status field.
var statusWords = map[string]string{
	EventStart:      "started",
	EventSuccess:    "succeeded",
	EventFailure:    "failed",
	EventRecovery:   "recovered",
	EventForget:     "forgot snapshots",
	EventRestore:    "restored",
	EventRoleChange: "role changed",
}

// eventsAttr is the schema of the events attribute with the given default.
func eventsAttr(defaults []string) *schema.Attribute {
	return &schema.Attribute{
		Name: "events", Type: cty.List(cty.String),
		Description: fmt.Sprintf("Events to send (default [%s]); others are ignored. Known: %s.",
			quoteList(defaults), strings.Join(Events, ", ")),
	}
}

func timeoutAttr(def string) *schema.Attribute {
	return &schema.Attribute{
		Name: "timeout", Type: cty.String,
		Description: fmt.Sprintf("Limit for sending one notification, retries included (default %q).", def),
	}
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// decodeEvents reads the events attribute: a non-empty list of events from
// allowed, or defaults when it is not set.
func decodeEvents(o config.Object, defaults, allowed []string) (map[string]bool, schema.Diagnostics) {
	set := map[string]bool{}
	if o.IsUnknown("events") {
		return set, nil
	}
	list, ok, err := o.StringList("events")
	switch {
	case err != nil:
		return set, schema.Diagnostics{schema.Errorf([]string{"events"}, "events: %v", err)}
	case !ok:
		list = defaults
	case len(list) == 0:
		return set, schema.Diagnostics{schema.Errorf([]string{"events"}, "events is empty: this notifier would never send anything; list some of %s", strings.Join(allowed, ", "))}
	}
	var diags schema.Diagnostics
	for _, ev := range list {
		if !slices.Contains(allowed, ev) {
			diags = append(diags, schema.Errorf([]string{"events"}, "events: unknown event %q; this notifier knows %s", ev, strings.Join(allowed, ", ")))
			continue
		}
		set[ev] = true
	}
	return set, diags
}

// decodeTimeout reads the timeout attribute.
func decodeTimeout(o config.Object, def string) (time.Duration, schema.Diagnostics) {
	if o.IsUnknown("timeout") {
		return 0, nil
	}
	d, err := o.Duration("timeout", def)
	if err != nil {
		return 0, schema.Diagnostics{schema.Errorf([]string{"timeout"}, "timeout: %v", err)}
	}
	return d, nil
}

// decodeAbsPath reads an optional attribute naming a local file, which
// must be absolute: the plugin's working directory is nobody's business.
func decodeAbsPath(o config.Object, name string) (string, schema.Diagnostics) {
	p, ok := o.String(name)
	if !ok {
		return "", nil
	}
	if !strings.HasPrefix(p, "/") {
		return "", schema.Diagnostics{schema.Errorf([]string{name}, "%s must be an absolute path, not %q", name, p)}
	}
	return p, nil
}

// configError turns the first error of a configuration that passed
// validation on the host but not here (a host that skipped Validate, or a
// test) into an error for Notify.
func configError(label string, diags schema.Diagnostics) error {
	for _, d := range diags {
		if d.Severity == schema.Error {
			return fmt.Errorf("%s: configuration: %s", label, d.Summary)
		}
	}
	return nil
}

func label(inst sdk.Instance) string { return config.Label(schema.KindNotify, inst) }

// now is the time notifications are stamped with: RUNNER_NOW (RFC 3339)
// when set, as for the whole runner (a testing and rehearsal aid), else
// the clock.
func now() time.Time {
	if s := os.Getenv("RUNNER_NOW"); s != "" {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t
		}
	}
	return time.Now()
}

var hostname = sync.OnceValue(func() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
})
