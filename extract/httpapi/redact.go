package httpapi

import (
	"net/url"
	"strings"

	"github.com/cdwhq/cdw/internal/secret"
)

// redacted replaces secret values wherever cdw prints a URL or an error.
const redacted = secret.Mask

// redactor keeps secrets out of logs, errors, quarantine rows and state:
// query parameters named as secret lose their values, and the secret values
// themselves (token, password, API keys) go to cdw's one scrubber
// (internal/secret), which masks them in any text.
type redactor struct {
	params map[string]bool // lower-cased query parameter names
}

func newRedactor() *redactor {
	return &redactor{params: map[string]bool{}}
}

func (r *redactor) addParam(name string) { r.params[strings.ToLower(name)] = true }

func (r *redactor) addValue(v string) { secret.Add(v) }

// URL returns u as text with user info dropped and secret parameters masked.
func (r *redactor) URL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	if c.RawQuery != "" {
		q := c.Query()
		for k := range q {
			if r.params[strings.ToLower(k)] {
				q[k] = []string{redacted}
			}
		}
		c.RawQuery = q.Encode()
	}
	return r.Text(c.String())
}

// Text scrubs secret values from s.
func (r *redactor) Text(s string) string { return secret.Scrub(s) }

// Error wraps err so that its text is scrubbed while errors.Is and errors.As
// still see the original chain.
func (r *redactor) Error(err error) error {
	if err == nil || secret.Scrub(err.Error()) == err.Error() {
		return err
	}
	return secret.Err(err)
}
