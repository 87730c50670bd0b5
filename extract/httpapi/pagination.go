package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrRepeatedPage is wrapped by the error that stops a read whose server hands
// out a page it already gave (same cursor token or next link, or the same
// records twice in a row). Without it a buggy server would loop forever.
var ErrRepeatedPage = errors.New("server repeated a page")

// cursorVersion is bumped when the checkpoint layout changes incompatibly.
const cursorVersion = 1

// checkpoint is the cursor this source commits through the runner. Between
// runs only HighWater is set; during a run Next says where to continue, and
// Since and Started keep the run's query stable across a resume.
type checkpoint struct {
	V int `json:"v"`
	// HighWater is the largest incremental timestamp seen: of the last
	// completed run between runs, the running maximum during a run.
	HighWater *time.Time `json:"high_water,omitempty"`
	// Since is the updated_since value sent by the run in progress.
	Since *time.Time `json:"since,omitempty"`
	// Started is when the run in progress began, by the server's clock; the
	// high water never passes it, so rows changed during a long run are
	// fetched again next time rather than skipped.
	Started *time.Time `json:"started,omitempty"`
	// Next is the next page of the run in progress; nil between runs.
	Next *position `json:"next,omitempty"`
}

// position is where a read continues.
type position struct {
	Type   paginationType `json:"type"`
	Page   int            `json:"page"`             // 1-based ordinal of the page within the run
	Number int            `json:"number,omitempty"` // page pagination: the page parameter
	Offset int64          `json:"offset,omitempty"` // offset pagination
	Token  string         `json:"token,omitempty"`  // cursor pagination
	URL    string         `json:"url,omitempty"`    // link pagination: the next link
	// LastHash fingerprints the previous page's records, so a server that
	// ignores the page parameter is caught even across a resume.
	LastHash string `json:"last_hash,omitempty"`
}

func decodeCheckpoint(raw json.RawMessage) (checkpoint, error) {
	var cp checkpoint
	if len(raw) == 0 || string(raw) == "null" {
		return checkpoint{V: cursorVersion}, nil
	}
	if err := json.Unmarshal(raw, &cp); err != nil {
		return cp, fmt.Errorf("decoding the committed cursor: %w", err)
	}
	if cp.V != cursorVersion {
		return cp, fmt.Errorf("the committed cursor has version %d, this cdw reads version %d; run a full refresh", cp.V, cursorVersion)
	}
	return cp, nil
}

func (cp checkpoint) encode() json.RawMessage {
	b, err := json.Marshal(cp)
	if err != nil {
		panic("httpapi: encoding checkpoint: " + err.Error()) // only plain fields: cannot fail
	}
	return b
}

// first is the position of a run's first page.
func (p paginationSpec) first() position {
	pos := position{Type: p.typ, Page: 1}
	if p.typ == pageNumber {
		pos.Number = p.start
	}
	return pos
}

