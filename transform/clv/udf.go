package clv

import (
	"database/sql"
	"database/sql/driver"
	"fmt"
	"math"

	"github.com/duckdb/duckdb-go/v2"
)

// doubleUDF is a DuckDB scalar function over n DOUBLE arguments returning
// DOUBLE. DuckDB's default NULL handling returns NULL when any argument is
// NULL; fn returning ok=false (invalid input) also yields NULL, so the
// functions never emit NaN or ±Inf.
type doubleUDF struct {
	cfg duckdb.ScalarFuncConfig
	fn  func(args []float64) (float64, bool)
}

func (u *doubleUDF) Config() duckdb.ScalarFuncConfig { return u.cfg }

func (u *doubleUDF) Executor() duckdb.ScalarFuncExecutor {
	return duckdb.ScalarFuncExecutor{RowExecutor: u.row}
}

func (u *doubleUDF) row(values []driver.Value) (any, error) {
	args := make([]float64, len(values))
	for i, v := range values {
		f, ok := v.(float64)
		if !ok {
			return nil, nil // NULL (cannot happen with default NULL handling)
		}
		args[i] = f
	}
	res, ok := u.fn(args)
	if !ok || !finite(res) {
		return nil, nil
	}
	return res, nil
}

// udfDef names one UDF and its implementation.
type udfDef struct {
	name  string
	nargs int
	fn    func(args []float64) (float64, bool)
}

var udfDefs = []udfDef{
	{"bgnbd_p_alive", 7, func(v []float64) (float64, bool) {
		m := BGNBD{R: v[0], Alpha: v[1], A: v[2], B: v[3]}
		return m.pAlive(v[4], v[5], v[6])
	}},
	{"bgnbd_expected_purchases", 8, func(v []float64) (float64, bool) {
		m := BGNBD{R: v[0], Alpha: v[1], A: v[2], B: v[3]}
		return m.expected(v[4], v[5], v[6], v[7])
	}},
	{"pnbd_p_alive", 7, func(v []float64) (float64, bool) {
		m := ParetoNBD{R: v[0], Alpha: v[1], S: v[2], Beta: v[3]}
		return m.pAlive(v[4], v[5], v[6])
	}},
	{"pnbd_expected_purchases", 8, func(v []float64) (float64, bool) {
		m := ParetoNBD{R: v[0], Alpha: v[1], S: v[2], Beta: v[3]}
		return m.expected(v[4], v[5], v[6], v[7])
	}},
	{"bgnbd_p_purchase", 8, func(v []float64) (float64, bool) {
		m := BGNBD{R: v[0], Alpha: v[1], A: v[2], B: v[3]}
		return m.pPurchase(v[4], v[5], v[6], v[7])
	}},
	{"pnbd_p_purchase", 8, func(v []float64) (float64, bool) {
		m := ParetoNBD{R: v[0], Alpha: v[1], S: v[2], Beta: v[3]}
		return m.pPurchase(v[4], v[5], v[6], v[7])
	}},
	{"gg_expected_spend", 5, func(v []float64) (float64, bool) {
		m := GammaGamma{P: v[0], Q: v[1], Gamma: v[2]}
		s, ok, _ := m.spend(v[3], v[4])
		return s, ok
	}},
	{"clv_value", 14, func(v []float64) (float64, bool) {
		bg := BGNBD{R: v[0], Alpha: v[1], A: v[2], B: v[3]}
		gg := GammaGamma{P: v[4], Q: v[5], Gamma: v[6]}
		h := v[11]
		if !finite(h) || h < 0 || h > maxHorizonMonths || h != math.Trunc(h) {
			return 0, false
		}
		return clv(bg, gg, v[7], v[8], v[9], v[10], int(h), v[12], v[13], false)
	}},
	{"pnbd_clv_value", 14, func(v []float64) (float64, bool) {
		pn := ParetoNBD{R: v[0], Alpha: v[1], S: v[2], Beta: v[3]}
		gg := GammaGamma{P: v[4], Q: v[5], Gamma: v[6]}
		h := v[11]
		if !finite(h) || h < 0 || h > maxHorizonMonths || h != math.Trunc(h) {
			return 0, false
		}
		return clv(pn, gg, v[7], v[8], v[9], v[10], int(h), v[12], v[13], false)
	}},
}

// RegisterUDFs registers the model's scalar functions through conn; DuckDB
// adds them to the database's catalog, so every connection to the same
// database sees them once one connection has registered them. All
// arguments and results are DOUBLE; integer arguments are cast implicitly.
// A NULL argument gives NULL, and so does invalid input (negative or
// non-finite values, invalid parameters, non-integer frequency or
// horizon), so the functions never return NaN:
//
//	bgnbd_p_alive(r, alpha, a, b, x, t_x, T)
//	bgnbd_expected_purchases(r, alpha, a, b, t, x, t_x, T)
//	gg_expected_spend(p, q, gamma, x, mbar)
//	clv_value(r, alpha, a, b, p, q, gamma, x, t_x, T, mbar,
//	          horizon_months, monthly_discount, time_units_per_month)
//	pnbd_p_alive(r, alpha, s, beta, x, t_x, T)
//	pnbd_expected_purchases(r, alpha, s, beta, t, x, t_x, T)
//	pnbd_clv_value(r, alpha, s, beta, p, q, gamma, x, t_x, T, mbar,
//	               horizon_months, monthly_discount, time_units_per_month)
//	bgnbd_p_purchase(r, alpha, a, b, t, x, t_x, T)
//	pnbd_p_purchase(r, alpha, s, beta, t, x, t_x, T)
//
// They are the SQL twins of BGNBD.ProbabilityAlive,
// BGNBD.ExpectedPurchases, GammaGamma.ConditionalExpectedSpend, CLV and
// the ParetoNBD and ProbabilityPurchase methods,
// except that gg_expected_spend/clv_value return NULL for x = 0 when
// q ≤ 1 (the population mean is then infinite and GammaGamma's
// PopulationMean is not an argument). Fallback models are ordinary
// parameter values and work unchanged.
func RegisterUDFs(conn *sql.Conn) error {
	double, err := duckdb.NewTypeInfo(duckdb.TYPE_DOUBLE)
	if err != nil {
		return fmt.Errorf("registering CLV UDFs: creating DOUBLE type: %w", err)
	}
	for _, def := range udfDefs {
		in := make([]duckdb.TypeInfo, def.nargs)
		for i := range in {
			in[i] = double
		}
		udf := &doubleUDF{
			cfg: duckdb.ScalarFuncConfig{InputTypeInfos: in, ResultTypeInfo: double},
			fn:  def.fn,
		}
		if err := duckdb.RegisterScalarUDF(conn, def.name, udf); err != nil {
			return fmt.Errorf("registering UDF %s: %w", def.name, err)
		}
	}
	return nil
}
