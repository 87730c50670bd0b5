package postgres

import (
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/cdwhq/cdw/internal/config"
	"github.com/cdwhq/cdw/internal/pgconf"
)

// options are the keys of a `kind: postgres` publish entry.
type options struct {
	pgconf.Options `yaml:",inline"` // dsn or host/port/database/user/sslmode, password_env, connect_timeout
	Schema         string           `yaml:"schema"`       // default cdw_marts
	BIRole         string           `yaml:"bi_role"`      // read-only role that sees every row
	CreateRoles    bool             `yaml:"create_roles"` // create missing roles (NOLOGIN) instead of failing
	LockTimeout    time.Duration    `yaml:"lock_timeout"` // how long the swap waits for readers' locks; default 10s
	SwapRetries    *int             `yaml:"swap_retries"` // swap attempts after a lock timeout; default 3
	KeepPrev       *bool            `yaml:"keep_previous"`

	RLS *rlsOptions `yaml:"row_level_security"`
}

// rlsOptions restrict each business unit's role to its own rows.
type rlsOptions struct {
	Column string            `yaml:"column"` // default business_unit
	Roles  map[string]string `yaml:"roles" required:"true"`
}

// settings are checked options, ready to use.
type settings struct {
	conn        pgconf.Settings
	schema      string
	biRole      string
	createRoles bool
	lockTimeout time.Duration
	retries     int
	keepPrev    bool
	rlsColumn   string
	units       []unitRole // sorted by unit
}

type unitRole struct{ Unit, Role string }

// PostgreSQL identifiers cdw accepts from config: plain names only, so that
// what the user wrote is what the catalog shows (quoted all the same).
var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

func checkIdent(n config.Node, what, s string) error {
	if !identRe.MatchString(s) {
		return n.Errorf("%s %q is not a plain PostgreSQL identifier (letters, digits and _, at most 63 bytes, not starting with a digit)", what, s)
	}
	return nil
}

func parseOptions(n config.Node) (*settings, error) {
	var o options
	if err := n.Decode(&o); err != nil {
		return nil, err
	}
	s := &settings{schema: "cdw_marts", lockTimeout: 10 * time.Second, retries: 3, keepPrev: true,
		biRole: o.BIRole, createRoles: o.CreateRoles}
	var err error
	if s.conn, err = pgconf.Parse(n, o.Options, "cdw publish"); err != nil {
		return nil, err
	}
	if o.Schema != "" {
		s.schema = o.Schema
	}
	if err := checkIdent(n.Get("schema"), "schema", s.schema); err != nil {
		return nil, err
	}
	if s.biRole != "" {
		if err := checkIdent(n.Get("bi_role"), "bi_role", s.biRole); err != nil {
			return nil, err
		}
	}
	if o.LockTimeout != 0 {
		if o.LockTimeout < time.Millisecond {
			return nil, n.Get("lock_timeout").Errorf("lock_timeout must be at least 1ms")
		}
		s.lockTimeout = o.LockTimeout
	}
	if o.SwapRetries != nil {
		if *o.SwapRetries < 1 {
			return nil, n.Get("swap_retries").Errorf("swap_retries must be at least 1")
		}
		s.retries = *o.SwapRetries
	}
	if o.KeepPrev != nil {
		s.keepPrev = *o.KeepPrev
	}
	if o.RLS != nil {
		s.rlsColumn = o.RLS.Column
		if s.rlsColumn == "" {
			s.rlsColumn = "business_unit"
		}
		rn := n.Get("row_level_security")
		if err := checkIdent(rn.Get("column"), "column", s.rlsColumn); err != nil {
			return nil, err
		}
		if len(o.RLS.Roles) == 0 {
			return nil, rn.Get("roles").Errorf("give at least one business unit and its role, e.g. North: bi_north")
		}
		seen := map[string]string{}
		for unit, role := range o.RLS.Roles {
			rolesNode := rn.Get("roles").Get(unit)
			if err := checkIdent(rolesNode, "role", role); err != nil {
				return nil, err
			}
			if strings.ContainsRune(unit, 0) {
				return nil, rolesNode.Errorf("business unit names cannot contain NUL")
			}
			if role == s.biRole {
				return nil, rolesNode.Errorf("role %s is also bi_role, which sees every unit; give each unit its own role", role)
			}
			if other, dup := seen[role]; dup {
				return nil, rolesNode.Errorf("role %s is given for both %q and %q; a role sees one unit", role, other, unit)
			}
			seen[role] = unit
			s.units = append(s.units, unitRole{Unit: unit, Role: role})
		}
		sort.Slice(s.units, func(i, j int) bool { return s.units[i].Unit < s.units[j].Unit })
	}
	return s, nil
}
