// Package secret keeps credentials out of everything cdw shows or stores.
// cdw reads secrets only from environment variables named by `*_env` keys of
// cdw.yaml; the config loader registers every such value here, and each place
// where text leaves the process (the CLI's error line, the slog handler, run
// history, /healthz, reports) passes it through Scrub. One scrubber, so a
// server that echoes a password (an SMTP 535, an HTTP 401 body, a PostgreSQL
// proxy's FATAL) cannot leak it through a path someone forgot.
package secret

import (
	"encoding/base64"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Mask replaces a secret in scrubbed text.
const Mask = "REDACTED"

// MinLen is the shortest value scrubbed: replacing every "ab" in every log
// line would destroy the text and still not protect a two-letter password.
// Shorter secrets are reported by Add so the user learns of it.
const MinLen = 4

var (
	mu       sync.RWMutex
	values   []string
	replacer *strings.Replacer
)

// Add registers secret values to scrub from now on. It returns the values
// that are too short to scrub reliably (shorter than MinLen).
func Add(vs ...string) (tooShort []string) {
	mu.Lock()
	defer mu.Unlock()
	for _, v := range vs {
		if v == "" {
			continue
		}
		if len(v) < MinLen {
			tooShort = append(tooShort, v)
			continue
		}
		// The forms a value takes on the wire and in URLs: a server or a
		// Go error may echo any of them.
		for _, f := range []string{v, url.QueryEscape(v), url.PathEscape(v), base64.StdEncoding.EncodeToString([]byte(v))} {
			if !slices.Contains(values, f) {
				values = append(values, f)
			}
		}
	}
	// Longest first, so a secret that contains another is masked whole.
	sort.Slice(values, func(i, j int) bool { return len(values[i]) > len(values[j]) })
	pairs := make([]string, 0, 2*len(values))
	for _, v := range values {
		pairs = append(pairs, v, Mask)
	}
	replacer = strings.NewReplacer(pairs...)
	return tooShort
}

// AddEnv registers the values of the named environment variables (unset
// ones are skipped: the component that needs them reports that). It returns
// the names whose values are too short to scrub.
func AddEnv(names ...string) (tooShort []string) {
	for _, n := range names {
		if v := os.Getenv(n); v != "" && len(Add(v)) > 0 {
			tooShort = append(tooShort, n)
		}
	}
	return tooShort
}

// Scrub returns s with every registered secret masked.
func Scrub(s string) string {
	mu.RLock()
	r := replacer
	mu.RUnlock()
	if r == nil {
		return s
	}
	return r.Replace(s)
}

// Err returns err with a scrubbed message; errors.Is and errors.As still see
// the original chain. Nil stays nil.
func Err(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*scrubbed); ok {
		return err
	}
	return &scrubbed{err: err}
}

type scrubbed struct{ err error }

func (e *scrubbed) Error() string { return Scrub(e.err.Error()) }
func (e *scrubbed) Unwrap() error { return e.err }

// reset forgets every secret (tests only).
func reset() {
	mu.Lock()
	values, replacer = nil, nil
	mu.Unlock()
}
