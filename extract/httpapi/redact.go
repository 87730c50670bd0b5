package httpapi

import (
	"net/url"
	"sort"
	"strings"
)

// redacted replaces secret values wherever cdw prints a URL or an error.
const redacted = "REDACTED"

// redactor keeps secrets out of logs, errors, quarantine rows and state:
// query parameters named as secret lose their values, and the secret values
// themselves (token, password, API keys) are scrubbed from any text as a
// second line of defence.
type redactor struct {
	params map[string]bool // lower-cased query parameter names
	values []string        // longest first, so a value containing another is scrubbed whole
}

func newRedactor() *redactor {
	return &redactor{params: map[string]bool{}}
}

func (r *redactor) addParam(name string) { r.params[strings.ToLower(name)] = true }

func (r *redactor) addValue(v string) {
	if v == "" {
		return
	}
	r.values = append(r.values, v)
	if e := url.QueryEscape(v); e != v {
		r.values = append(r.values, e)
	}
	sort.Slice(r.values, func(i, j int) bool { return len(r.values[i]) > len(r.values[j]) })
}

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
func (r *redactor) Text(s string) string {
	for _, v := range r.values {
		s = strings.ReplaceAll(s, v, redacted)
	}
	return s
}

// Error wraps err so that its text is scrubbed while errors.Is and errors.As
// still see the original chain.
func (r *redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := r.Text(msg)
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
