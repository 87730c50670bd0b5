package httpapi

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/config"
)

// options is the source's YAML, as written. It carries no runtime state:
// parse turns it into a validated spec.
type options struct {
	BaseURL      string            `yaml:"base_url" required:"true"`
	Auth         *authOptions      `yaml:"auth"`
	Headers      map[string]string `yaml:"headers"`
	Params       map[string]string `yaml:"params"`
	ParamsEnv    map[string]string `yaml:"params_env"`
	SecretParams []string          `yaml:"secret_params"`
	Timeout      time.Duration     `yaml:"timeout"`
	Retry        retryOptions      `yaml:"retry"`
	MaxPageBytes int64             `yaml:"max_page_bytes"`
	Entities     config.Node       `yaml:"entities" required:"true"`
}

type authOptions struct {
	Type        string `yaml:"type" required:"true"`
	TokenEnv    string `yaml:"token_env"`
	UsernameEnv string `yaml:"username_env"`
	PasswordEnv string `yaml:"password_env"`
	Header      string `yaml:"header"`
}

type retryOptions struct {
	MaxAttempts   int           `yaml:"max_attempts"`
	BaseDelay     time.Duration `yaml:"base_delay"`
	MaxDelay      time.Duration `yaml:"max_delay"`
	MaxRetryAfter time.Duration `yaml:"max_retry_after"`
}

type entityOptions struct {
	Path             string              `yaml:"path" required:"true"`
	Params           map[string]string   `yaml:"params"`
	Records          string              `yaml:"records"`
	Pagination       paginationOptions   `yaml:"pagination"`
	Incremental      *incrementalOptions `yaml:"incremental"`
	Fields           config.Node         `yaml:"fields"` // required but for raw tables
	Passthrough      []string            `yaml:"passthrough"`
	TimestampLayouts []string            `yaml:"timestamp_layouts"`
	Epoch            string              `yaml:"epoch"`
	Total            string              `yaml:"total"`
	CheckpointEvery  int                 `yaml:"checkpoint_every"`
}

type paginationOptions struct {
	Type        string `yaml:"type"`
	PageParam   string `yaml:"page_param"`
	Start       *int   `yaml:"start"`
	OffsetParam string `yaml:"offset_param"`
	SizeParam   string `yaml:"size_param"`
	Size        int    `yaml:"size"`
	CursorParam string `yaml:"cursor_param"`
	NextCursor  string `yaml:"next_cursor"`
}

type incrementalOptions struct {
	Param   string         `yaml:"param" required:"true"`
	Format  string         `yaml:"format"`
	Field   string         `yaml:"field"`
	Overlap *time.Duration `yaml:"overlap"`
}

// Defaults for keys left out of the config.
const (
	defaultTimeout       = 30 * time.Second
	defaultMaxAttempts   = 5
	defaultBaseDelay     = 500 * time.Millisecond
	defaultMaxDelay      = 30 * time.Second
	defaultMaxRetryAfter = 5 * time.Minute
	defaultMaxPageBytes  = 64 << 20
	defaultOverlap       = 5 * time.Minute
)

// paginationType names how an entity's pages are walked.
type paginationType string

const (
	pageNone   paginationType = "none"
	pageNumber paginationType = "page"
	pageOffset paginationType = "offset"
	pageCursor paginationType = "cursor"
	pageLink   paginationType = "link"
)

func (p paginationType) Valid() bool {
	switch p {
	case pageNone, pageNumber, pageOffset, pageCursor, pageLink:
		return true
	}
	return false
}

// spec is a parsed and validated source config plus the secrets read from the
// environment.
type spec struct {
	base     *url.URL
	header   map[string]string // static headers, auth included
	params   url.Values        // static query parameters for every request
	envQuery map[string]string // secret query parameters, re-applied to every request
	redact   *redactor
	timeout  time.Duration
	retry    retryOptions
	maxBytes int64
	entities []*entitySpec // in config order
}

