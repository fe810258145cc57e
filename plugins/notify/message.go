package notify

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/backup-runner/runner/plugins/sdk"
)

// maxSubjectRunes keeps a subject within what mail clients show and far
// below the 998-byte limit of a header line.
const maxSubjectRunes = 200

// buildMessage makes the RFC 5322 message for n: headers (Date,
// Message-ID, From, To, Subject, MIME) and a quoted-printable UTF-8 text
// body with the notification's body, then its fields sorted by name.
func buildMessage(s *emailSettings, address string, n sdk.Notification, t time.Time) []byte {
	subject := oneLine(s.subject.render(templateVars(address, n)))
	if subject == "" {
		subject = subjectOf(n)
	}
	to := make([]string, len(s.to))
	for i, a := range s.to {
		to[i] = a.String()
	}

	var b bytes.Buffer
	header := func(name, value string) { fmt.Fprintf(&b, "%s: %s\r\n", name, value) }
	header("Date", t.Format(time.RFC1123Z))
	header("Message-ID", messageID(s.from, t))
	header("From", s.from.String())
	header("To", strings.Join(to, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", subject))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	// RFC 3834: no out-of-office replies to a machine, please.
	header("Auto-Submitted", "auto-generated")
	header("X-Runner-Event", oneLine(n.Event))
	header("X-Runner-Notifier", oneLine(address))
	b.WriteString("\r\n")

	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(messageText(address, n)))
	_ = qp.Close()
	return b.Bytes()
}

// messageText is the body of the message before encoding: the
// notification's body (or its subject), its fields one per line sorted by
// name, and a signature saying where it came from.
func messageText(address string, n sdk.Notification) string {
	var b strings.Builder
	body := strings.TrimSpace(n.Body)
	if body == "" {
		body = subjectOf(n)
	}
	b.WriteString(body)
	b.WriteString("\n")
	if len(n.Fields) > 0 {
		b.WriteString("\n")
		b.WriteString(fieldLines(n.Fields))
	}
	fmt.Fprintf(&b, "\n-- \nrunner on %s (%s, event %s)\n", hostname(), address, n.Event)
	return b.String()
}

// fieldLines formats fields as "name: value" lines sorted by name, the
// values aligned; a value's further lines are indented under its first.
func fieldLines(fields map[string]string) string {
	names := make([]string, 0, len(fields))
	width := 0
	for k := range fields {
		names = append(names, k)
		width = max(width, utf8.RuneCountInString(k))
	}
	sort.Strings(names)
	var b strings.Builder
	indent := strings.Repeat(" ", width+2)
	for _, k := range names {
		v := strings.ReplaceAll(strings.TrimRight(fields[k], "\r\n"), "\r\n", "\n")
		pad := strings.Repeat(" ", width-utf8.RuneCountInString(k))
		fmt.Fprintf(&b, "%s:%s %s\n", k, pad, strings.ReplaceAll(v, "\n", "\n"+indent))
	}
	return b.String()
}

// oneLine makes s fit a header: control characters (a line break would
// let a field forge headers) become spaces, runs of space one, and it is
// cut to maxSubjectRunes.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > maxSubjectRunes {
		s = string([]rune(s)[:maxSubjectRunes-1]) + "…"
	}
	return s
}

// messageID is a unique Message-ID in the sender's domain.
func messageID(from *mail.Address, t time.Time) string {
	domain := hostname()
	if i := strings.LastIndexByte(from.Address, '@'); i >= 0 && i+1 < len(from.Address) {
		domain = from.Address[i+1:]
	}
	return fmt.Sprintf("<runner.%d.%s@%s>", t.Unix(), rand.Text(), domain)
}
