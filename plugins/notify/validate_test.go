package notify

import (
	"context"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/sdk"
)

func TestSchemasAreWellFormed(t *testing.T) {
	p := Plugin()
	if p.Name != "notify" || p.Version != config.Version || len(p.Notifiers) != 3 {
		t.Fatalf("Plugin() = %+v", p)
	}
	for name, n := range p.Notifiers {
		if err := n.Schema().Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if _, ok := n.(sdk.Validator); !ok {
			t.Errorf("%s has no Validate", name)
		}
	}
}

func TestValidate(t *testing.T) {
	email := map[string]cty.Value{
		"server": cty.StringVal("mail.example.org:587"),
		"from":   cty.StringVal("runner@example.org"),
		"to":     strs("ops@example.org"),
	}
	with := func(base map[string]cty.Value, kv ...any) map[string]cty.Value {
		m := map[string]cty.Value{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
				continue
			}
			m[kv[i].(string)] = kv[i+1].(cty.Value)
		}
		return m
	}
	webhook := map[string]cty.Value{"url": cty.StringVal("https://hooks.example.org/runner")}
	ping := map[string]cty.Value{"url": cty.StringVal("https://hc-ping.com/0b6f1a6c")}

	tests := []struct {
		name     string
		notifier sdk.Notifier
		attrs    map[string]cty.Value
		want     string // "" for no error, else a part of the first error
	}{
		{"email: a minimal block is valid", &Email{}, email, ""},
		{"email: a full block is valid", &Email{}, with(email,
			"username", cty.StringVal("runner"), "password_file", cty.StringVal("/etc/runner/smtp"),
			"ca_file", cty.StringVal("/etc/runner/ca.pem"), "starttls", cty.StringVal("required"),
			"subject", cty.StringVal("[{host}] {job} {status}"), "events", strs("failure", "forget", "role_change"),
			"timeout", cty.StringVal("1m")), ""},
		{"email: starttls accepts a bool", &Email{}, with(email, "starttls", cty.False), ""},
		{"email: implicit TLS with credentials", &Email{}, with(email, "tls", cty.True, "username", cty.StringVal("u"), "password_file", cty.StringVal("/p")), ""},
		{"email: server needs a port", &Email{}, with(email, "server", cty.StringVal("mail.example.org")), "server: \"mail.example.org\" must be host:port"},
		{"email: server port is a number", &Email{}, with(email, "server", cty.StringVal("mail:smtp")), "port must be a number"},
		{"email: server is required", &Email{}, with(email, "server", nil), "server is required"},
		{"email: from is an address", &Email{}, with(email, "from", cty.StringVal("not an address")), "from: \"not an address\" is not an email address"},
		{"email: every to is an address", &Email{}, with(email, "to", strs("ops@example.org", "ops")), "to: \"ops\" is not an email address"},
		{"email: to is not empty", &Email{}, with(email, "to", cty.ListValEmpty(cty.String)), "to must list at least one recipient"},
		{"email: username needs password_file", &Email{}, with(email, "username", cty.StringVal("u")), "username is set but password_file is not"},
		{"email: password_file needs username", &Email{}, with(email, "password_file", cty.StringVal("/p")), "password_file is set but username is not"},
		{"email: password_file is absolute", &Email{}, with(email, "username", cty.StringVal("u"), "password_file", cty.StringVal("smtp-password")), "password_file must be an absolute path"},
		{"email: no password without TLS", &Email{}, with(email, "starttls", cty.False, "username", cty.StringVal("u"), "password_file", cty.StringVal("/p")), "would send the password in plaintext"},
		{"email: starttls values", &Email{}, with(email, "starttls", cty.StringVal("maybe")), `starttls must be true, false or "required"`},
		{"email: starttls and tls exclude each other", &Email{}, with(email, "tls", cty.True, "starttls", cty.StringVal("required")), "starttls does not apply with tls = true"},
		{"email: subject placeholders parse", &Email{}, with(email, "subject", cty.StringVal("{job failed")), "subject: \"{job failed\": { at byte 0 is not closed"},
		{"email: subject placeholder names", &Email{}, with(email, "subject", cty.StringVal("{Job}")), "{Job} is not a placeholder"},
		{"email: events are known", &Email{}, with(email, "events", strs("failure", "explosion")), `unknown event "explosion"`},
		{"email: events are not empty", &Email{}, with(email, "events", cty.ListValEmpty(cty.String)), "events is empty"},
		{"email: timeout is a duration", &Email{}, with(email, "timeout", cty.StringVal("soon")), "timeout:"},
		{"email: unknown values are checked later", &Email{}, with(email, "server", cty.UnknownVal(cty.String), "to", cty.UnknownVal(cty.List(cty.String))), ""},

		{"webhook: a minimal block is valid", &Webhook{}, webhook, ""},
		{"webhook: a full block is valid", &Webhook{}, with(webhook, "method", cty.StringVal("PUT"),
			"headers", cty.MapVal(map[string]cty.Value{"Authorization": cty.StringVal("Bearer x")}),
			"events", strs("forget", "restore"), "retries", cty.NumberIntVal(0), "timeout", cty.StringVal("5s")), ""},
		{"webhook: url is http(s)", &Webhook{}, with(webhook, "url", cty.StringVal("ftp://example.org/x")), "url must be an http:// or https:// URL"},
		{"webhook: url has a host", &Webhook{}, with(webhook, "url", cty.StringVal("https:///x")), "url has no host"},
		{"webhook: url parses", &Webhook{}, with(webhook, "url", cty.StringVal("https://exa mple.org/?token=s3cret")), "url is not a URL"},
		{"webhook: url is required", &Webhook{}, with(webhook, "url", nil), "url is required"},
		{"webhook: method carries a body", &Webhook{}, with(webhook, "method", cty.StringVal("GET")), "method must be one of POST, PUT, PATCH"},
		{"webhook: header names", &Webhook{}, with(webhook, "headers", cty.MapVal(map[string]cty.Value{"Bad Header": cty.StringVal("x")})), `"Bad Header" is not a valid header name`},
		{"webhook: header values are one line", &Webhook{}, with(webhook, "headers", cty.MapVal(map[string]cty.Value{"X-Token": cty.StringVal("s3cret\r\nX-Evil: 1")})), "the value of X-Token has a line break"},
		{"webhook: retries are bounded", &Webhook{}, with(webhook, "retries", cty.NumberIntVal(100)), "retries must be 0 to 10"},

		{"ping: a minimal block is valid", &Ping{}, ping, ""},
		{"ping: GET with own suffixes", &Ping{}, with(ping, "method", cty.StringVal("get"), "start_suffix", cty.StringVal(""), "fail_suffix", cty.StringVal("/1")), ""},
		{"ping: knows only its events", &Ping{}, with(ping, "events", strs("start", "forget")), `unknown event "forget"; this notifier knows start, success, failure, recovery`},
		{"ping: suffixes are paths", &Ping{}, with(ping, "fail_suffix", cty.StringVal("fail")), "fail_suffix must be empty or a path that starts with /"},
		{"ping: method", &Ping{}, with(ping, "method", cty.StringVal("DELETE")), "method must be one of POST, GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := config.Build(tt.notifier.Schema(), tt.attrs)
			if err != nil {
				t.Fatal(err)
			}
			diags := tt.notifier.(sdk.Validator).Validate(context.Background(), v)
			if tt.want == "" {
				if len(diags) != 0 {
					t.Fatalf("diagnostics %+v", diags)
				}
				return
			}
			if !diags.HasErrors() {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(diags[0].Summary, tt.want) {
				t.Fatalf("error %q, want %q", diags[0].Summary, tt.want)
			}
			if strings.Contains(diags[0].Summary, "s3cret") {
				t.Errorf("error %q shows a secret", diags[0].Summary)
			}
			if len(diags[0].Path) == 0 {
				t.Errorf("error %q names no attribute", diags[0].Summary)
			}
		})
	}
}

