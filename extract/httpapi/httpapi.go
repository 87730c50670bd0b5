// Package httpapi is the "httpapi" source kind: it extracts entities from
// paginated HTTP/JSON APIs (helpdesks, CRMs, shops). It walks pages by page
// number, offset, cursor token or Link header, maps JSON fields onto the
// canonical entity columns, retries transient failures with backoff, and
// checkpoints after every page so that a killed run resumes where it stopped.
//
// Register it by importing the package for its side effect:
//
//	import _ "github.com/cdwhq/cdw/extract/httpapi"
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/cdwhq/cdw/extract"
)

// KindName is the name under which this source kind registers.
const KindName = "httpapi"

func init() {
	extract.Register(extract.Kind{
		Name:     KindName,
		Doc:      "paginated HTTP/JSON API (page, offset, cursor or Link pagination; bearer/basic auth; retries; per-page checkpoints)",
		Open:     Open,
		Entities: extract.EntitiesKey,
	})
}

// Compile-time checks of the optional interfaces this source implements.
var (
	_ extract.Source  = (*Source)(nil)
	_ extract.Counter = (*Source)(nil)
)

// errNoTotal tells the runner there is no cheap count; it then shows no ETA.
var errNoTotal = errors.New("no total configured for this entity")

// Source is an open HTTP API source. It holds no connection state beyond an
// HTTP client with a pool of idle connections.
type Source struct {
	name   string
	spec   *spec
	client *client
	tr     *http.Transport

	mu       sync.Mutex
	prefetch *prefetched // first page fetched by Count, handed to the next Read
}

type prefetched struct {
	entity, url string
	resp        *response
}

// Open validates the source's options, reads its secrets from the
// environment and prepares an HTTP client. It makes no request.
func Open(ctx context.Context, cfg extract.SourceConfig) (extract.Source, error) {
	sp, err := parseSpec(cfg.Options)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", cfg.Name, err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	base := sp.base
	hc := &http.Client{
		Transport: tr,
		// Headers set by cdw (an API key header, say) would follow a redirect
		// anywhere; only same-origin redirects are followed.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			if req.URL.Scheme != base.Scheme || req.URL.Host != base.Host {
				return fmt.Errorf("redirected to %s://%s, not base_url's host; refusing to send credentials there", req.URL.Scheme, req.URL.Host)
			}
			return nil
		},
	}
	s := &Source{name: cfg.Name, spec: sp, tr: tr}
	s.client = &client{
		http: hc, spec: sp, source: cfg.Name, log: slog.Default,
		now: time.Now, sleep: sleepCtx, maxBytes: sp.maxBytes,
	}
	return s, nil
}

// Entities lists the configured entities in config order.
func (s *Source) Entities() []string {
	out := make([]string, len(s.spec.entities))
	for i, e := range s.spec.entities {
		out[i] = e.name
	}
	return out
}

// Read starts walking the entity's pages from the position in req.Cursor.
func (s *Source) Read(ctx context.Context, req extract.ReadRequest) (extract.Reader, error) {
	return s.newReader(req)
}

// Count returns how many records the read will still return, taken from the
// response's total (entity key total). It fetches the read's first page once,
// without retries, and hands it to the following Read, so counting costs no
// extra request.
func (s *Source) Count(ctx context.Context, req extract.ReadRequest) (int64, error) {
	e, err := s.spec.entity(req.Entity.Name)
	if err != nil {
		return 0, err
	}
	if e.total == nil {
		return 0, errNoTotal
	}
	r, err := s.newReader(req)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	u, err := s.spec.requestURL(e, r.pos, r.cp.Since)
	if err != nil {
		return 0, err
	}
	resp, err := s.client.get(ctx, u, fmt.Sprintf("%s page %d", e.name, r.pos.Page), 1)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	s.prefetch = &prefetched{entity: e.name, url: u.String(), resp: resp}
	s.mu.Unlock()
	v, _ := lookup(resp.doc, e.total)
	n, ok := v.(interface{ Int64() (int64, error) })
	if !ok {
		return 0, fmt.Errorf("total %s is %s, expected a number", joinPath(e.total), jsonKind(v))
	}
	total, err := n.Int64()
	if err != nil {
		return 0, fmt.Errorf("total %s: %w", joinPath(e.total), err)
	}
	// A resumed run only returns what is left.
	switch {
	case r.pos.Type == pageOffset:
		total -= r.pos.Offset
	case e.pag.size > 0:
		total -= int64(r.pos.Page-1) * int64(e.pag.size)
	}
	return max(total, 0), nil
}

// takePrefetch returns the page Count fetched when it is the one wanted.
func (s *Source) takePrefetch(entity, url string) *response {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.prefetch
	s.prefetch = nil
	if p == nil || p.entity != entity || p.url != url {
		return nil
	}
	return p.resp
}

// Close releases idle connections.
func (s *Source) Close() error {
	s.tr.CloseIdleConnections()
	return nil
}
