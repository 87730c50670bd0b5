-- materialized: table
-- description: The purchase models' fit, for BI to show how far the CLV and
--   P(alive) figures can be trusted: one row per model (bgnbd = BG/NBD,
--   pnbd = Pareto/NBD), both fitted by maximum likelihood on all customers
--   in days (clv_params). chosen marks the model customer_value predicts
--   with and reason says why: var clv_model when set (bgnbd or pnbd),
--   otherwise the higher log-likelihood on a holdout of a fifth of the
--   customers (by hash of the customer key) when both are fitted on the
--   other four fifths; a fallback loses to a maximum-likelihood fit. A fit
--   whose estimate lies on a parameter boundary (|log θ| > 20: the data do
--   not identify the model) shows at_boundary and uses the documented
--   no-dropout fallback named in fallback. No fit time (clv_params has it): the
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
-- column: at_boundary: the estimate lies on a parameter boundary
-- column: fallback: empty for a maximum-likelihood fit, else the fallback used and why
SELECT 'bgnbd' AS model, model = 'bgnbd' AS chosen, model_reason AS reason,
       r, alpha, a AS dropout_1, b AS dropout_2,
       CASE WHEN bg_fallback = '' THEN bg_loglik END AS loglik,
       bg_holdout_loglik AS holdout_loglik, holdout_customers, customers, bg_boundary AS at_boundary,
       bg_fallback AS fallback
FROM clv_params
UNION ALL
SELECT 'pnbd', model = 'pnbd', model_reason,
       pnbd_r, pnbd_alpha, pnbd_s, pnbd_beta,
       CASE WHEN pnbd_fallback = '' THEN pnbd_loglik END,
       pnbd_holdout_loglik, holdout_customers, customers, pnbd_boundary, pnbd_fallback
FROM clv_params