// entitySpec is one entity's validated config.
type entitySpec struct {
	name        string
	path        string
	params      url.Values
	records     []string // JSON path to the records array; nil = top level
	pag         paginationSpec
	inc         *incrementalSpec
	mapper      *mapper
	total       []string
	checkpointN int
}

type paginationSpec struct {
	typ         paginationType
	pageParam   string
	start       int
	offsetParam string
	sizeParam   string
	size        int
	cursorParam string
	nextCursor  []string
}

type incrementalSpec struct {
	param   string
	format  string // rfc3339, unix, unix_ms or a Go time layout
	column  int    // index of the timestamp column in the mapper's schema
	overlap time.Duration
}

func parseSpec(n config.Node) (*spec, error) {
	var o options
	if err := n.Decode(&o); err != nil {
		return nil, err
	}
	s := &spec{header: map[string]string{}, params: url.Values{}, envQuery: map[string]string{}}
	s.redact = newRedactor()

	u, err := url.Parse(o.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, n.Get("base_url").Errorf("expected an http:// or https:// URL, found %q", o.BaseURL)
	}
	if u.User != nil {
		return nil, n.Get("base_url").Errorf("credentials in the URL are not allowed; use auth with token_env or username_env/password_env")
	}
	s.base = u

	for k, v := range o.Headers {
		if strings.EqualFold(k, "Authorization") {
			return nil, n.Get("headers").Get(k).Errorf("set Authorization through auth, so that it is read from the environment and redacted")
		}
		s.header[k] = v
	}
	for k, v := range o.Params {
		s.params.Set(k, v)
	}
	for param, env := range o.ParamsEnv {
		v := os.Getenv(env)
		if v == "" {
			return nil, n.Get("params_env").Get(param).Errorf("environment variable %s is not set or empty", env)
		}
		s.envQuery[param] = v
		s.redact.addParam(param)
		s.redact.addValue(v)
	}
	for _, p := range o.SecretParams {
		s.redact.addParam(p)
	}
	if o.Auth != nil {
		if err := s.parseAuth(n.Get("auth"), o.Auth); err != nil {
			return nil, err
		}
	}

	s.timeout = o.Timeout
	if s.timeout == 0 {
		s.timeout = defaultTimeout
	}
	if s.timeout < 0 {
		return nil, n.Get("timeout").Errorf("must be positive")
	}
	s.retry = o.Retry
	rn := n.Get("retry")
	if s.retry.MaxAttempts == 0 {
		s.retry.MaxAttempts = defaultMaxAttempts
	}
	if s.retry.MaxAttempts < 1 {
		return nil, rn.Get("max_attempts").Errorf("must be at least 1")
	}
	if s.retry.BaseDelay == 0 {
		s.retry.BaseDelay = defaultBaseDelay
	}
	if s.retry.MaxDelay == 0 {
		s.retry.MaxDelay = defaultMaxDelay
	}
	if s.retry.MaxRetryAfter == 0 {
		s.retry.MaxRetryAfter = defaultMaxRetryAfter
	}
	if s.retry.BaseDelay < 0 || s.retry.MaxDelay < s.retry.BaseDelay {
		return nil, rn.Errorf("base_delay must be positive and not above max_delay (%s)", s.retry.MaxDelay)
	}
	if s.retry.MaxRetryAfter < 0 {
		return nil, rn.Get("max_retry_after").Errorf("must be positive")
	}
	s.maxBytes = o.MaxPageBytes
	if s.maxBytes == 0 {
		s.maxBytes = defaultMaxPageBytes
	}
	if s.maxBytes < 0 {
		return nil, n.Get("max_page_bytes").Errorf("must be positive")
	}

	en := n.Get("entities")
	if en.Y == nil || en.Y.Kind != yaml.MappingNode || len(en.Keys()) == 0 {
		return nil, en.Errorf("expected a mapping of entity name to settings, e.g. tickets: {path: /tickets, fields: {...}}")
	}
	for _, name := range en.Keys() {
		es, err := parseEntity(en.Get(name), name)
		if err != nil {
			return nil, err
		}
		s.entities = append(s.entities, es)
	}
	return s, nil
}