// Notify refuses a configuration Validate would have refused, with the
// notifier's name, rather than sending something half-configured.
func TestNotifyRechecksItsConfiguration(t *testing.T) {
	inst := instance(t, &Webhook{}, WebhookType, map[string]cty.Value{"url": cty.StringVal("gopher://x")})
	err := (&Webhook{}).Notify(context.Background(), inst, sdk.Notification{Event: EventFailure})
	if err == nil || !strings.HasPrefix(err.Error(), `notify webhook "ops": configuration: url must be`) {
		t.Fatalf("err = %v", err)
	}
}

func TestTemplate(t *testing.T) {
	vars := templateVars("notify.email.admin", sdk.Notification{
		Event: EventRecovery, Fields: map[string]string{"job": "site", "snapshot": "ab12", "host": "spoofed", "event": "spoofed"},
	})
	tests := []struct{ text, want string }{
		{"{job}: {status}", "site: recovered"},
		{"{event} on {host} by {notifier}", "recovery on " + hostname() + " by notify.email.admin"},
		{"{subject}", "recovery of job site"},
		{"snapshot {snapshot}, {missing}.", "snapshot ab12, ."},
		{"{{json}} }", "{json}} }"},
		{"no placeholders", "no placeholders"},
		{"", ""},
	}
	for _, tt := range tests {
		tpl, err := parseTemplate(tt.text)
		if err != nil {
			t.Errorf("%q: %v", tt.text, err)
			continue
		}
		if got := tpl.render(vars); got != tt.want {
			t.Errorf("%q renders %q, want %q", tt.text, got, tt.want)
		}
	}
	for _, bad := range []string{"{", "{job", "{}", "{job name}", "{JOB}", "${job}x{"} {
		if _, err := parseTemplate(bad); err == nil {
			t.Errorf("%q parses", bad)
		}
	}
	// A status field wins over the word for the event.
	v := templateVars("a", sdk.Notification{Event: EventFailure, Fields: map[string]string{"status": "partial"}})
	if v["status"] != "partial" {
		t.Errorf("status = %q", v["status"])
	}
}
