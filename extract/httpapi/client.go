package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrRetriesExhausted is wrapped by the error returned when a page still fails
// after retry.max_attempts attempts. Nothing of that page was handed to the
// runner, so the committed state still points at it.
var ErrRetriesExhausted = errors.New("retry budget exhausted")

// client fetches pages with a per-request timeout and retries.
type client struct {
	http     *http.Client
	spec     *spec
	source   string
	log      func() *slog.Logger
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error
	maxBytes int64
}

// response is one successfully fetched and decoded page.
type response struct {
	url    *url.URL
	header http.Header
	doc    any       // the decoded JSON body, numbers as json.Number
	date   time.Time // the server's Date header, zero when absent
}

// attemptError is what one failed attempt tells the retry loop.
type attemptError struct {
	status    int           // 0 for transport and body errors
	retryable bool          // a later attempt may succeed
	wait      time.Duration // server-requested delay (Retry-After); 0 = use backoff
	err       error
}

func (e *attemptError) Error() string {
	if e.status != 0 {
		return fmt.Sprintf("status %d %s: %v", e.status, http.StatusText(e.status), e.err)
	}
	return e.err.Error()
}

func (e *attemptError) Unwrap() error { return e.err }

// describe says "status 503 …" or "error: …" for messages.
func (e *attemptError) describe() string {
	if e.status != 0 {
		return e.Error()
	}
	return "error: " + e.Error()
}

// FetchError is returned when a page cannot be fetched: after the retry budget,
// or at once for answers that retrying cannot fix (such as 401 or 404).
type FetchError struct {
	What     string // e.g. "tickets page 3"
	URL      string // redacted
	Attempts int
	Status   int // HTTP status of the last attempt; 0 when it got no answer
	Err      error
}

func (e *FetchError) Error() string {
	head := fmt.Sprintf("fetching %s (GET %s): ", e.What, e.URL)
	switch err := e.Err.(type) {
	case exhausted:
		return head + fmt.Sprintf("giving up after %d attempts; last %s", e.Attempts, err.last.describe())
	case *attemptError:
		return head + err.describe()
	default:
		return head + e.Err.Error()
	}
}

func (e *FetchError) Unwrap() error { return e.Err }

// exhausted joins the sentinel with the last attempt's error so that both
// errors.Is(err, ErrRetriesExhausted) and errors.As(err, **attemptError) work.
type exhausted struct{ last *attemptError }

func (e exhausted) Error() string   { return e.last.Error() }
func (e exhausted) Unwrap() []error { return []error{ErrRetriesExhausted, e.last} }

// get fetches u, retrying transient failures up to attempts times (0 = the
// configured budget).
func (c *client) get(ctx context.Context, u *url.URL, what string, attempts int) (*response, error) {
	if attempts <= 0 {
		attempts = c.spec.retry.MaxAttempts
	}
	shown := c.spec.redact.URL(u)
	for attempt := 1; ; attempt++ {
		resp, ae := c.try(ctx, u)
		if ae == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("fetching %s: %w", what, ctx.Err())
		}
		fail := func(err error) error {
			return c.spec.redact.Error(&FetchError{What: what, URL: shown, Attempts: attempt, Status: ae.status, Err: err})
		}
		if !ae.retryable {
			return nil, fail(ae)
		}
		if attempt >= attempts {
			return nil, fail(exhausted{ae})
		}
		wait := ae.wait
		if wait > c.spec.retry.MaxRetryAfter {
			return nil, fail(fmt.Errorf("server asked to retry after %s, more than retry.max_retry_after (%s): %w", wait, c.spec.retry.MaxRetryAfter, ae))
		}
		if wait <= 0 {
			wait = c.backoff(attempt)
		}
		c.log().Warn("retrying request", "source", c.source, "request", what, "url", shown,
			"attempt", attempt, "of", attempts, "status", ae.status, "err", c.spec.redact.Text(ae.err.Error()),
			"wait", wait.String())
		if err := c.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("fetching %s: waiting to retry: %w", what, err)
		}
	}
}

// backoff is exponential with "equal jitter": half the delay is fixed, half
// random, so many clients retrying together spread out but still back off.
func (c *client) backoff(attempt int) time.Duration {
	d := c.spec.retry.BaseDelay
	for i := 1; i < attempt && d < c.spec.retry.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, c.spec.retry.MaxDelay)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

// try makes one attempt: the timeout covers connecting, waiting and reading the
// whole body, so a server that stalls mid-body is cut off too.
func (c *client) try(parent context.Context, u *url.URL) (*response, *attemptError) {
	ctx, cancel := context.WithTimeout(parent, c.spec.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, &attemptError{err: fmt.Errorf("building request: %w", err)}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "cdw-httpapi")
	for k, v := range c.spec.header {
		req.Header.Set(k, v)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	defer res.Body.Close()

	switch {
	case res.StatusCode >= 200 && res.StatusCode < 300:
	case res.StatusCode == http.StatusTooManyRequests, res.StatusCode == http.StatusRequestTimeout, res.StatusCode >= 500:
		return nil, &attemptError{status: res.StatusCode, retryable: true,
			wait: retryAfter(res.Header, c.now()), err: errorBody(res.Body)}
	default:
		return nil, &attemptError{status: res.StatusCode, err: errorBody(res.Body)}
	}

	body, err := io.ReadAll(io.LimitReader(res.Body, c.maxBytes+1))
	if err != nil {
		return nil, c.transportError(ctx, fmt.Errorf("reading body: %w", err))
	}
	if int64(len(body)) > c.maxBytes {
		return nil, &attemptError{err: fmt.Errorf("response is larger than max_page_bytes (%d bytes); ask for smaller pages", c.maxBytes)}
	}
	doc, err := decodeJSON(body)
	if err != nil {
		// A body cut short by a proxy or a dropped connection that still ended
		// cleanly looks like this; a fresh attempt usually gets the full page.
		return nil, &attemptError{retryable: true, err: fmt.Errorf("decoding JSON body (%d bytes): %w", len(body), err)}
	}
	r := &response{url: u, header: res.Header, doc: doc}
	if d, err := http.ParseTime(res.Header.Get("Date")); err == nil {
		r.date = d.UTC()
	}
	return r, nil
}

// transportError classifies an error from sending or reading: all are
// retryable (dropped connections, resets, timeouts). The request URL is left
// out of the message: it is printed, redacted, by the caller.
func (c *client) transportError(ctx context.Context, err error) *attemptError {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("request timed out after %s (timeout): %w", c.spec.timeout, err)
	}
	return &attemptError{retryable: true, err: err}
}

// errorBody reads a short excerpt of an error response for the message and
// drains a little more so the connection can be reused.
func errorBody(r io.Reader) error {
	buf, _ := io.ReadAll(io.LimitReader(r, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(r, 64<<10))
	text := strings.TrimSpace(strings.ToValidUTF8(string(buf), "?"))
	if len(buf) == 512 {
		text += "…"
	}
	if text == "" {
		return errors.New("empty body")
	}
	return fmt.Errorf("%q", text)
}

// retryAfter reads a Retry-After header given in seconds or as an HTTP date.
// A date is measured against the server's own Date header when present, so a
// skewed local clock does not stretch or cut the wait.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(min(secs, int64(1<<33))) * time.Second
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		now = d
	}
	return max(at.Sub(now), 0)
}

// decodeJSON decodes one JSON document, keeping numbers exact.
func decodeJSON(body []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("unexpected data after the JSON document at byte %d", dec.InputOffset())
	}
	return doc, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
