package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cdwhq/cdw/internal/durable"
)

// RunOptions shape one report run.
type RunOptions struct {
	Out  string    // write the all-units (or Unit) HTML here and stop: no save, no mail
	Unit string    // with Out: render only this business unit
	Send bool      // e-mail the versions (needs smtp:)
	Now  time.Time // report date; default time.Now()
	Log  *slog.Logger
}

// Version is one rendered report: the all-units one or one unit's.
type Version struct {
	Unit       string   // "" for all units
	To         []string // recipients
	HTML, Text []byte   // HTML: the saved file, charts as inline SVG
	// MailHTML is the e-mailed HTML: charts as cid: references to Images
	// (PNG). Set only when the run sends.
	MailHTML []byte
	Images   []Image
	Subject  string
	File     string // saved file, if saved
}

// Result is what a report run produced.
type Result struct {
	Versions []Version
	Snapshot string // saved snapshot file
	Sent     int    // messages sent
	// NotSent says why no or not every version was e-mailed ("" when all
	// were), so the command can say so in one visible line.
	NotSent string
	Font    string // the font the PNG charts were drawn with, when sent
}

// snapshot holds the key figures of one report date, so the next report
// can show what changed.
type snapshot struct {
	Date   string                    `json:"date"`
	AsOf   string                    `json:"as_of"`
	Scopes map[string]*scopeSnapshot `json:"scopes"` // "" = all units
}

type scopeSnapshot struct {
	Customers int64                      `json:"customers"`
	Revenue   float64                    `json:"revenue"`
	Segments  map[string]segmentSnapshot `json:"segments"`
}

type segmentSnapshot struct {
	Customers int64   `json:"customers"`
	Revenue   float64 `json:"revenue"`
}

// Run builds the report from the published marts; it saves every version
// under reports/ with a JSON snapshot, and sends them when opts.Send.
func Run(ctx context.Context, cfg *Config, opts RunOptions) (*Result, error) {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	o := &cfg.Report
	t := languages[o.Lang]
	m, err := openMarts(ctx, o.Marts)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	date := now.Format("2006-01-02")
	prev, prevDate, err := latestSnapshot(o.Dir, date)
	if err != nil {
		return nil, err
	}
	scopes := []string{""}
	if opts.Out != "" {
		scopes = []string{opts.Unit}
	} else {
		for u := range o.Units {
			scopes = append(scopes, u)
		}
		sort.Strings(scopes[1:])
	}
	known, err := m.units(ctx)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	// The chart font measures labels (both outputs) and draws the PNGs.
	var cf *chartFont
	meas := estimateWidth
	if f, ferr := loadFont(o.Font, o.Lang); ferr == nil {
		cf, meas = f, f.width
	} else if opts.Send || o.Font != "" {
		return nil, ferr
	}
	if cf != nil && opts.Send {
		res.Font = cf.name()
		log.Info("report chart font", "font", cf.name())
	}
	snap := &snapshot{Date: date, Scopes: map[string]*scopeSnapshot{}}
	for _, scope := range scopes {
		if scope != "" && !slices.Contains(known, scope) {
			return nil, fmt.Errorf("report unit %q has no rows in segment_summary (units there: %s)", scope, strings.Join(known, ", "))
		}
		f, err := m.collect(ctx, scope, o)
		if err != nil {
			return nil, err
		}
		snap.AsOf = f.AsOf
		snap.Scopes[scope] = toSnapshot(f)
		p := &page{Lang: o.Lang, Title: o.title(t), Scope: t.t("all_units"), Generated: now.Format("2006-01-02 15:04 MST"), F: f, t: t,
			m: meas, Currency: o.Currency}
		if scope != "" {
			p.Scope = t.t("unit") + ": " + scope
		}
		if prev != nil {
			p.Prev, p.PrevDate = prev.Scopes[scope], prevDate
		}
		var h, txt bytes.Buffer
		if err := p.writeHTML(&h); err != nil {
			return nil, err
		}
		if err := p.writeText(&txt); err != nil {
			return nil, err
		}
		v := Version{Unit: scope, HTML: h.Bytes(), Text: txt.Bytes(), To: o.To,
			Subject: fmt.Sprintf(t.t("subject"), p.Title, p.Scope+" · "+date)}
		if scope != "" {
			v.To = []string{o.Units[scope]}
		}
		if opts.Send && len(v.To) > 0 {
			if err := p.mailVersion(&v, cf); err != nil {
				return nil, fmt.Errorf("rendering the e-mail for %s: %w", scopeName(scope), err)
			}
		}
		res.Versions = append(res.Versions, v)
	}
	if opts.Out != "" {
		if err := durable.WriteFile(opts.Out, res.Versions[0].HTML); err != nil {
			return nil, fmt.Errorf("writing report: %w", err)
		}
		res.Versions[0].File = opts.Out
		return res, nil
	}
	if err := saveVersions(o.Dir, date, res, snap); err != nil {
		return nil, err
	}
	log.Info("report saved", "dir", o.Dir, "versions", len(res.Versions))
	if !opts.Send {
		res.NotSent = "not e-mailed (saved only)"
		return res, nil
	}
	return res, sendVersions(ctx, cfg.SMTP, res, log)
}

