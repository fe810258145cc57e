package notify

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/backup-runner/runner/plugins/sdk"
)

// template is a text with {name} placeholders (see the package
// documentation). It is parsed once, when the configuration is read, so
// that a malformed one is a validation error and rendering cannot fail.
type template struct {
	parts []part
}

type part struct {
	text        string
	placeholder bool
}

var placeholderRe = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// parseTemplate parses text: {name} is a placeholder, {{ a literal {. A
// lone } is literal.
func parseTemplate(text string) (*template, error) {
	t := &template{}
	var lit strings.Builder
	for i := 0; i < len(text); {
		c := text[i]
		if c != '{' {
			lit.WriteByte(c)
			i++
			continue
		}
		if strings.HasPrefix(text[i:], "{{") {
			lit.WriteByte('{')
			i += 2
			continue
		}
		end := strings.IndexByte(text[i:], '}')
		if end < 0 {
			return nil, fmt.Errorf("%q: { at byte %d is not closed: write {name} for a placeholder, {{ for a literal {", text, i)
		}
		name := text[i+1 : i+end]
		if !placeholderRe.MatchString(name) {
			return nil, fmt.Errorf("%q: {%s} is not a placeholder: names are lower-case letters, digits and _, such as {job} or {event}", text, name)
		}
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{text: lit.String()})
			lit.Reset()
		}
		t.parts = append(t.parts, part{text: name, placeholder: true})
		i += end + 1
	}
	if lit.Len() > 0 {
		t.parts = append(t.parts, part{text: lit.String()})
	}
	return t, nil
}

// render fills in the placeholders with vars; a missing one is empty.
func (t *template) render(vars map[string]string) string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.placeholder {
			b.WriteString(vars[p.text])
		} else {
			b.WriteString(p.text)
		}
	}
	return b.String()
}

// templateVars are the values placeholders take for notification n sent by
// the notifier at address: the notification's fields, then the fixed names,
// which a field cannot override.
func templateVars(address string, n sdk.Notification) map[string]string {
	vars := make(map[string]string, len(n.Fields)+6)
	for k, v := range n.Fields {
		vars[k] = v
	}
	if vars["status"] == "" {
		vars["status"] = statusWords[n.Event]
		if vars["status"] == "" {
			vars["status"] = n.Event
		}
	}
	vars["event"] = n.Event
	vars["host"] = hostname()
	vars["notifier"] = address
	vars["subject"] = subjectOf(n)
	return vars
}

// subjectOf is the notification's subject, or one made from its event and
// job when the engine gave none.
func subjectOf(n sdk.Notification) string {
	if s := strings.TrimSpace(n.Subject); s != "" {
		return s
	}
	if job := n.Fields["job"]; job != "" {
		return fmt.Sprintf("%s of job %s", n.Event, job)
	}
	return n.Event
}
