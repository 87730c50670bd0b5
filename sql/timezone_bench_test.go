package models_test

import (
	"database/sql"
	"strings"
	"testing"
)

// BenchmarkOrderDate compares ways to take the day of 2M order timestamps
// (stg_orders.order_date): the UTC epoch arithmetic (the baseline), ICU's
// time-zone conversion per line, and stg_orders' way for a reporting time
// zone: the zone's offsets per UTC day, joined, with ICU only on days the
// offset changes. utc_* is the default UTC path with its (empty) join.
func BenchmarkOrderDate(b *testing.B) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`SET TimeZone = 'UTC';
		CREATE TABLE o AS SELECT TIMESTAMPTZ '2019-01-01 00:00:00+00' + to_seconds(i * 157) AS order_ts
		FROM range(2000000) t(i)`); err != nil {
		b.Fatal(err)
	}
	// the shape of stg_orders' zone_days and order_date, for zone TZ
	zoned := `WITH zone_days AS (
	    SELECT r.d,
	           epoch_us(timezone(s.tz, make_timestamptz(r.d * 86400000000))) - r.d * 86400000000 AS off_start,
	           epoch_us(timezone(s.tz, make_timestamptz(r.d * 86400000000 + 86399999999))) - (r.d * 86400000000 + 86399999999) AS off_end
	    FROM (SELECT any_value('TZ') AS tz, min(epoch_us(order_ts)) // 86400000000 AS lo, max(epoch_us(order_ts)) // 86400000000 AS hi
	          FROM o WHERE 'TZ' <> 'UTC' AND order_ts IS NOT NULL) s,
	         range(coalesce(s.lo, 0), coalesce(s.hi + 1, 0)) r(d))
	SELECT count(DISTINCT CASE WHEN 'TZ' = 'UTC' THEN make_timestamp(epoch_us(order_ts))::DATE
	                           WHEN z.off_start = z.off_end THEN make_timestamp(epoch_us(order_ts) + z.off_start)::DATE
	                           ELSE timezone('TZ', order_ts)::DATE END)
	FROM o LEFT JOIN zone_days z ON z.d = epoch_us(order_ts) // 86400000000`
	for _, c := range []struct{ name, q string }{
		{"utc_epoch", `SELECT count(DISTINCT make_timestamp(epoch_us(order_ts))::DATE) FROM o`},
		{"utc_zone_days", strings.ReplaceAll(zoned, "TZ", "UTC")},
		{"icu_shanghai", `SELECT count(DISTINCT timezone('Asia/Shanghai', order_ts)::DATE) FROM o`},
		{"zone_days_shanghai", strings.ReplaceAll(zoned, "TZ", "Asia/Shanghai")},
		{"zone_days_berlin", strings.ReplaceAll(zoned, "TZ", "Europe/Berlin")},
	} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				var n int
				if err := db.QueryRow(c.q).Scan(&n); err != nil {
					b.Fatal(err)
				}
				if n < 3000 {
					b.Fatalf("%d days", n)
				}
			}
		})
	}
}
