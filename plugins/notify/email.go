package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/smtp"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/sdk"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

const (
	defaultEmailTimeout = "30s"
	defaultSubject      = "[runner {host}] {subject}"
)

var defaultEmailEvents = []string{EventFailure, EventRecovery}

// The values of starttls.
const (
	starttlsAuto     = "true"     // when the server offers it
	starttlsRequired = "required" // or send nothing
	starttlsOff      = "false"    // never (no credentials then)
)

// Email is the email notifier: it sends a plain-text message through an
// SMTP submission server, with STARTTLS (or implicit TLS) and AUTH PLAIN.
//
// TLS: with starttls = true (the default) the connection is upgraded
// whenever the server offers STARTTLS, and a failed upgrade (say, an
// untrusted certificate) is an error, never a reason to go on in
// plaintext. When the server does not offer it, the message goes in
// plaintext only if no credentials are configured: a password is never
// sent unencrypted. starttls = "required" refuses to send anything
// without TLS; starttls = false never upgrades and so cannot be combined
// with username. tls = true is implicit TLS from the first byte (SMTPS,
// usually port 465). Certificates are verified against the system's roots
// plus ca_file.
type Email struct{}

var (
	_ sdk.Notifier  = (*Email)(nil)
	_ sdk.Validator = (*Email)(nil)
)

// Schema describes the email notifier block.
func (*Email) Schema() *schema.Block {
	return &schema.Block{
		Description: "Sends notifications as email through an SMTP submission server.",
		Attributes: []*schema.Attribute{
			{Name: "server", Type: cty.String, Required: true, Description: `SMTP server as "host:port", e.g. "mail.example.org:587".`},
			{Name: "starttls", Type: cty.String, Description: `true (default): upgrade with STARTTLS when the server offers it, and never send a password without it; "required": send nothing without STARTTLS; false: never upgrade (no username then).`},
			{Name: "tls", Type: cty.Bool, Description: "Implicit TLS from the first byte (SMTPS, usually port 465) instead of STARTTLS (default false)."},
			{Name: "ca_file", Type: cty.String, Description: "PEM file of CA certificates trusted besides the system's, for a server with a private CA."},
			{Name: "username", Type: cty.String, Description: "User name for AUTH PLAIN; needs password_file."},
			{Name: "password_file", Type: cty.String, Description: "File holding the SMTP password (one line); refused if group or others may read it."},
			{Name: "from", Type: cty.String, Required: true, Description: `Sender, e.g. "Backups <runner@example.org>".`},
			{Name: "to", Type: cty.List(cty.String), Required: true, Description: "Recipients."},
			{Name: "subject", Type: cty.String, Description: fmt.Sprintf("Subject template with {name} placeholders such as {job}, {event}, {status}, {host}, {subject} (default %q).", defaultSubject)},
			eventsAttr(defaultEmailEvents),
			timeoutAttr(defaultEmailTimeout),
		},
	}
}

type emailSettings struct {
	server, host string // host:port, and host alone (TLS server name)
	starttls     string
	implicitTLS  bool
	caFile       string
	username     string
	passwordFile string
	from         *mail.Address
	to           []*mail.Address
	subject      *template
	events       map[string]bool
	timeout      time.Duration
}