func (s *spec) parseAuth(n config.Node, a *authOptions) error {
	env := func(key, name string) (string, error) {
		if name == "" {
			return "", n.Errorf("auth type %s needs %s", a.Type, key)
		}
		v := os.Getenv(name)
		if v == "" {
			return "", n.Get(key).Errorf("environment variable %s is not set or empty", name)
		}
		s.redact.addValue(v)
		return v, nil
	}
	switch a.Type {
	case "none":
	case "bearer":
		tok, err := env("token_env", a.TokenEnv)
		if err != nil {
			return err
		}
		s.header["Authorization"] = "Bearer " + tok
	case "basic":
		user, err := env("username_env", a.UsernameEnv)
		if err != nil {
			return err
		}
		pass, err := env("password_env", a.PasswordEnv)
		if err != nil {
			return err
		}
		r := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
		s.header["Authorization"] = r
		s.redact.addValue(r)
		s.redact.addValue(strings.TrimPrefix(r, "Basic "))
	case "header":
		if a.Header == "" {
			return n.Errorf("auth type header needs header (the header name, e.g. X-API-Key)")
		}
		tok, err := env("token_env", a.TokenEnv)
		if err != nil {
			return err
		}
		s.header[a.Header] = tok
	default:
		return n.Get("type").Errorf("unknown auth type %q (known: none, bearer, basic, header)", a.Type)
	}
	return nil
}

func parseEntity(n config.Node, name string) (*entitySpec, error) {
	ent, err := extract.ResolveEntity(name)
	if err != nil {
		return nil, n.Errorf("%v", err)
	}
	var o entityOptions
	if err := n.Decode(&o); err != nil {
		return nil, err
	}
	es := &entitySpec{name: name, path: o.Path, params: url.Values{}, records: splitPath(o.Records), total: splitPath(o.Total)}
	if !strings.HasPrefix(o.Path, "/") && o.Path != "" {
		return nil, n.Get("path").Errorf("expected a path starting with /, found %q", o.Path)
	}
	for k, v := range o.Params {
		es.params.Set(k, v)
	}
	es.checkpointN = o.CheckpointEvery
	if es.checkpointN == 0 {
		es.checkpointN = 1
	}
	if es.checkpointN < 0 {
		return nil, n.Get("checkpoint_every").Errorf("must be at least 1 page")
	}

	pag, err := parsePagination(n.Get("pagination"), o.Pagination)
	if err != nil {
		return nil, err
	}
	es.pag = pag

	if ent.Raw {
		switch {
		case o.Fields.Y != nil || len(o.Passthrough) > 0:
			return nil, n.Errorf("%s is a raw table (no entity of that name: %s): every field of the records lands as it is; map them in a SQL model, or name a canonical entity", name, strings.Join(extract.EntityNames(), ", "))
		case o.Incremental != nil:
			return nil, n.Get("incremental").Errorf("a raw table is read in full every run (incremental reads need a canonical entity's updated_at)")
		}
		es.mapper = newRawMapper()
		return es, nil
	}
	if o.Fields.Y == nil {
		return nil, n.Errorf("missing required key \"fields\"")
	}
	m, err := newMapper(n, ent, o)
	if err != nil {
		return nil, err
	}
	es.mapper = m

	if o.Incremental != nil {
		in := n.Get("incremental")
		inc := &incrementalSpec{param: o.Incremental.Param, format: o.Incremental.Format, overlap: defaultOverlap}
		if inc.format == "" {
			inc.format = "rfc3339"
		}
		switch inc.format {
		case "rfc3339", "unix", "unix_ms":
		default:
			if !validLayout(inc.format) {
				return nil, in.Get("format").Errorf("expected rfc3339, unix, unix_ms or a Go time layout such as 2006-01-02T15:04:05Z07:00, found %q", inc.format)
			}
		}
		if o.Incremental.Overlap != nil {
			inc.overlap = *o.Incremental.Overlap
		}
		if inc.overlap < 0 {
			return nil, in.Get("overlap").Errorf("must not be negative")
		}
		field := o.Incremental.Field
		if field == "" {
			field = "updated_at"
		}
		inc.column = m.columnIndex(field)
		fn := in.Get("field")
		if fn.Y == nil {
			fn = in // the default field: point at the incremental block
		}
		if inc.column < 0 || m.cols[inc.column].path == nil {
			return nil, fn.Errorf("column %q is not mapped in fields; the incremental cursor needs it", field)
		}
		if m.cols[inc.column].typ != extract.Timestamp {
			return nil, fn.Errorf("column %q is a %s, the incremental cursor needs a timestamp", field, m.cols[inc.column].typ)
		}
		es.inc = inc
	}
	return es, nil
}

