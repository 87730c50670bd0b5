// Package iceberg connects cdw to an Apache Iceberg catalog, so that other
// engines (Spark, Trino, Flink, Snowflake, DuckDB) read the tables cdw writes
// and every change they see is one catalog commit. Two catalogs are built
// in: a filesystem catalog (the Hadoop layout: <dir>/<namespace>/<table>/
// metadata/vN.metadata.json, committed by an atomic create of the next
// version, no server needed) and a SQL catalog in PostgreSQL (the JDBC
// catalog layout Spark and Trino also speak). All reading and writing goes
// through github.com/apache/iceberg-go: DuckDB here has no iceberg extension.
package iceberg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"

	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/hadoop"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for the SQL catalog

	"github.com/cdwhq/cdw/internal/config"
	"github.com/cdwhq/cdw/internal/secret"
)

// The catalog kinds of `iceberg: {catalog: …}`.
const (
	CatalogFilesystem = "filesystem"
	CatalogPostgres   = "postgres"
)

// Config is the iceberg: section of cdw.yaml. Iceberg is off without it.
type Config struct {
	// Catalog is filesystem (default) or postgres.
	Catalog string `yaml:"catalog"`
	// Dir holds the tables' metadata and the files cdw writes for them
	// (marts); default <warehouse>/iceberg. Raw tables reference the raw
	// Parquet files where they are.
	Dir string `yaml:"dir"`
	// Name is the catalog's name as other engines configure it; default cdw.
	Name string `yaml:"name"`
	// Postgres is where the SQL catalog keeps its two tables
	// (iceberg_tables, iceberg_namespace_properties).
	Postgres *PostgresConfig `yaml:"postgres"`
}

// PostgresConfig is the server of the SQL catalog.
type PostgresConfig struct {
	Host        string `yaml:"host"` // default localhost
	Port        int    `yaml:"port"` // default 5432
	Database    string `yaml:"database" required:"true"`
	User        string `yaml:"user" required:"true"`
	PasswordEnv string `yaml:"password_env"` // name of the env var holding the password
	SSLMode     string `yaml:"sslmode"`      // default prefer
}

// Settings are a checked iceberg: section.
type Settings struct {
	Catalog string
	Dir     string // absolute
	Name    string
	dsn     string // SQL catalog only; holds the password, never printed
	where   string // host:port/database, for messages
}

// Parse checks an iceberg: section. warehouse is cdw's warehouse directory
// and baseDir the config file's directory (relative paths start there).
// It returns nil when the section is absent: Iceberg is off.
func Parse(n config.Node, warehouse, baseDir string) (*Settings, error) {
	if n.Y == nil {
		return nil, nil
	}
	var c Config
	if err := n.Decode(&c); err != nil {
		return nil, err
	}
	s := &Settings{Catalog: c.Catalog, Name: c.Name, Dir: c.Dir}
	if s.Catalog == "" {
		s.Catalog = CatalogFilesystem
	}
	if s.Name == "" {
		s.Name = "cdw"
	}
	if s.Dir == "" {
		s.Dir = filepath.Join(warehouse, "iceberg")
	} else if !filepath.IsAbs(s.Dir) {
		s.Dir = filepath.Join(baseDir, s.Dir)
	}
	abs, err := filepath.Abs(s.Dir)
	if err != nil {
		return nil, n.Get("dir").Errorf("iceberg dir: %v", err)
	}
	s.Dir = abs
	switch s.Catalog {
	case CatalogFilesystem:
		if c.Postgres != nil {
			return nil, n.Get("postgres").Errorf("postgres: is for catalog: %s; this catalog is %s", CatalogPostgres, s.Catalog)
		}
	case CatalogPostgres:
		if c.Postgres == nil {
			return nil, n.Errorf("catalog: %s needs a postgres: section (host, port, database, user, password_env)", CatalogPostgres)
		}
		pn := n.Get("postgres")
		p := *c.Postgres
		if p.Host == "" {
			p.Host = "localhost"
		}
		if p.Port == 0 {
			p.Port = 5432
		}
		if p.Port < 1 || p.Port > 65535 {
			return nil, pn.Get("port").Errorf("port %d is out of range", p.Port)
		}
		u := url.URL{Scheme: "postgres", Host: net.JoinHostPort(p.Host, strconv.Itoa(p.Port)), Path: "/" + p.Database}
		s.where = u.Host + u.Path
		pw := ""
		if p.PasswordEnv != "" {
			v, ok := os.LookupEnv(p.PasswordEnv)
			if !ok {
				return nil, pn.Get("password_env").Errorf("environment variable %s (the Iceberg catalog's PostgreSQL password) is not set", p.PasswordEnv)
			}
			pw = v
			secret.Add(pw)
		}
		if pw != "" {
			u.User = url.UserPassword(p.User, pw)
		} else {
			u.User = url.User(p.User)
		}
		if p.SSLMode != "" {
			u.RawQuery = url.Values{"sslmode": {p.SSLMode}}.Encode()
		}
		s.dsn = u.String()
	default:
		return nil, n.Get("catalog").Errorf("catalog must be %s or %s, got %q", CatalogFilesystem, CatalogPostgres, s.Catalog)
	}
	return s, nil
}