// requestURL builds the URL of the page at pos.
func (s *spec) requestURL(e *entitySpec, pos position, since *time.Time) (*url.URL, error) {
	var u *url.URL
	if pos.Type == pageLink && pos.URL != "" {
		// The server's next link already carries its own parameters.
		next, err := url.Parse(pos.URL)
		if err != nil {
			return nil, fmt.Errorf("parsing next link from the cursor: %w", err)
		}
		u = next
	} else {
		c := *s.base
		c.Path = strings.TrimSuffix(c.Path, "/") + e.path
		c.RawPath = ""
		q := c.Query()
		for k, v := range s.params {
			q[k] = v
		}
		for k, v := range e.params {
			q[k] = v
		}
		if e.inc != nil && since != nil {
			q.Set(e.inc.param, formatSince(*since, e.inc.format))
		}
		p := e.pag
		if p.sizeParam != "" {
			q.Set(p.sizeParam, strconv.Itoa(p.size))
		}
		switch pos.Type {
		case pageNumber:
			q.Set(p.pageParam, strconv.Itoa(pos.Number))
		case pageOffset:
			q.Set(p.offsetParam, strconv.FormatInt(pos.Offset, 10))
		case pageCursor:
			if pos.Token != "" {
				q.Set(p.cursorParam, pos.Token)
			}
		}
		c.RawQuery = q.Encode()
		u = &c
	}
	if len(s.envQuery) > 0 {
		q := u.Query()
		for k, v := range s.envQuery {
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
	}
	return u, nil
}

func formatSince(t time.Time, format string) string {
	t = t.UTC()
	switch format {
	case "rfc3339":
		return t.Format(time.RFC3339) // whole seconds, rounded down: never later than asked
	case "unix":
		return strconv.FormatInt(t.Unix(), 10)
	case "unix_ms":
		return strconv.FormatInt(t.UnixMilli(), 10)
	}
	return t.Format(format)
}

// advance decides, after a page with n records, whether it was the last and
// where the next one is. seen holds fingerprints of tokens and links already
// followed in this run.
func (s *spec) advance(e *entitySpec, pos position, resp *response, n int, hash string, seen map[uint64]bool) (position, bool, error) {
	p := e.pag
	next := position{Type: pos.Type, Page: pos.Page + 1, Number: pos.Number, Offset: pos.Offset}
	if n > 0 {
		if hash == pos.LastHash {
			return next, false, fmt.Errorf("%w: page %d has the same %d records as the page before it; the server seems to ignore the pagination parameters", ErrRepeatedPage, pos.Page, n)
		}
		next.LastHash = hash
	}
	short := n == 0 || (p.size > 0 && n < p.size)
	switch p.typ {
	case pageNone:
		return next, true, nil
	case pageNumber:
		next.Number++
		return next, short, nil
	case pageOffset:
		next.Offset += int64(n)
		return next, short, nil
	case pageCursor:
		raw, _ := lookup(resp.doc, p.nextCursor)
		var tok string
		switch x := raw.(type) {
		case nil:
		case string:
			tok = x
		case json.Number:
			tok = x.String()
		default:
			return next, false, fmt.Errorf("next_cursor %s is %s, expected a string or number", strings.Join(p.nextCursor, "."), jsonKind(raw))
		}
		if tok == "" {
			return next, true, nil
		}
		if tok == pos.Token || markSeen(seen, "token:"+tok) {
			return next, false, fmt.Errorf("%w: page %d gives next cursor %q, which was already followed", ErrRepeatedPage, pos.Page, truncate(tok, 64))
		}
		next.Token = tok
		return next, false, nil
	case pageLink:
		markSeen(seen, s.linkKey(resp.url))
		link := nextLink(resp.header)
		if link == "" {
			return next, true, nil
		}
		u, err := resp.url.Parse(link)
		if err != nil {
			return next, false, fmt.Errorf("parsing Link rel=next %q: %w", s.redact.Text(truncate(link, 200)), err)
		}
		if u.Scheme != s.base.Scheme || u.Host != s.base.Host {
			return next, false, fmt.Errorf("next link points to %s://%s, not to base_url's %s://%s; refusing to send credentials there", u.Scheme, u.Host, s.base.Scheme, s.base.Host)
		}
		// Our own secret parameters are re-added to every request; keep them
		// out of the state file.
		if len(s.envQuery) > 0 && u.RawQuery != "" {
			q := u.Query()
			for k := range s.envQuery {
				q.Del(k)
			}
			u.RawQuery = q.Encode()
		}
		if markSeen(seen, s.linkKey(u)) {
			return next, false, fmt.Errorf("%w: page %d links to %s as next, which was already fetched", ErrRepeatedPage, pos.Page, s.redact.URL(u))
		}
		next.URL = u.String()
		return next, false, nil
	}
	return next, true, nil
}

// linkKey identifies a page URL regardless of parameter order and of the
// secret parameters cdw adds itself.
func (s *spec) linkKey(u *url.URL) string {
	q := u.Query()
	for k := range s.envQuery {
		q.Del(k)
	}
	return "url:" + u.Scheme + "://" + u.Host + u.EscapedPath() + "?" + q.Encode()
}

// markSeen records key and reports whether it was there already. Keys are
// hashed so that a long run keeps 8 bytes per page, not whole URLs.
func markSeen(seen map[uint64]bool, key string) bool {
	h := fnv.New64a()
	h.Write([]byte(key))
	k := h.Sum64()
	if seen[k] {
		return true
	}
	seen[k] = true
	return false
}

// nextLink returns the target of the rel="next" entry of the Link headers
// (RFC 8288), or "".
func nextLink(h http.Header) string {
	for _, line := range h.Values("Link") {
		for _, entry := range splitLinks(line) {
			entry = strings.TrimSpace(entry)
			if !strings.HasPrefix(entry, "<") {
				continue
			}
			end := strings.Index(entry, ">")
			if end < 0 {
				continue
			}
			target := entry[1:end]
			for _, param := range strings.Split(entry[end+1:], ";") {
				k, v, ok := strings.Cut(strings.TrimSpace(param), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(k), "rel") {
					continue
				}
				for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(v), `"`)) {
					if strings.EqualFold(rel, "next") {
						return target
					}
				}
			}
		}
	}
	return ""
}

// splitLinks splits a Link header at the commas between entries, not at commas
// inside <…> or quotes.
func splitLinks(s string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '<':
			depth++
		case c == '>':
			if depth > 0 {
				depth--
			}
		case c == ',' && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// recordsHash fingerprints a page's records for repeat detection.
func recordsHash(records []any) string {
	h := fnv.New64a()
	enc := json.NewEncoder(h)
	for _, r := range records {
		_ = enc.Encode(r) // writes to a hash: cannot fail
	}
	return strconv.FormatUint(h.Sum64(), 16)
}