func parsePagination(n config.Node, o paginationOptions) (paginationSpec, error) {
	p := paginationSpec{typ: paginationType(o.Type), pageParam: o.PageParam, offsetParam: o.OffsetParam,
		sizeParam: o.SizeParam, size: o.Size, cursorParam: o.CursorParam, nextCursor: splitPath(o.NextCursor)}
	if p.typ == "" {
		p.typ = pageNone
	}
	if !p.typ.Valid() {
		return p, n.Get("type").Errorf("unknown pagination type %q (known: none, page, offset, cursor, link)", o.Type)
	}
	if o.Start != nil {
		if p.typ != pageNumber {
			return p, n.Get("start").Errorf("start applies to pagination type page only")
		}
		p.start = *o.Start
	} else {
		p.start = 1
	}
	if p.size < 0 {
		return p, n.Get("size").Errorf("must be positive")
	}
	if p.sizeParam != "" && p.size == 0 {
		return p, n.Errorf("size_param %q needs size (records per page)", p.sizeParam)
	}
	only := func(key, val string, typ paginationType) error {
		if val != "" && p.typ != typ {
			return n.Get(key).Errorf("%s applies to pagination type %s only", key, typ)
		}
		return nil
	}
	for _, c := range []struct {
		key, val string
		typ      paginationType
	}{{"page_param", o.PageParam, pageNumber}, {"offset_param", o.OffsetParam, pageOffset},
		{"cursor_param", o.CursorParam, pageCursor}, {"next_cursor", o.NextCursor, pageCursor}} {
		if err := only(c.key, c.val, c.typ); err != nil {
			return p, err
		}
	}
	switch p.typ {
	case pageNumber:
		if p.pageParam == "" {
			p.pageParam = "page"
		}
	case pageOffset:
		if p.offsetParam == "" {
			p.offsetParam = "offset"
		}
		if p.sizeParam == "" {
			p.sizeParam = "limit"
		}
		if p.size == 0 {
			return p, n.Errorf("pagination type offset needs size (the limit sent with each request)")
		}
	case pageCursor:
		if p.cursorParam == "" || len(p.nextCursor) == 0 {
			return p, n.Errorf("pagination type cursor needs cursor_param (query parameter) and next_cursor (JSON path to the next token)")
		}
	}
	return p, nil
}

// splitPath splits a dotted JSON path; "" is the top level.
func splitPath(p string) []string {
	if p == "" || p == "." {
		return nil
	}
	return strings.Split(p, ".")
}

// validLayout reports whether a Go time layout round-trips a reference time,
// which catches typos such as YYYY-MM-DD.
func validLayout(layout string) bool {
	ref := time.Date(2021, 3, 14, 15, 9, 26, 0, time.UTC)
	s := ref.Format(layout)
	if s == layout {
		return false
	}
	_, err := time.Parse(layout, s)
	return err == nil
}

func (s *spec) entity(name string) (*entitySpec, error) {
	i := slices.IndexFunc(s.entities, func(e *entitySpec) bool { return e.name == name })
	if i < 0 {
		names := make([]string, len(s.entities))
		for j, e := range s.entities {
			names[j] = e.name
		}
		return nil, fmt.Errorf("entity %s is not configured for this source (configured: %s)", name, strings.Join(names, ", "))
	}
	return s.entities[i], nil
}