// Default is the embedded filesystem catalog under <warehouse>/iceberg.
func Default(warehouse string) *Settings {
	dir, err := filepath.Abs(filepath.Join(warehouse, "iceberg"))
	if err != nil {
		dir = filepath.Join(warehouse, "iceberg")
	}
	return &Settings{Catalog: CatalogFilesystem, Name: "cdw", Dir: dir}
}

// Where names the catalog for messages (never a password).
func (s *Settings) Where() string {
	if s.Catalog == CatalogPostgres {
		return "SQL catalog " + s.Name + " on " + s.where
	}
	return "filesystem catalog " + s.Name + " in " + s.Dir
}

// Catalog is an open catalog.
type Catalog struct {
	catalog.Catalog
	settings *Settings
	db       *sql.DB // SQL catalog only
}

// Open connects to the catalog. Close it when done.
func (s *Settings) Open(ctx context.Context) (*Catalog, error) {
	switch s.Catalog {
	case CatalogPostgres:
		db, err := sql.Open("pgx", s.dsn)
		if err != nil {
			return nil, fmt.Errorf("opening the Iceberg %s: %w", s.Where(), err)
		}
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("connecting to the Iceberg %s: %w", s.Where(), err)
		}
		c, err := sqlcat.NewCatalog(s.Name, db, sqlcat.Postgres, ice.Properties{
			"warehouse": (&url.URL{Scheme: "file", Path: s.Dir}).String(),
		})
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("opening the Iceberg %s: %w", s.Where(), err)
		}
		return &Catalog{Catalog: c, settings: s, db: db}, nil
	default:
		if err := os.MkdirAll(s.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("creating the Iceberg catalog directory: %w", err)
		}
		c, err := hadoop.NewCatalog(s.Name, s.Dir, ice.Properties{})
		if err != nil {
			return nil, fmt.Errorf("opening the Iceberg %s: %w", s.Where(), err)
		}
		return &Catalog{Catalog: c, settings: s}, nil
	}
}

// Settings returns what the catalog was opened with.
func (c *Catalog) Settings() *Settings { return c.settings }

// Close releases the catalog and its connections.
func (c *Catalog) Close() error {
	var err error
	if cl, ok := c.Catalog.(catalog.Closer); ok {
		err = cl.Close()
	}
	if c.db != nil {
		if e := c.db.Close(); err == nil {
			err = e
		}
	}
	return err
}

// EnsureNamespace creates namespace ns unless it exists.
func (c *Catalog) EnsureNamespace(ctx context.Context, ns string) error {
	id := catalog.ToIdentifier(ns)
	ok, err := c.CheckNamespaceExists(ctx, id)
	if err != nil {
		return fmt.Errorf("checking Iceberg namespace %s in the %s: %w", ns, c.settings.Where(), err)
	}
	if ok {
		return nil
	}
	if err := c.CreateNamespace(ctx, id, nil); err != nil && !errors.Is(err, catalog.ErrNamespaceAlreadyExists) {
		return fmt.Errorf("creating Iceberg namespace %s in the %s: %w", ns, c.settings.Where(), err)
	}
	return nil
}