func decodeEmail(v cty.Value) (*emailSettings, schema.Diagnostics) {
	o := config.New(v)
	s := &emailSettings{}
	var diags schema.Diagnostics
	add := func(ds schema.Diagnostics) { diags = append(diags, ds...) }

	if server, ok := o.String("server"); ok {
		host, err := splitHostPort(server)
		if err != nil {
			add(schema.Diagnostics{schema.Errorf([]string{"server"}, "server: %v", err)})
		}
		s.server, s.host = server, host
	} else if !o.IsUnknown("server") {
		add(schema.Diagnostics{schema.Errorf([]string{"server"}, `server is required: "host:port" of the SMTP server`)})
	}

	s.implicitTLS, _ = o.Bool("tls")
	s.starttls = starttlsAuto
	if st, ok := o.String("starttls"); ok {
		switch st {
		case starttlsAuto, starttlsRequired, starttlsOff:
			s.starttls = st
		default:
			add(schema.Diagnostics{schema.Errorf([]string{"starttls"}, `starttls must be true, false or "required", not %q`, st)})
		}
		if s.implicitTLS {
			add(schema.Diagnostics{schema.Errorf([]string{"starttls"}, "starttls does not apply with tls = true (the connection is TLS from the start): remove one")})
		}
	}

	var d schema.Diagnostics
	s.caFile, d = decodeAbsPath(o, "ca_file")
	add(d)
	s.passwordFile, d = decodeAbsPath(o, "password_file")
	add(d)
	s.username, _ = o.String("username")
	switch {
	case o.IsUnknown("username") || o.IsUnknown("password_file"):
	case s.username != "" && !o.IsSet("password_file"):
		add(schema.Diagnostics{schema.Errorf([]string{"password_file"}, "username is set but password_file is not: the password comes from a file only")})
	case s.username == "" && o.IsSet("password_file"):
		add(schema.Diagnostics{schema.Errorf([]string{"username"}, "password_file is set but username is not")})
	case s.username != "" && s.starttls == starttlsOff && !s.implicitTLS:
		add(schema.Diagnostics{schema.Errorf([]string{"starttls"}, "starttls = false would send the password in plaintext: use STARTTLS or tls = true, or drop username")})
	}

	if from, ok := o.String("from"); ok {
		a, err := mail.ParseAddress(from)
		if err != nil {
			add(schema.Diagnostics{schema.Errorf([]string{"from"}, "from: %q is not an email address: %v", from, err)})
		}
		s.from = a
	} else if !o.IsUnknown("from") {
		add(schema.Diagnostics{schema.Errorf([]string{"from"}, "from is required: the sender's address")})
	}

	if !o.IsUnknown("to") {
		list, ok, err := o.StringList("to")
		switch {
		case err != nil:
			add(schema.Diagnostics{schema.Errorf([]string{"to"}, "to: %v", err)})
		case !ok || len(list) == 0:
			add(schema.Diagnostics{schema.Errorf([]string{"to"}, "to must list at least one recipient")})
		}
		for _, r := range list {
			a, err := mail.ParseAddress(r)
			if err != nil {
				add(schema.Diagnostics{schema.Errorf([]string{"to"}, "to: %q is not an email address: %v", r, err)})
				continue
			}
			s.to = append(s.to, a)
		}
	}

	if !o.IsUnknown("subject") {
		t, err := parseTemplate(o.StringOr("subject", defaultSubject))
		if err != nil {
			add(schema.Diagnostics{schema.Errorf([]string{"subject"}, "subject: %v", err)})
		}
		s.subject = t
	}

	s.events, d = decodeEvents(o, defaultEmailEvents, Events)
	add(d)
	s.timeout, d = decodeTimeout(o, defaultEmailTimeout)
	add(d)
	return s, diags
}

// splitHostPort checks "host:port" with a numeric port and returns host;
// the host is resolved only when sending.
func splitHostPort(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%q must be host:port (e.g. mail.example.org:587): %v", addr, err)
	}
	if host == "" {
		return "", fmt.Errorf("%q has no host", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("%q: port must be a number 1-65535", addr)
	}
	return host, nil
}

// Validate checks the configuration without reading files or connecting.
func (*Email) Validate(_ context.Context, v cty.Value) schema.Diagnostics {
	_, diags := decodeEmail(v)
	return diags
}

