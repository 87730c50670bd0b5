package pipelines

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
)

// Notice is one line a run tells its user about the data behind the marts:
// the as_of they are measured at and what lies after it, identity values
// that were not used. Warn marks the ones that mean data was left out.
type Notice struct {
	Warn bool
	Text string
}

func (n Notice) String() string {
	if n.Warn {
		return "WARNING: " + n.Text
	}
	return n.Text
}

// dataNotices reads, after a build, what the marts left out, so that no row
// is ignored without a word. Models a --select run did not build are
// skipped: there is nothing to say about them yet.
// built lists the warehouse's relations (transform.RunResult.Relations).
func dataNotices(ctx context.Context, db *sql.DB, built map[string]bool, timezone string, log *slog.Logger) ([]Notice, error) {
	var out []Notice
	add := func(n Notice) {
		out = append(out, n)
		if n.Warn {
			log.Warn(n.Text)
		} else {
			log.Info(n.Text)
		}
	}
	if built["as_of_date"] && built["stg_orders"] && built["stg_tickets"] && built["stg_contacts"] {
		n, err := asOfNotice(ctx, db, timezone)
		if err != nil {
			return out, err
		}
		add(n)
	}
	if built["identity_shared_values"] {
		n, ok, err := sharedValuesNotice(ctx, db)
		if err != nil {
			return out, err
		}
		if ok {
			add(n)
		}
	}
	if built["raw_duplicate_keys"] {
		ns, err := duplicateKeyNotices(ctx, db)
		if err != nil {
			return out, err
		}
		for _, n := range ns {
			add(n)
		}
	}
	if built["stg_contacts"] {
		ns, err := rejectedIdentityNotices(ctx, db)
		if err != nil {
			return out, err
		}
		for _, n := range ns {
			add(n)
		}
	}
	return out, nil
}

// asOfNotice names the as_of the marts used, where it came from, and how
// many rows of each entity lie after it (the marts ignore them).
func asOfNotice(ctx context.Context, db *sql.DB, timezone string) (Notice, error) {
	var asOf sql.NullTime
	var from sql.NullString
	var orders, tickets, contacts int64
	err := db.QueryRowContext(ctx, `
		SELECT a.as_of, a.as_of_from,
		       (SELECT count(*) FROM stg_orders WHERE order_date > a.as_of),
		       (SELECT count(*) FROM stg_tickets WHERE timezone($1, created_at)::DATE > a.as_of),
		       (SELECT count(*) FROM stg_contacts WHERE timezone($1, created_at)::DATE > a.as_of)
		FROM as_of_date a`, timezone).Scan(&asOf, &from, &orders, &tickets, &contacts)
	if err != nil {
		return Notice{}, fmt.Errorf("reading as_of: %w", err)
	}
	if !asOf.Valid {
		return Notice{Warn: true, Text: "as_of: no dated row in any entity, the marts are empty"}, nil
	}
	why := map[string]string{"var": "vars.as_of in the config", "orders": "the latest order date",
		"tickets": "the latest ticket date", "contacts": "the latest contact date"}[from.String]
	head := fmt.Sprintf("as_of %s (%s)", asOf.Time.Format("2006-01-02"), why)
	if orders+tickets+contacts == 0 {
		return Notice{Text: head + ": no order line, ticket or contact after it"}, nil
	}
	var parts []string
	for _, c := range []struct {
		n    int64
		what string
	}{{orders, "order lines"}, {tickets, "tickets"}, {contacts, "contacts"}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	return Notice{Warn: true, Text: head + ": the marts ignore " + strings.Join(parts, ", ") + " dated after it"}, nil
}

// sharedValuesNotice reports e-mails and phones too widely shared to link
// anyone (see identity_shared_values).
func sharedValuesNotice(ctx context.Context, db *sql.DB) (Notice, bool, error) {
	var n int64
	var top sql.NullString
	var holders sql.NullInt64
	err := db.QueryRowContext(ctx, `SELECT count(*), arg_max(value, holders), max(holders) FROM identity_shared_values`).
		Scan(&n, &top, &holders)
	if err != nil {
		return Notice{}, false, fmt.Errorf("reading identity_shared_values: %w", err)
	}
	if n == 0 {
		return Notice{}, false, nil
	}
	return Notice{Warn: true, Text: fmt.Sprintf(
		"identity: %d e-mail/phone value(s) shared by too many customers not used for linking (most: %s, %d holders; see identity_quality, var identity_max_shared)",
		n, top.String, holders.Int64)}, true, nil
}

// rejectedIdentityNotices reports, per contact source, e-mails and phones
// that were given but failed normalisation and so link no one.
func rejectedIdentityNotices(ctx context.Context, db *sql.DB) ([]Notice, error) {
	rows, err := db.QueryContext(ctx, `
		SELECT source, count(email_rejected), min(email_rejected), count(phone_rejected), min(phone_rejected)
		FROM stg_contacts
		WHERE email_rejected IS NOT NULL OR phone_rejected IS NOT NULL
		GROUP BY source ORDER BY source`)
	if err != nil {
		return nil, fmt.Errorf("reading rejected identity values: %w", err)
	}
	defer rows.Close()
	var out []Notice
	for rows.Next() {
		var src string
		var emails, phones int64
		var email, phone sql.NullString
		if err := rows.Scan(&src, &emails, &email, &phones, &phone); err != nil {
			return nil, fmt.Errorf("reading rejected identity values: %w", err)
		}
		var parts []string
		if emails > 0 {
			parts = append(parts, fmt.Sprintf("%d e-mail(s) without @ (e.g. %q)", emails, email.String))
		}
		if phones > 0 {
			parts = append(parts, fmt.Sprintf("%d phone(s) with too few digits (e.g. %q)", phones, phone.String))
		}
		out = append(out, Notice{Warn: true, Text: fmt.Sprintf(
			"identity: contacts of %s: %s not used for matching; map an id that is no e-mail to match_key",
			src, strings.Join(parts, ", "))})
	}
	return out, rows.Err()
}

// duplicateKeyNotices reports, per source and entity, keys that occur more
// than once within one extract batch, and which row staging kept.
func duplicateKeyNotices(ctx context.Context, db *sql.DB) ([]Notice, error) {
	rows, err := db.QueryContext(ctx, `
		SELECT source, entity, sum(keys)::BIGINT, count(*), min(example), any_value(winning_rule)
		FROM raw_duplicate_keys GROUP BY source, entity ORDER BY source, entity`)
	if err != nil {
		return nil, fmt.Errorf("reading raw_duplicate_keys: %w", err)
	}
	defer rows.Close()
	var out []Notice
	for rows.Next() {
		var src, ent, example, rule string
		var keys, files int64
		if err := rows.Scan(&src, &ent, &keys, &files, &example, &rule); err != nil {
			return nil, fmt.Errorf("reading raw_duplicate_keys: %w", err)
		}
		out = append(out, Notice{Warn: true, Text: fmt.Sprintf(
			"%s of %s: %d key(s) occur more than once within one file (%d file(s); e.g. %s): kept one row per key, %s (see raw_duplicate_keys)",
			ent, src, keys, files, example, rule)})
	}
	return out, rows.Err()
}
