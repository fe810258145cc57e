package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/backup-runner/runner/plugins/builtin/config"
	"github.com/backup-runner/runner/plugins/sdk/schema"
)

const (
	defaultRetries = 3
	maxRetries     = 10
	// defaultBackoff is the pause before the first retry; it doubles for
	// each further one, up to maxBackoff.
	defaultBackoff = 500 * time.Millisecond
	maxBackoff     = 8 * time.Second
	// maxRetryAfter bounds how long a server's Retry-After may make us
	// wait; within the timeout in any case.
	maxRetryAfter = 30 * time.Second
	// maxErrorBody is how much of an error response is read to quote it.
	maxErrorBody = 512
)

// decodeURL reads a required http(s) URL attribute.
func decodeURL(o config.Object, name string) (*url.URL, schema.Diagnostics) {
	if o.IsUnknown(name) {
		return nil, nil
	}
	raw, ok := o.String(name)
	if !ok {
		return nil, schema.Diagnostics{schema.Errorf([]string{name}, "%s is required", name)}
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url's errors quote the whole URL, which may hold a token.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, schema.Diagnostics{schema.Errorf([]string{name}, "%s is not a URL: %v", name, err)}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, schema.Diagnostics{schema.Errorf([]string{name}, "%s must be an http:// or https:// URL, not %s", name, redactURL(u))}
	}
	if u.Host == "" {
		return nil, schema.Diagnostics{schema.Errorf([]string{name}, "%s has no host: %s", name, redactURL(u))}
	}
	return u, nil
}

// decodeRetries reads the retries attribute.
func decodeRetries(o config.Object) (int, schema.Diagnostics) {
	n, ok, err := o.Int("retries")
	switch {
	case err != nil:
		return 0, schema.Diagnostics{schema.Errorf([]string{"retries"}, "retries: %v", err)}
	case !ok:
		return defaultRetries, nil
	case n < 0 || n > maxRetries:
		return 0, schema.Diagnostics{schema.Errorf([]string{"retries"}, "retries must be 0 to %d, not %d", maxRetries, n)}
	}
	return int(n), nil
}

func retriesAttr() *schema.Attribute {
	return &schema.Attribute{
		Name: "retries", Type: cty.Number,
		Description: fmt.Sprintf("Further attempts after a connection error, a 5xx or a 429 answer, with growing pauses, within timeout (default %d).", defaultRetries),
	}
}

// redactURL shows u without what may be secret: the password of its user
// information and the values of its query.
func redactURL(u *url.URL) string {
	c := *u
	c.Fragment, c.RawFragment = "", ""
	if c.RawQuery != "" {
		q := c.Query()
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k+"=…")
		}
		sort.Strings(keys)
		c.RawQuery = strings.Join(keys, "&")
	}
	return c.Redacted()
}

var headerNameRe = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// request is one HTTP delivery: a method, URL, headers and body, sent with
// retries.
type request struct {
	method      string
	url         *url.URL
	headers     map[string]string
	body        []byte
	contentType string
	caFile      string
	retries     int
	backoff     time.Duration // before the first retry; 0: defaultBackoff
}

// httpError is a delivery that got an answer, but not a 2xx one.
type httpError struct {
	status int
	text   string // the status line's text and a quote of the body
}

func (e *httpError) Error() string { return e.text }

// retryable says whether a failed attempt is worth repeating: no answer
// at all, a server error, or "too many requests".
func retryable(err error) bool {
	var he *httpError
	if errors.As(err, &he) {
		return he.status >= 500 || he.status == http.StatusTooManyRequests
	}
	return true
}

// send delivers r, retrying as retryable says until r.retries are used up
// or ctx ends. The error names the method and the redacted URL.
func (r *request) send(ctx context.Context) error {
	where := r.method + " " + redactURL(r.url)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if r.caFile != "" {
		cfg, err := tlsConfig("", r.caFile)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		tr.TLSClientConfig = cfg
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	backoff := r.backoff
	if backoff <= 0 {
		backoff = defaultBackoff
	}
	attempts := 0
	for {
		attempts++
		wait, err := r.attempt(ctx, client)
		if err == nil {
			return nil
		}
		if attempts > r.retries || !retryable(err) || ctx.Err() != nil {
			return r.failure(ctx, where, attempts, err)
		}
		wait = max(wait, backoff)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			// The next attempt could not finish in time anyway.
			return r.failure(ctx, where, attempts, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return r.failure(ctx, where, attempts, err)
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func (r *request) failure(ctx context.Context, where string, attempts int, err error) error {
	msg := fmt.Sprintf("%s: %v", where, err)
	if attempts > 1 {
		msg += fmt.Sprintf(" (after %d attempts)", attempts)
	}
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		msg += ": " + context.Cause(ctx).Error()
	}
	return errors.New(msg)
}

// attempt makes one request. On failure it may say how long the server
// asked to wait (Retry-After in seconds).
func (r *request) attempt(ctx context.Context, client *http.Client) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, r.method, r.url.String(), bytes.NewReader(r.body))
	if err != nil {
		return 0, stripURL(err)
	}
	req.Header.Set("User-Agent", "runner/"+config.Version)
	if r.contentType != "" && len(r.body) > 0 {
		req.Header.Set("Content-Type", r.contentType)
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, stripURL(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return 0, nil
	}
	quote, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	text := resp.Status
	if q := oneLine(string(quote)); q != "" {
		text += ": " + q
	}
	var wait time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		wait = min(time.Duration(s)*time.Second, maxRetryAfter)
	}
	return wait, &httpError{status: resp.StatusCode, text: text}
}

// stripURL drops the URL from net/http's errors, which quote it whole,
// query and password included; the caller names the redacted URL itself.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
