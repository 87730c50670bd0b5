// Package clv estimates customer lifetime value (CLV) from per-customer
// frequency/recency/age/spend summaries using two classic "buy till you die"
// models, both fitted by maximum likelihood:
//
//   - BG/NBD (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy
//     Way"): while alive a customer buys at Poisson rate λ ~ Gamma(r, α); after
//     every repeat purchase the customer drops out with probability
//     p ~ Beta(a, b). It yields P(alive) and the expected number of purchases
//     in a future window.
//   - Gamma-Gamma (Fader & Hardie 2013, "The Gamma-Gamma Model of Monetary
//     Value"): the value of each transaction is Gamma(p, ν) with
//     ν ~ Gamma(q, γ) across customers. It yields the expected spend per
//     transaction, shrinking the customer's observed mean towards the
//     population mean.
//
// CLV combines them as a monthly discounted sum of expected purchases times
// expected spend, the approach of the Python lifetimes library.
//
// # Inputs and time units
//
// For each customer: x (frequency) is the number of repeat purchases, i.e.
// the number of distinct purchase periods (days, usually) after the first
// one; t_x (recency) is the time from the first to the last purchase; T (age)
// is the time from the first purchase to the end of the observation window;
// mbar (monetary) is the mean value of the repeat transactions (0 when x=0).
// t_x, T and every prediction horizon t must use one time unit, chosen by the
// caller (days or weeks are typical). The fitted α is expressed in that unit,
// so parameters fitted in weeks must not be used with ages in days. CLV takes
// timeUnitsPerMonth (30 or 365.25/12 for days, 4.345 or 52.1775/12 for weeks)
// to convert its monthly steps.
//
// # Degenerate data
//
// Fitting never panics and no prediction returns NaN or ±Inf. When a model
// cannot be fitted meaningfully (too few customers, nobody repeats, all ages
// zero, all spends equal, optimiser failure, estimates at a parameter
// boundary) a documented fallback is used, expressed as ordinary model
// parameters so that the same numbers work in Go and in the SQL UDFs, and the
// model's Fallback field says what happened; it is empty when the MLE was
// used. See FitBGNBD and FitGammaGamma for the exact rules.
package clv