// Notify sends n as an email if events lists its event.
func (*Email) Notify(ctx context.Context, inst sdk.Instance, n sdk.Notification) error {
	lbl := label(inst)
	s, diags := decodeEmail(inst.Config)
	if err := configError(lbl, diags); err != nil {
		return err
	}
	if !s.events[n.Event] {
		return nil
	}
	if s.server == "" || s.from == nil || len(s.to) == 0 || s.subject == nil {
		// Values still unknown pass validation; they must not reach here.
		return fmt.Errorf("%s: configuration: server, from, to or subject is not known", lbl)
	}
	var password string
	if s.username != "" {
		p, err := readSecretFile("password_file", s.passwordFile)
		if err != nil {
			return fmt.Errorf("%s: %w", lbl, err)
		}
		password = p
	}
	msg := buildMessage(s, inst.Address, n, now())
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.send(ctx, password, msg); err != nil {
		// The connection's deadline may strike a moment before the
		// context's timer; both mean that time ran out.
		timedOut := errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(context.Cause(ctx), context.DeadlineExceeded)
		if timedOut || ctx.Err() != nil {
			// What failed is that time ran out (the connection was closed
			// under the step), not the step's own error.
			var se *stepError
			step := "the server"
			if errors.As(err, &se) {
				step = se.step
			}
			if timedOut {
				err = fmt.Errorf("timed out after %s at %s", s.timeout, step)
			} else {
				err = fmt.Errorf("stopped at %s: %w", step, context.Cause(ctx))
			}
		}
		return fmt.Errorf("%s: send to %s: %w", lbl, s.server, err)
	}
	return nil
}

// send delivers msg in one SMTP session. Every step that can fail says
// which one it was; nothing in the errors is secret.
func (s *emailSettings) send(ctx context.Context, password string, msg []byte) error {
	tcfg, err := tlsConfig(s.host, s.caFile)
	if err != nil {
		return err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.server)
	if err != nil {
		return &stepError{"connect", err}
	}
	defer func() { _ = conn.Close() }()
	// net/smtp knows no contexts: the deadline bounds every read and
	// write, and a cancellation closes the connection under it.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	secure := false
	if s.implicitTLS {
		tc := tls.Client(conn, tcfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return &stepError{"tls", err}
		}
		conn, secure = tc, true
	}
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return &stepError{"greeting", err}
	}
	defer func() { _ = c.Close() }()
	if err := c.Hello(hostname()); err != nil {
		return &stepError{"EHLO", err}
	}

	if !secure && s.starttls != starttlsOff {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tcfg); err != nil {
				return &stepError{"STARTTLS", err}
			}
			secure = true
		} else if s.starttls == starttlsRequired {
			return errors.New(`the server does not offer STARTTLS and starttls = "required": nothing was sent`)
		}
	}

	if s.username != "" {
		if !secure {
			return errors.New("the server does not offer STARTTLS: refusing to send the password in plaintext (nothing was sent)")
		}
		ok, mechs := c.Extension("AUTH")
		if !ok {
			return errors.New("the server offers no AUTH, but username is set")
		}
		if !hasWord(mechs, "PLAIN") {
			return fmt.Errorf("the server does not offer AUTH PLAIN (it offers %s)", mechs)
		}
		if err := c.Auth(smtp.PlainAuth("", s.username, password, s.host)); err != nil {
			return &stepError{"AUTH PLAIN as " + s.username, err}
		}
	}

	if err := c.Mail(s.from.Address); err != nil {
		return &stepError{"MAIL FROM:<" + s.from.Address + ">", err}
	}
	for _, to := range s.to {
		if err := c.Rcpt(to.Address); err != nil {
			return &stepError{"RCPT TO:<" + to.Address + ">", err}
		}
	}
	w, err := c.Data()
	if err != nil {
		return &stepError{"DATA", err}
	}
	if _, err := w.Write(msg); err != nil {
		return &stepError{"DATA", err}
	}
	if err := w.Close(); err != nil {
		return &stepError{"DATA", err}
	}
	// The server has accepted the message; a failed QUIT changes nothing.
	_ = c.Quit()
	return nil
}

// hasWord reports whether the space-separated list has word, ignoring
// case.
func hasWord(list, word string) bool {
	for _, w := range strings.Fields(list) {
		if strings.EqualFold(w, word) {
			return true
		}
	}
	return false
}

// stepError is the failure of one step of the SMTP session, named as an
// operator reading the server's log would recognise it.
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }
