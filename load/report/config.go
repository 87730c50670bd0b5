// Package report builds the executive segment summary: an HTML page with
// inline SVG charts (no JavaScript) read from the published marts, saved
// under reports/ and e-mailed as multipart text+HTML, in English or
// Simplified Chinese, with one version per business unit for its head.
package report

import (
	"fmt"
	"net/mail"
	"path/filepath"
	"time"

	"github.com/cdwhq/cdw/internal/config"
	"github.com/cdwhq/cdw/load/duckdbfile"
)

// Options are the report: settings of cdw.yaml.
type Options struct {
	Lang  string            `yaml:"lang"`  // en (default) or zh-CN
	Title string            `yaml:"title"` // default per language
	To    []string          `yaml:"to"`    // recipients of the all-units version
	Units map[string]string `yaml:"units"` // business unit → head's address
	Dir   string            `yaml:"dir"`   // default <warehouse>/reports
	Marts string            `yaml:"marts"` // default <warehouse>/marts.duckdb
	// TopN and RiskScore shape the "high value at high risk" list: the
	// top_n customers by net revenue whose churn_score is at least
	// risk_score (default 50, where the built-in marts' "high" band starts).
	TopN      int     `yaml:"top_n"`
	RiskScore float64 `yaml:"risk_score"`
	// Currency labels amounts: an ISO code (USD, EUR, GBP and CNY get their
	// symbol) or any short text; none when empty.
	Currency string `yaml:"currency"`
	// Font is a .ttf/.otf/.ttc file for the e-mailed PNG charts; default: a
	// CJK system font if one is installed, else the built-in Liberation Sans.
	Font string `yaml:"font"`
}

// SMTPOptions are the smtp: settings. Credentials never live in the file:
// only the names of the environment variables that hold them.
type SMTPOptions struct {
	Host        string        `yaml:"host" required:"true"`
	Port        int           `yaml:"port"`
	StartTLS    bool          `yaml:"starttls"` // require STARTTLS (it is used whenever offered)
	From        string        `yaml:"from" required:"true"`
	UsernameEnv string        `yaml:"username_env"`
	PasswordEnv string        `yaml:"password_env"`
	CAFile      string        `yaml:"ca_file"` // extra CA for the server certificate
	Timeout     time.Duration `yaml:"timeout"`
}

// Config is a checked report configuration.
type Config struct {
	Report Options
	SMTP   *SMTPOptions // nil: reports are saved, not sent
}

// ParseConfig checks the report: and smtp: nodes of cdw.yaml. Relative paths
// start at baseDir; defaults live under the warehouse directory.
func ParseConfig(reportNode, smtpNode config.Node, warehouse, baseDir string) (*Config, error) {
	c := &Config{}
	if err := reportNode.Decode(&c.Report); err != nil {
		return nil, err
	}
	o := &c.Report
	switch o.Lang {
	case "":
		o.Lang = "en"
	case "en", "zh-CN":
	default:
		return nil, reportNode.Get("lang").Errorf("report language must be en or zh-CN, got %q", o.Lang)
	}
	for i, a := range o.To {
		if _, err := mail.ParseAddress(a); err != nil {
			return nil, reportNode.Get("to").Errorf("recipient %d %q: %v", i+1, a, err)
		}
	}
	for u, a := range o.Units {
		if _, err := mail.ParseAddress(a); err != nil {
			return nil, reportNode.Get("units").Get(u).Errorf("unit %s head %q: %v", u, a, err)
		}
	}
	o.Dir = resolve(baseDir, o.Dir, filepath.Join(warehouse, "reports"))
	o.Marts = resolve(baseDir, o.Marts, duckdbfile.DefaultPath(warehouse))
	if o.TopN <= 0 {
		o.TopN = 10
	}
	if o.RiskScore <= 0 {
		o.RiskScore = 50
	}
	if len(o.Currency) > 8 {
		return nil, reportNode.Get("currency").Errorf("currency %q: use a code such as EUR or a short symbol", o.Currency)
	}
	o.Font = resolve(baseDir, o.Font, "")
	if smtpNode.Y != nil {
		s := &SMTPOptions{}
		if err := smtpNode.Decode(s); err != nil {
			return nil, err
		}
		if _, err := mail.ParseAddress(s.From); err != nil {
			return nil, smtpNode.Get("from").Errorf("sender %q: %v", s.From, err)
		}
		if s.Port == 0 {
			s.Port = 587
		}
		if s.Timeout == 0 {
			s.Timeout = 30 * time.Second
		}
		if (s.UsernameEnv == "") != (s.PasswordEnv == "") {
			return nil, smtpNode.Errorf("set both username_env and password_env, or neither")
		}
		s.CAFile = resolve(baseDir, s.CAFile, "")
		c.SMTP = s
	}
	return c, nil
}

func resolve(base, p, def string) string {
	if p == "" {
		return def
	}
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(base, p)
}

func (o *Options) title(t texts) string {
	if o.Title != "" {
		return o.Title
	}
	return t["title"]
}

// String makes log lines readable.
func (s *SMTPOptions) String() string { return fmt.Sprintf("%s:%d", s.Host, s.Port) }
