package notify

import (
	"context"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/sdk"
)

const (
	testUser     = "runner@example.org"
	testPassword = "s3cret-Passw0rd"
)

func strs(list ...string) cty.Value {
	vals := make([]cty.Value, len(list))
	for i, s := range list {
		vals[i] = cty.StringVal(s)
	}
	return cty.ListVal(vals)
}

func emailInstance(t *testing.T, attrs map[string]cty.Value) sdk.Instance {
	t.Helper()
	v, err := config.Build((&Email{}).Schema(), attrs)
	if err != nil {
		t.Fatal(err)
	}
	return sdk.Instance{TypeName: EmailType, Address: "notify.email.admin", Config: v}
}

// secretFile writes a password file with the given mode.
func secretFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// baseEmail is the configuration of a notifier that authenticates over
// STARTTLS against ms.
func baseEmail(t *testing.T, ms *mailServer, cert *testCert) map[string]cty.Value {
	return map[string]cty.Value{
		"server":        cty.StringVal(ms.addr),
		"ca_file":       cty.StringVal(cert.caFile),
		"username":      cty.StringVal(testUser),
		"password_file": cty.StringVal(secretFile(t, testPassword+"\n", 0o600)),
		"from":          cty.StringVal("Backup Runner <runner@example.org>"),
		"to":            strs("ops@example.org", "Zoë Admin <zoe@example.org>"),
		"timeout":       cty.StringVal("10s"),
	}
}

var failureNote = sdk.Notification{
	Event:   EventFailure,
	Subject: "backup of site failed",
	Body:    "capture: mysqldump exited with status 2",
	Fields: map[string]string{
		"job":   "site",
		"error": "mysqldump: Got error: 2002\nCan't connect",
		"bytes": "0",
	},
}

func TestEmailIsDeliveredOverSTARTTLSWithAuthPlain(t *testing.T) {
	t.Setenv("RUNNER_NOW", "2026-01-31T04:00:00Z")
	cert := newTestCert(t)
	ms := startMailServer(t, mailOpts{cert: cert, user: testUser, pass: testPassword, requireAuth: true})
	attrs := baseEmail(t, ms, cert)
	attrs["subject"] = cty.StringVal("[backup {host}] {job}: {status} – ünïcode {{literal}")
	if err := (&Email{}).Notify(context.Background(), emailInstance(t, attrs), failureNote); err != nil {
		t.Fatal(err)
	}

	got := ms.received()
	if len(got) != 1 {
		t.Fatalf("server received %d messages, want 1", len(got))
	}
	m := got[0]
	if m.from != "runner@example.org" || !slices.Equal(m.to, []string{"ops@example.org", "zoe@example.org"}) {
		t.Errorf("envelope from %q to %q", m.from, m.to)
	}
	if !m.overTLS {
		t.Error("message was not sent over TLS")
	}
	if m.authAs != testUser || !slices.Equal(ms.authAttempts(), []string{testUser + ":" + testPassword}) {
		t.Errorf("auth as %q, attempts %q", m.authAs, ms.authAttempts())
	}

	msg, err := mail.ReadMessage(strings.NewReader(m.data))
	if err != nil {
		t.Fatalf("the message is not RFC 5322: %v\n%s", err, m.data)
	}
	h := msg.Header
	if d, err := h.Date(); err != nil || !d.Equal(time.Date(2026, 1, 31, 4, 0, 0, 0, time.UTC)) {
		t.Errorf("Date = %q (%v)", h.Get("Date"), err)
	}
	if id := h.Get("Message-ID"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@example.org>") {
		t.Errorf("Message-ID = %q", id)
	}
	if from, err := h.AddressList("From"); err != nil || len(from) != 1 || from[0].Name != "Backup Runner" || from[0].Address != "runner@example.org" {
		t.Errorf("From = %q (%v)", h.Get("From"), err)
	}
	to, err := h.AddressList("To")
	if err != nil || len(to) != 2 || to[0].Address != "ops@example.org" || to[1].Name != "Zoë Admin" || to[1].Address != "zoe@example.org" {
		t.Errorf("To = %q (%v)", h.Get("To"), err)
	}
	raw := h.Get("Subject")
	if strings.ContainsFunc(raw, func(r rune) bool { return r > 0x7e }) {
		t.Errorf("Subject header is not MIME-encoded: %q", raw)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(raw)
	if want := "[backup " + hostname() + "] site: failed – ünïcode {literal}"; err != nil || subject != want {
		t.Errorf("Subject = %q (%v), want %q", subject, err, want)
	}
	for name, want := range map[string]string{
		"MIME-Version":              "1.0",
		"Content-Type":              "text/plain; charset=utf-8",
		"Content-Transfer-Encoding": "quoted-printable",
		"Auto-Submitted":            "auto-generated",
		"X-Runner-Event":            "failure",
		"X-Runner-Notifier":         "notify.email.admin",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(body), "\r\n", "\n")
	want := "capture: mysqldump exited with status 2\n" +
		"\n" +
		"bytes: 0\n" +
		"error: mysqldump: Got error: 2002\n" +
		"       Can't connect\n" +
		"job:   site\n"
	if !strings.HasPrefix(text, want) {
		t.Errorf("body =\n%s\nwant it to start with\n%s", text, want)
	}
	if !strings.Contains(text, "\n-- \nrunner on "+hostname()+" (notify.email.admin, event failure)") {
		t.Errorf("body has no signature:\n%s", text)
	}
}

func TestEmailSendsOnlyTheEventsItLists(t *testing.T) {
	cert := newTestCert(t)
	ms := startMailServer(t, mailOpts{cert: cert, user: testUser, pass: testPassword, requireAuth: true})
	ctx := context.Background()

	// The default: failure and recovery.
	def := emailInstance(t, baseEmail(t, ms, cert))
	for _, ev := range Events {
		if err := (&Email{}).Notify(ctx, def, sdk.Notification{Event: ev, Fields: map[string]string{"job": "site"}}); err != nil {
			t.Fatalf("%s: %v", ev, err)
		}
	}
	// The significant events an operator adds.
	attrs := baseEmail(t, ms, cert)
	attrs["events"] = strs(EventForget, EventRestore, EventRoleChange)
	sig := emailInstance(t, attrs)
	for _, ev := range Events {
		if err := (&Email{}).Notify(ctx, sig, sdk.Notification{Event: ev, Fields: map[string]string{"job": "site"}}); err != nil {
			t.Fatalf("%s: %v", ev, err)
		}
	}

	var events []string
	for _, m := range ms.received() {
		msg, err := mail.ReadMessage(strings.NewReader(m.data))
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, msg.Header.Get("X-Runner-Event"))
	}
	want := []string{EventFailure, EventRecovery, EventForget, EventRestore, EventRoleChange}
	if !slices.Equal(events, want) {
		t.Fatalf("sent %q, want %q", events, want)
	}
}

