package clv

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/optimize"
)

// FitOptions controls maximum-likelihood fitting. The zero value gives
// sensible defaults.
type FitOptions struct {
	// Penalizer adds Penalizer·Σ log(θ)² to the mean negative
	// log-likelihood (an L2 penalty on the log-parameters, which shrinks
	// the estimates towards 1). 0, the default, is plain MLE. Small
	// values (0.001–0.1) tame implausibly large estimates on small
	// samples, like lifetimes' penalizer_coef. Must be ≥ 0.
	Penalizer float64
	// MaxIterations caps the major iterations of each optimiser stage;
	// 0 means 1000.
	MaxIterations int
	// MinCustomers is the smallest number of valid customers for which
	// BG/NBD is fitted; below it the fallback is used. 0 means 10.
	MinCustomers int
	// MinRepeaters is the smallest number of customers with x > 0 (and,
	// for Gamma-Gamma, a positive mean spend) for which a model is
	// fitted. 0 means 5.
	MinRepeaters int
	// Model is the purchase model FitFromQuery predicts with: "auto" (or
	// ""), "bgnbd" or "pnbd".
	Model string
}

func (o FitOptions) withDefaults() (FitOptions, error) {
	if !finite(o.Penalizer) || o.Penalizer < 0 {
		return o, fmt.Errorf("invalid Penalizer %v: must be a finite number ≥ 0", o.Penalizer)
	}
	if o.MaxIterations < 0 || o.MinCustomers < 0 || o.MinRepeaters < 0 {
		return o, errors.New("MaxIterations, MinCustomers and MinRepeaters must be ≥ 0")
	}
	if o.MaxIterations == 0 {
		o.MaxIterations = 1000
	}
	if o.MinCustomers == 0 {
		o.MinCustomers = 10
	}
	if o.MinRepeaters == 0 {
		o.MinRepeaters = 5
	}
	return o, nil
}

// Convergence and plausibility thresholds shared by both models.
const (
	// gradTol is the largest accepted ∞-norm of the gradient of the mean
	// negative log-likelihood w.r.t. the log-parameters at the optimum.
	gradTol = 1e-6
	// logParamBound: estimates with |log θ| above it are treated as a
	// boundary solution (θ outside ~[2e-9, 5e8]) and trigger the fallback.
	logParamBound = 20.0
	// logParamHard: the objective is +Inf beyond this, keeping exp()
	// finite while the line search explores.
	logParamHard = 60.0
)

// objective evaluates a mean negative log-likelihood and, when grad is
// non-nil, its gradient, both w.r.t. the log-parameters.
type objective func(logTheta, grad []float64) float64

// optResult is the outcome of minimise.
type optResult struct {
	x          []float64
	f          float64
	gradNorm   float64
	iterations int
	evals      int
	converged  bool
}

// minimise minimises obj from x0 with BFGS (analytic gradient). If BFGS
// stops without meeting gradTol (line-search failure far from the optimum,
// iteration limit), Nelder-Mead restarts from the best point found and a
// final BFGS polishes the result. Convergence is judged independently of
// the optimiser's own status, by the gradient norm at the returned point,
// because gonum's line searches may report failure when they simply cannot
// improve an already-converged point in floating point.
func minimise(obj objective, x0 []float64, maxIter int) optResult {
	dim := len(x0)
	problem := optimize.Problem{
		Func: func(x []float64) float64 { return obj(x, nil) },
		Grad: func(grad, x []float64) { obj(x, grad) },
	}
	best := optResult{x: append([]float64(nil), x0...), f: obj(x0, nil)}
	consider := func(res *optimize.Result) {
		if res == nil {
			return
		}
		best.iterations += res.MajorIterations
		best.evals += res.FuncEvaluations + res.GradEvaluations
		if finite(res.F) && res.F < best.f {
			best.f = res.F
			copy(best.x, res.X)
		}
	}
	gradAt := func(x []float64) float64 {
		g := make([]float64, dim)
		f := obj(x, g)
		if !finite(f) {
			return math.Inf(1)
		}
		n := floats.Norm(g, math.Inf(1))
		if !finite(n) {
			return math.Inf(1)
		}
		return n
	}
	bfgs := func() {
		settings := &optimize.Settings{
			GradientThreshold: gradTol / 100,
			MajorIterations:   maxIter,
			Converger:         &optimize.FunctionConverge{Absolute: 1e-15, Relative: 1e-15, Iterations: 50},
		}
		res, _ := optimize.Minimize(problem, append([]float64(nil), best.x...), settings, &optimize.BFGS{})
		consider(res)
	}

	bfgs()
	if best.gradNorm = gradAt(best.x); best.gradNorm > gradTol {
		settings := &optimize.Settings{
			MajorIterations: maxIter,
			Converger:       &optimize.FunctionConverge{Absolute: 1e-14, Relative: 1e-14, Iterations: 200},
		}
		res, _ := optimize.Minimize(optimize.Problem{Func: problem.Func}, append([]float64(nil), best.x...), settings, &optimize.NelderMead{})
		consider(res)
		bfgs()
		best.gradNorm = gradAt(best.x)
	}
	best.converged = finite(best.f) && best.gradNorm <= gradTol
	return best
}

// atBoundary reports whether any log-parameter is beyond logParamBound.
func atBoundary(logTheta []float64) bool {
	for _, v := range logTheta {
		if math.Abs(v) > logParamBound {
			return true
		}
	}
	return false
}

// penalty adds the L2 penalty on log-parameters to f and grad.
func penalty(pen float64, logTheta, grad []float64) float64 {
	if pen == 0 {
		return 0
	}
	var s float64
	for i, v := range logTheta {
		s += v * v
		if grad != nil {
			grad[i] += 2 * pen * v
		}
	}
	return pen * s
}

// outOfRange reports whether a log-parameter is beyond logParamHard, where
// the objective is defined as +Inf.
func outOfRange(logTheta []float64) bool {
	for _, v := range logTheta {
		if !finite(v) || math.Abs(v) > logParamHard {
			return true
		}
	}
	return false
}