// saveVersions writes each version's HTML and the day's snapshot (which the
// next report compares against) into dir, naming each file by date and unit.
func saveVersions(dir, date string, res *Result, snap *snapshot) error {
	if err := os.MkdirAll(dir, durable.DirPerm); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	for i := range res.Versions {
		v := &res.Versions[i]
		name := date + "-segment-summary.html"
		if v.Unit != "" {
			name = date + "-segment-summary-" + slug(v.Unit) + ".html"
		}
		v.File = filepath.Join(dir, name)
		if err := durable.WriteFile(v.File, v.HTML); err != nil {
			return fmt.Errorf("saving report: %w", err)
		}
	}
	js, err := json.MarshalIndent(snap, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding report snapshot: %w", err)
	}
	res.Snapshot = filepath.Join(dir, date+"-segment-summary.json")
	if err := durable.WriteFile(res.Snapshot, js); err != nil {
		return fmt.Errorf("saving report snapshot: %w", err)
	}
	return nil
}

// sendVersions e-mails each version to its recipients, counting them in
// res; versions without recipients are noted, and fail only if none was sent.
func sendVersions(ctx context.Context, smtp *SMTPOptions, res *Result, log *slog.Logger) error {
	if smtp == nil {
		return errors.New("sending report: cdw.yaml has no smtp: section")
	}
	var missing []string
	for _, v := range res.Versions {
		if len(v.To) == 0 {
			missing = append(missing, scopeName(v.Unit))
			continue
		}
		if err := send(ctx, smtp, v); err != nil {
			return fmt.Errorf("sending report for %s: %w", scopeName(v.Unit), err)
		}
		res.Sent++
		log.Info("report sent", "unit", v.Unit, "to", strings.Join(v.To, ","), "charts", len(v.Images))
	}
	if len(missing) > 0 {
		res.NotSent = "no recipients for " + strings.Join(missing, ", ") + " (report.to / report.units)"
		log.Warn("report not sent to every version", "why", res.NotSent)
		if res.Sent == 0 {
			return fmt.Errorf("sending report: nothing sent: %s", res.NotSent)
		}
	}
	return nil
}

// mailVersion renders the e-mailed HTML (cid: images) and the chart PNGs.
func (p *page) mailVersion(v *Version, cf *chartFont) error {
	mp := *p
	mp.Mail = true
	var h bytes.Buffer
	if err := mp.writeHTML(&h); err != nil {
		return err
	}
	v.MailHTML = h.Bytes()
	for _, c := range p.charts() {
		png, err := c.PNG(cf)
		if err != nil {
			return err
		}
		v.Images = append(v.Images, Image{ID: c.ID, PNG: png})
	}
	return nil
}

// estimateWidth approximates a text's width when no font file can be read
// (saved SVG only): CJK characters are square, Latin ones about half as wide.
func estimateWidth(s string, size float64) float64 {
	w := 0.0
	for _, r := range s {
		if r >= 0x2E80 {
			w += size
		} else {
			w += 0.56 * size
		}
	}
	return w
}

func toSnapshot(f *figures) *scopeSnapshot {
	s := &scopeSnapshot{Customers: f.Customers, Revenue: f.Revenue, Segments: map[string]segmentSnapshot{}}
	for _, sg := range f.Segments {
		s.Segments[sg.Segment] = segmentSnapshot{Customers: sg.Customers, Revenue: sg.Revenue}
	}
	return s
}

var snapName = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2})-segment-summary\.json$`)

// latestSnapshot finds the newest snapshot dated before date.
func latestSnapshot(dir, date string) (*snapshot, string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("listing earlier reports: %w", err)
	}
	best := ""
	for _, e := range entries {
		if m := snapName.FindStringSubmatch(e.Name()); m != nil && m[1] < date && m[1] > best {
			best = m[1]
		}
	}
	if best == "" {
		return nil, "", nil
	}
	p := filepath.Join(dir, best+"-segment-summary.json")
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, "", fmt.Errorf("reading earlier report snapshot: %w", err)
	}
	var s snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, "", fmt.Errorf("reading earlier report snapshot %s: %w", p, err)
	}
	return &s, best, nil
}

var nonSlug = regexp.MustCompile(`[^a-z0-9]+`)

// slug makes a unit name safe for a file name.
func slug(unit string) string {
	s := strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(unit), "-"), "-")
	if s == "" {
		s = "unit"
	}
	return s
}