func TestEmailRejectedCredentialsAreAClearError(t *testing.T) {
	cert := newTestCert(t)
	ms := startMailServer(t, mailOpts{cert: cert, user: testUser, pass: "another password", requireAuth: true})
	err := (&Email{}).Notify(context.Background(), emailInstance(t, baseEmail(t, ms, cert)), failureNote)
	if err == nil {
		t.Fatal("Notify succeeded with wrong credentials")
	}
	t.Log(err)
	msg := err.Error()
	for _, want := range []string{`notify email "admin"`, "send to " + ms.addr, "AUTH PLAIN as " + testUser, "535", "Authentication failed"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, testPassword) {
		t.Errorf("error %q shows the password", msg)
	}
	if len(ms.received()) != 0 {
		t.Error("a message went through")
	}
}

func TestEmailNeverSendsThePasswordWithoutTLS(t *testing.T) {
	// The server offers AUTH in plaintext and no STARTTLS.
	ms := startMailServer(t, mailOpts{user: testUser, pass: testPassword, insecureAuth: true})
	cert := newTestCert(t)
	err := (&Email{}).Notify(context.Background(), emailInstance(t, baseEmail(t, ms, cert)), failureNote)
	if err == nil || !strings.Contains(err.Error(), "refusing to send the password in plaintext") || !strings.Contains(err.Error(), ms.addr) {
		t.Fatalf("err = %v", err)
	}
	t.Log(err)
	if a := ms.authAttempts(); len(a) != 0 {
		t.Errorf("the server saw AUTH attempts %q", a)
	}
	if len(ms.received()) != 0 {
		t.Error("a message went through")
	}
}

