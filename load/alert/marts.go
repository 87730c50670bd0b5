package alert

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/cdwhq/cdw/load/duckdbfile"
)

// Customer is what an alert says about one customer.
type Customer struct {
	ID         string  `json:"customer_id"`
	Name       string  `json:"name,omitempty"`
	Unit       string  `json:"business_unit,omitempty"`
	Owner      string  `json:"owner,omitempty"`
	Score      float64 `json:"churn_score"`
	Band       string  `json:"churn_band,omitempty"`
	Drivers    string  `json:"drivers,omitempty"`
	Recency    int     `json:"recency_days"`
	Rhythm     float64 `json:"rhythm_days,omitempty"`
	NetRevenue float64 `json:"net_revenue"`
	CLV        float64 `json:"clv"`
	Flagged    bool    `json:"early_warning"` // on the list at as_of
	Scored     bool    `json:"scored"`        // in churn_risk at as_of (false: the customer left the marts)
}

// snapshot is churn_risk at one as_of: every customer on early warning,
// and, on request, the current figures of others (those that left).
type snapshot struct {
	AsOf    string
	Flagged map[string]*Customer
	db      *sql.DB
	cols    map[string]map[string]bool
}

func openMarts(ctx context.Context, path string) (*snapshot, error) {
	db, cols, err := duckdbfile.OpenRead(ctx, path)
	if err != nil {
		return nil, err
	}
	s := &snapshot{db: db, cols: cols, Flagged: map[string]*Customer{}}
	if !s.cols["churn_risk"]["customer_id"] || !s.cols["churn_risk"]["early_warning"] {
		db.Close()
		return nil, fmt.Errorf("reading published marts %s: churn_risk (customer_id, early_warning) is missing", path)
	}
	return s, nil
}

func (s *snapshot) Close() error { return s.db.Close() }

// col returns the expression for an optional column, or the fallback.
func (s *snapshot) col(alias, table, name, cast, fallback string) string {
	if s.cols[table][name] {
		return fmt.Sprintf("CAST(%s.%s AS %s)", alias, name, cast)
	}
	return fallback
}

// query reads churn_risk joined with customer_360 for the customers on early
// warning, or for the listed ids.
func (s *snapshot) query(ctx context.Context, ids []string) ([]*Customer, error) {
	name := "NULL"
	join := ""
	if s.cols["customer_360"]["customer_id"] {
		join = " LEFT JOIN customer_360 c ON c.customer_id = r.customer_id"
		var parts []string
		for _, c := range []string{"name", "company"} {
			if s.cols["customer_360"][c] {
				parts = append(parts, fmt.Sprintf("nullif(trim(c.%s), '')", c))
			}
		}
		if len(parts) > 0 {
			name = "nullif(concat_ws(' · ', " + strings.Join(parts, ", ") + "), '')"
		}
	}
	unit := s.col("r", "churn_risk", "business_unit", "VARCHAR", s.col("c", "customer_360", "business_unit", "VARCHAR", "NULL"))
	fields := []string{
		"CAST(r.customer_id AS VARCHAR)", name, unit,
		s.col("c", "customer_360", "owner", "VARCHAR", "NULL"),
		s.col("r", "churn_risk", "churn_score", "DOUBLE", "0"),
		s.col("r", "churn_risk", "churn_band", "VARCHAR", "NULL"),
		s.col("r", "churn_risk", "drivers", "VARCHAR", "NULL"),
		s.col("r", "churn_risk", "recency_days", "INTEGER", "0"),
		s.col("r", "churn_risk", "rhythm_days", "DOUBLE", "0"),
		s.col("c", "customer_360", "monetary", "DOUBLE", "0"),
		s.col("r", "churn_risk", "clv", "DOUBLE", "0"),
		"coalesce(CAST(r.early_warning AS BOOLEAN), false)",
	}
	where := "WHERE r.early_warning"
	var args []any
	if ids != nil {
		where = "WHERE CAST(r.customer_id AS VARCHAR) IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ") + ")"
		for _, id := range ids {
			args = append(args, id)
		}
	}
	q := "SELECT " + strings.Join(fields, ", ") + " FROM churn_risk r" + join + " " + where + " ORDER BY 1"
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading churn_risk: %w", err)
	}
	defer rows.Close()
	var out []*Customer
	for rows.Next() {
		c := &Customer{Scored: true}
		var n, u, o, b, d sql.NullString
		var score, rhythm, rev, clv sql.NullFloat64
		var rec sql.NullInt64
		if err := rows.Scan(&c.ID, &n, &u, &o, &score, &b, &d, &rec, &rhythm, &rev, &clv, &c.Flagged); err != nil {
			return nil, fmt.Errorf("reading churn_risk: %w", err)
		}
		c.Name, c.Unit, c.Owner, c.Band, c.Drivers = n.String, u.String, o.String, b.String, d.String
		c.Score, c.Rhythm, c.NetRevenue, c.CLV, c.Recency = score.Float64, rhythm.Float64, rev.Float64, clv.Float64, int(rec.Int64)
		out = append(out, c)
	}
	return out, rows.Err()
}

// load reads as_of and the customers on early warning.
func (s *snapshot) load(ctx context.Context) error {
	if s.cols["churn_risk"]["as_of"] {
		var d sql.NullString
		if err := s.db.QueryRowContext(ctx, `SELECT CAST(max(as_of) AS DATE)::VARCHAR FROM churn_risk`).Scan(&d); err != nil {
			return fmt.Errorf("reading churn_risk.as_of: %w", err)
		}
		s.AsOf = d.String
	}
	cs, err := s.query(ctx, nil)
	if err != nil {
		return err
	}
	for _, c := range cs {
		s.Flagged[c.ID] = c
	}
	return nil
}
