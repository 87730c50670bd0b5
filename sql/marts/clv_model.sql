-- materialized: table
-- description: The purchase models' fit, for BI to show how far the CLV and
--   P(alive) figures can be trusted: one row per model (bgnbd = BG/NBD,
--   pnbd = Pareto/NBD), both fitted by maximum likelihood on all customers
--   in days (clv_params). chosen marks the model customer_value predicts
--   with and reason says why: var clv_model when set (bgnbd or pnbd),
--   otherwise the higher log-likelihood on a holdout of a fifth of the
--   customers (by hash of the customer key) when both are fitted on the
--   other four fifths; a fallback loses to a maximum-likelihood fit.
--   at_boundary flags a fit the data do not identify, by either of two tests
--   (boundary_reason says which, with the numbers): an estimate beyond
--   |log θ| > 20 ("|log a| = 23.1 > 20"; the documented no-dropout
--   fallback named in fallback is used), or a likelihood-ratio test that
--   cannot reject the no-dropout limit (BG/NBD a → 0, Pareto/NBD s → 0:
--   the NBD, fitted by maximum likelihood, nodropout_loglik):
--   2·(loglik − nodropout_loglik) < 3.84 ("ΔLL vs no-dropout NBD = 0.40 <
--   1.92: dropout not identified"). The second is informational: the fit,
--   the model choice and the predictions stay as they are; it says that
--   P(alive) and the dropout parameters are not supported by the data (the
--   purchase-rate part still is). No fit time (clv_params has it): the
--   mart changes only when the fit does.
-- tests: unique(model), not_null(chosen), accepted_values(model, 'bgnbd', 'pnbd')
-- column: model: bgnbd or pnbd
-- column: chosen: true for the model customer_value uses
-- column: reason: why the chosen model was chosen (the same text on both rows)
-- column: r: shape of the purchase-rate Gamma distribution
-- column: alpha: rate of the purchase-rate Gamma distribution, per day
-- column: dropout_1: BG/NBD a, Pareto/NBD s (shape of the dropout distribution)
-- column: dropout_2: BG/NBD b, Pareto/NBD beta (per day)
-- column: loglik: maximised log-likelihood on all customers (NULL for a fallback)
-- column: holdout_loglik: log-likelihood on the held-out customers when fitted on the others (NULL: no holdout or a fallback)
-- column: holdout_customers: customers held out
-- column: customers: customers fitted
-- column: at_boundary: the fit is at a boundary: |log θ| > 20, or dropout not identified against the no-dropout NBD (see boundary_reason)
-- column: boundary_reason: which boundary test fired, with the numbers; empty when at_boundary is false
-- column: nodropout_loglik: maximised log-likelihood of the no-dropout NBD on all customers (the same on both rows)
-- column: fallback: empty for a maximum-likelihood fit, else the fallback used and why
SELECT 'bgnbd' AS model, model = 'bgnbd' AS chosen, model_reason AS reason,
       r, alpha, a AS dropout_1, b AS dropout_2,
       CASE WHEN bg_fallback = '' THEN bg_loglik END AS loglik,
       bg_holdout_loglik AS holdout_loglik, holdout_customers, customers, bg_boundary AS at_boundary,
       bg_boundary_reason AS boundary_reason, nodropout_loglik, bg_fallback AS fallback
FROM clv_params
UNION ALL
SELECT 'pnbd', model = 'pnbd', model_reason,
       pnbd_r, pnbd_alpha, pnbd_s, pnbd_beta,
       CASE WHEN pnbd_fallback = '' THEN pnbd_loglik END,
       pnbd_holdout_loglik, holdout_customers, customers, pnbd_boundary,
       pnbd_boundary_reason, nodropout_loglik, pnbd_fallback
FROM clv_params