func TestEmailStarttls(t *testing.T) {
	plain := map[string]cty.Value{
		"from": cty.StringVal("runner@example.org"),
		"to":   strs("ops@example.org"),
	}
	t.Run("required refuses a server without it", func(t *testing.T) {
		ms := startMailServer(t, mailOpts{})
		attrs := map[string]cty.Value{"server": cty.StringVal(ms.addr), "starttls": cty.StringVal("required")}
		for k, v := range plain {
			attrs[k] = v
		}
		err := (&Email{}).Notify(context.Background(), emailInstance(t, attrs), failureNote)
		if err == nil || !strings.Contains(err.Error(), `does not offer STARTTLS and starttls = "required"`) {
			t.Fatalf("err = %v", err)
		}
		t.Log(err)
		if len(ms.received()) != 0 {
			t.Error("a message went through in plaintext")
		}
	})
	t.Run("the default sends without credentials in plaintext", func(t *testing.T) {
		ms := startMailServer(t, mailOpts{})
		attrs := map[string]cty.Value{"server": cty.StringVal(ms.addr)}
		for k, v := range plain {
			attrs[k] = v
		}
		if err := (&Email{}).Notify(context.Background(), emailInstance(t, attrs), failureNote); err != nil {
			t.Fatal(err)
		}
		if got := ms.received(); len(got) != 1 || got[0].overTLS {
			t.Fatalf("received %+v", got)
		}
	})
	t.Run("an untrusted certificate is an error, not plaintext", func(t *testing.T) {
		cert := newTestCert(t)
		ms := startMailServer(t, mailOpts{cert: cert})
		attrs := map[string]cty.Value{"server": cty.StringVal(ms.addr)}
		for k, v := range plain {
			attrs[k] = v
		}
		err := (&Email{}).Notify(context.Background(), emailInstance(t, attrs), failureNote)
		if err == nil || !strings.Contains(err.Error(), "STARTTLS") || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("err = %v", err)
		}
		t.Log(err)
		if len(ms.received()) != 0 {
			t.Error("a message went through")
		}
	})
	t.Run("implicit TLS", func(t *testing.T) {
		cert := newTestCert(t)
		ms := startMailServer(t, mailOpts{cert: cert, implicitTLS: true, user: testUser, pass: testPassword, requireAuth: true})
		attrs := baseEmail(t, ms, cert)
		attrs["tls"] = cty.True
		if err := (&Email{}).Notify(context.Background(), emailInstance(t, attrs), failureNote); err != nil {
			t.Fatal(err)
		}
		if got := ms.received(); len(got) != 1 || !got[0].overTLS || got[0].authAs != testUser {
			t.Fatalf("received %+v", got)
		}
	})
}

func TestEmailRefusesAPasswordFileOthersCanRead(t *testing.T) {
	cert := newTestCert(t)
	ms := startMailServer(t, mailOpts{cert: cert, user: testUser, pass: testPassword})
	attrs := baseEmail(t, ms, cert)
	attrs["password_file"] = cty.StringVal(secretFile(t, testPassword, 0o640))
	err := (&Email{}).Notify(context.Background(), emailInstance(t, attrs), failureNote)
	if err == nil || !strings.Contains(err.Error(), "readable by group or others (mode 0640): chmod 600 it") || !strings.Contains(err.Error(), `notify email "admin"`) {
		t.Fatalf("err = %v", err)
	}
	if len(ms.authAttempts()) != 0 || len(ms.received()) != 0 {
		t.Error("the server was contacted")
	}
}

func TestEmailRejectedRecipientIsNamed(t *testing.T) {
	cert := newTestCert(t)
	ms := startMailServer(t, mailOpts{cert: cert, user: testUser, pass: testPassword})
	attrs := baseEmail(t, ms, cert)
	attrs["to"] = strs("ops@example.org", "nobody@example.org")
	err := (&Email{}).Notify(context.Background(), emailInstance(t, attrs), failureNote)
	if err == nil || !strings.Contains(err.Error(), "RCPT TO:<nobody@example.org>: 550") {
		t.Fatalf("err = %v", err)
	}
}

func TestEmailTimesOutOnASilentServer(t *testing.T) {
	// Accepts connections and never says a word.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })

	inst := emailInstance(t, map[string]cty.Value{
		"server":  cty.StringVal(ln.Addr().String()),
		"from":    cty.StringVal("runner@example.org"),
		"to":      strs("ops@example.org"),
		"timeout": cty.StringVal("1s"),
	})
	start := time.Now()
	err = (&Email{}).Notify(context.Background(), inst, failureNote)
	if err == nil || !strings.Contains(err.Error(), "timed out after 1s at greeting") || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("err = %v", err)
	}
	t.Log(err)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}

func TestEmailUnreachableServerIsNamed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	inst := emailInstance(t, map[string]cty.Value{
		"server": cty.StringVal(addr),
		"from":   cty.StringVal("runner@example.org"),
		"to":     strs("ops@example.org"),
	})
	err = (&Email{}).Notify(context.Background(), inst, failureNote)
	if err == nil || !strings.HasPrefix(err.Error(), `notify email "admin": send to `+addr+": ") {
		t.Fatalf("err = %v", err)
	}
}

func TestMessageHeadersCannotBeForged(t *testing.T) {
	s, diags := decodeEmail(config.MustBuild((&Email{}).Schema(), map[string]cty.Value{
		"server":  cty.StringVal("mail.example.org:587"),
		"from":    cty.StringVal("runner@example.org"),
		"to":      strs("ops@example.org"),
		"subject": cty.StringVal("{job} failed"),
	}))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	n := sdk.Notification{Event: EventFailure, Fields: map[string]string{"job": "site\r\nBcc: victim@example.org"}}
	raw := buildMessage(s, "notify.email.admin", n, time.Now())
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get("Bcc") != "" || msg.Header.Get("Subject") != "site Bcc: victim@example.org failed" {
		t.Fatalf("headers: %v", msg.Header)
	}
}
