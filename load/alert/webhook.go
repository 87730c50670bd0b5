package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cdwhq/cdw/internal/secret"
)

// Payload is the JSON body of a webhook post. Text is what chat tools show
// (Slack, Mattermost and Teams incoming webhooks read a top-level "text");
// the rest is for receivers that act on alerts. IdempotencyKey is also sent
// as the Idempotency-Key header: the same for every delivery of one event of
// one episode, so a receiver that keeps the keys it has seen shows a
// redelivery after a crash once.
type Payload struct {
	Text           string   `json:"text"`
	IdempotencyKey string   `json:"idempotency_key"`
	Event          string   `json:"event"`   // early_warning.entered or early_warning.left
	Episode        string   `json:"episode"` // one customer's stay on early warning
	AsOf           string   `json:"as_of"`   // churn_risk.as_of of the event
	Since          string   `json:"since"`   // as_of the episode began
	Customer       Customer `json:"customer"`
}

func payload(m *Message) Payload {
	return Payload{Text: text(m), IdempotencyKey: m.Key, Event: "early_warning." + m.Event, Episode: m.Episode,
		AsOf: m.AsOf, Since: m.Since, Customer: m.Customer}
}

// errPermanent marks a failure a retry cannot fix (a 4xx other than 408/429).
var errPermanent = errors.New("not retried")

// post sends one message to the webhook: retries on connection errors, 5xx,
// 408 and 429 (honouring Retry-After up to a minute) with doubling backoff.
func (r *runner) post(ctx context.Context, m *Message) error {
	body, err := json.Marshal(payload(m))
	if err != nil {
		return fmt.Errorf("encoding alert %s: %w", m.Key, err)
	}
	return r.retry(ctx, m.Webhook, func() (time.Duration, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.webhookURL, bytes.NewReader(body))
		if err != nil {
			// The message of a URL parse error quotes the URL.
			return 0, fmt.Errorf("webhook URL in $%s is not a valid URL: %w", r.cfg.WebhookURLEnv, errPermanent)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", m.Key)
		req.Header.Set("User-Agent", "cdw-alert/1")
		resp, err := r.client.Do(req)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // its message would quote the URL
			}
			return 0, secret.Err(fmt.Errorf("posting to the webhook in $%s: %w", r.cfg.WebhookURLEnv, err))
		}
		defer resp.Body.Close()
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return 0, nil
		}
		err = secret.Err(fmt.Errorf("webhook in $%s answered %s: %s", r.cfg.WebhookURLEnv, resp.Status, strings.TrimSpace(string(snippet))))
		switch {
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500:
			wait := time.Duration(0)
			if s, e := strconv.Atoi(resp.Header.Get("Retry-After")); e == nil && s > 0 {
				wait = min(time.Duration(s)*time.Second, time.Minute)
			}
			return wait, err
		default:
			return 0, fmt.Errorf("%w (%w)", err, errPermanent)
		}
	})
}

// retry runs one delivery attempt after another until it succeeds, fails
// permanently or used alerts.max_attempts, sleeping backoff (doubling, or
// the server's Retry-After when longer) between them.
func (r *runner) retry(ctx context.Context, d *Delivery, attempt func() (time.Duration, error)) error {
	backoff := r.cfg.Backoff
	for n := 1; ; n++ {
		d.Attempts++
		wait, err := attempt()
		if err == nil {
			d.LastError = ""
			return nil
		}
		d.LastError = secret.Scrub(err.Error())
		if errors.Is(err, errPermanent) || n >= r.cfg.MaxAttempts || ctx.Err() != nil {
			return fmt.Errorf("after %d attempt(s): %w", n, err)
		}
		r.log.Warn("alert delivery failed, retrying", "attempt", n, "err", err, "in", max(wait, backoff))
		select {
		case <-time.After(max(wait, backoff)):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff *= 2
	}
}
