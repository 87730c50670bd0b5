// Package pgconf owns the PostgreSQL connection settings of cdw.yaml, shared
// by the postgres source (extract/postgres) and the postgres publisher
// (load/postgres): the same keys, the same checks, the same error text.
package pgconf

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdwhq/cdw/internal/config"
	"github.com/cdwhq/cdw/internal/secret"
)

// DefaultConnectTimeout bounds connecting, so a dead host fails a run
// instead of hanging it.
const DefaultConnectTimeout = 15 * time.Second

// Options are the connection keys. A component embeds them in its own
// options with `yaml:",inline"`, so they sit beside its other keys.
type Options struct {
	DSN            string        `yaml:"dsn"`  // libpq key=value or postgres:// URL, without a password
	Host           string        `yaml:"host"` // default localhost
	Port           int           `yaml:"port"` // default 5432
	Database       string        `yaml:"database"`
	User           string        `yaml:"user"`
	PasswordEnv    string        `yaml:"password_env"`    // environment variable holding the password
	SSLMode        string        `yaml:"sslmode"`         // default prefer
	ConnectTimeout time.Duration `yaml:"connect_timeout"` // default DefaultConnectTimeout
}

// Settings are checked connection settings.
type Settings struct {
	// Config has the password set (from password_env); Connect copies it.
	Config *pgx.ConnConfig
	// Where names server, database and user for messages, never the password.
	Where string
}

var sslModes = map[string]bool{"disable": true, "allow": true, "prefer": true, "require": true, "verify-ca": true, "verify-full": true}

// Parse checks o, read from node n; errors name file, line and key. It reads
// the password from the environment (and registers it with internal/secret,
// so no message shows it) but does not connect. application names the
// session in pg_stat_activity.
func Parse(n config.Node, o Options, application string) (Settings, error) {
	var password string
	if o.PasswordEnv != "" {
		pw, ok := os.LookupEnv(o.PasswordEnv)
		if !ok || pw == "" {
			return Settings{}, n.Get("password_env").Errorf("environment variable %s is not set", o.PasswordEnv)
		}
		password = pw
		secret.Add(pw)
	}
	if o.ConnectTimeout < 0 {
		return Settings{}, n.Get("connect_timeout").Errorf("must not be negative")
	}
	connString, err := o.connString(n)
	if err != nil {
		return Settings{}, err
	}
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		// pgx redacts passwords it recognizes; scrub ours too.
		key := n.Get("dsn")
		if o.DSN == "" {
			key = n
		}
		return Settings{}, key.Errorf("%s", secret.Scrub(err.Error()))
	}
	if password != "" {
		cfg.Password = password
	}
	cfg.ConnectTimeout = DefaultConnectTimeout
	if o.ConnectTimeout > 0 {
		cfg.ConnectTimeout = o.ConnectTimeout
	}
	if application != "" {
		cfg.RuntimeParams["application_name"] = application
	}
	return Settings{Config: cfg, Where: fmt.Sprintf("%s:%d database %s as user %s", cfg.Host, cfg.Port, cfg.Database, cfg.User)}, nil
}

func (o Options) connString(n config.Node) (string, error) {
	if o.DSN != "" {
		for _, k := range []string{"host", "port", "database", "user", "sslmode"} {
			if n.Get(k).Y != nil {
				return "", n.Get(k).Errorf("give either dsn or host/port/database/user/sslmode, not both")
			}
		}
		if dsnHasPassword(o.DSN) {
			// The DSN itself is not repeated: it holds the secret.
			return "", n.Get("dsn").Errorf("contains a password; put the password in an environment variable and name it in password_env")
		}
		return o.DSN, nil
	}
	host := o.Host
	if host == "" {
		host = "localhost"
	}
	if o.Database == "" {
		return "", n.Errorf("missing required key \"database\" (or give dsn)")
	}
	if o.User == "" {
		return "", n.Errorf("missing required key \"user\" (or give dsn)")
	}
	port := o.Port
	if port == 0 {
		port = 5432
	}
	if port < 1 || port > 65535 {
		return "", n.Get("port").Errorf("expected a port number, found %d", o.Port)
	}
	ssl := o.SSLMode
	if ssl == "" {
		ssl = "prefer"
	}
	if !sslModes[ssl] {
		return "", n.Get("sslmode").Errorf("expected one of disable, allow, prefer, require, verify-ca, verify-full; found %q", ssl)
	}
	return fmt.Sprintf("host=%s port=%d dbname=%s user=%s sslmode=%s",
		quoteValue(host), port, quoteValue(o.Database), quoteValue(o.User), ssl), nil
}

// Connect opens one connection. Its error names the server, database and
// user, is one line and never contains the password.
func (s Settings) Connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.Config.Copy())
	if err != nil {
		return nil, OneLine(fmt.Errorf("connecting to PostgreSQL at %s: %w", s.Where, err))
	}
	return conn, nil
}

// dsnHasPassword reports a password in a URL (postgres://u:pw@h/db or
// ?password=) or in key=value form (password=…).
func dsnHasPassword(dsn string) bool {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return strings.Contains(dsn, "@") // unparsable: assume the worst
		}
		if _, ok := u.User.Password(); ok {
			return true
		}
		return u.Query().Has("password")
	}
	for _, f := range strings.Fields(dsn) {
		k, _, _ := strings.Cut(f, "=")
		if strings.TrimSpace(k) == "password" {
			return true
		}
	}
	return false
}

// quoteValue quotes a value for a key=value connection string.
func quoteValue(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// textError replaces an error's text (secrets removed, one line) while
// keeping the chain for errors.Is and errors.As. Its cause may still hold a
// password in its own text: print the textError, not what it wraps.
type textError struct {
	text  string
	cause error
}

func (e *textError) Error() string { return e.text }
func (e *textError) Unwrap() error { return e.cause }

// OneLine returns err with every registered secret masked and its lines
// joined: pgx reports each connection attempt (sslmode=prefer tries TLS,
// then plain) on its own line, and a user-facing failure is one line.
func OneLine(err error) error {
	if err == nil {
		return nil
	}
	var parts []string
	seen := map[string]bool{}
	for _, l := range strings.Split(secret.Scrub(err.Error()), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || seen[l] {
			continue
		}
		seen[l] = true
		parts = append(parts, l)
	}
	return &textError{text: strings.Join(parts, " "), cause: err}
}
