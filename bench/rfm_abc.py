#!/usr/bin/python3
"""RFM + ABC in pandas: the script a data team would write instead of cdw.

Usage: rfm_abc.py ORDERS_CSV OUT_CSV

Computes exactly what bench/models/marts/bench_rfm_abc.sql computes on top of cdw's
stg_orders, from the same orders CSV cdw extracts:
- staging: the latest version of each (order_no, line) by updated_at; returns
  and cancellations (status cancelled/canceled/returned/refunded/storno, or a
  negative quantity) count negative, except that a cancelled/returned status on
  a line with a positive quantity and amount voids the sale (counts 0: nothing
  was paid, as cdw's stg_orders has it); net amount = qty × unit_price rounded to
  4 decimals (cdw keeps DECIMAL(18,4)); lines without a customer are dropped;
- per customer: business unit (smallest non-empty, else 'Unassigned'), last
  order day, frequency (distinct orders with a non-return line), monetary
  (sum of net amounts), recency in days to the latest order day;
- scores within the business unit: 1 + floor(5 × customers with a worse
  value / customers in the unit), 3 when the measure has no spread; the
  segment from R and F; ABC by the cumulative share of positive revenue
  before the customer (ranked by monetary desc, then customer id): A < 0.75,
  B < 0.95, else C; monetary <= 0 is C.
"""
import sys

import numpy as np
import pandas as pd

src, dst = sys.argv[1], sys.argv[2]
df = pd.read_csv(
    src,
    usecols=["order_no", "line", "customer", "ordered_at", "status", "qty", "unit_price", "business_unit", "updated_at"],
    dtype={"order_no": "int64", "line": "int32", "customer": "string", "status": "string",
           "qty": "float64", "unit_price": "float64", "business_unit": "string"},
    parse_dates=["ordered_at", "updated_at"],
)
# Staging: latest version of each line (stable sort keeps file order on ties).
df = df.sort_values("updated_at", kind="stable").drop_duplicates(["order_no", "line"], keep="last")
status = df["status"].str.strip().str.lower().fillna("")
reversed_ = status.isin(["cancelled", "canceled", "returned", "refunded", "storno"]).to_numpy() | (df["qty"].fillna(0) < 0).to_numpy()
amount = (df["qty"] * df["unit_price"]).fillna(0)
void = status.isin(["cancelled", "canceled", "returned", "refunded", "storno"]).to_numpy() & (df["qty"].fillna(0) >= 0).to_numpy() & (amount >= 0).to_numpy()
df["net"] = np.where(void, 0.0, np.where(reversed_, -amount.abs(), amount)).round(4)
df["is_return"] = reversed_
df["customer"] = df["customer"].str.strip().replace("", pd.NA)
df["business_unit"] = df["business_unit"].str.strip().replace("", pd.NA)
df = df[df["customer"].notna()]
as_of = df["ordered_at"].max().normalize()

# Per customer.
purchases = df[~df["is_return"]]
g = df.groupby("customer").agg(business_unit=("business_unit", "min"), last=("ordered_at", "max"), monetary=("net", "sum"))
g["frequency"] = purchases.groupby("customer")["order_no"].nunique().reindex(g.index, fill_value=0)
g["business_unit"] = g["business_unit"].fillna("Unassigned")
g["monetary"] = g["monetary"].round(4)
g["recency_days"] = (as_of - g["last"].dt.normalize()).dt.days
g = g.reset_index().rename(columns={"customer": "customer_id"})

# Scores within the business unit.
unit = g.groupby("business_unit")
n = unit["customer_id"].transform("size")


def score(col, worse_is_larger):
    below = unit[col].rank(method="min", ascending=not worse_is_larger) - 1
    ties = g.groupby(["business_unit", col])["customer_id"].transform("size")
    return np.where(ties == n, 3, 1 + (5 * below) // n).astype(int)


g["r_score"] = score("recency_days", True)
g["f_score"] = score("frequency", False)
g["m_score"] = score("monetary", False)
r, f = g["r_score"], g["f_score"]
conds = [
    (r == 5) & (f >= 4),
    (r >= 3) & (f >= 4),
    (r >= 4) & f.between(2, 3),
    (r == 5) & (f == 1),
    (r == 4) & (f == 1),
    (r == 3),
    (r <= 2) & (f == 5),
    (r <= 2) & (f >= 3),
    (r == 2),
]
names = ["champions", "loyal", "potential loyalist", "new", "promising", "need attention", "can't lose", "at risk", "hibernating"]
g["segment"] = np.select(conds, names, default="lost")

# ABC within the business unit.
g = g.sort_values(["business_unit", "monetary", "customer_id"], ascending=[True, False, True], kind="stable")
positive = g["monetary"].clip(lower=0)
total = positive.groupby(g["business_unit"]).transform("sum")
before = positive.groupby(g["business_unit"]).cumsum() - positive
share = before / total.where(total > 0)
g["abc_class"] = np.where((g["monetary"] <= 0) | (total <= 0), "C", np.where(share < 0.75, "A", np.where(share < 0.95, "B", "C")))
g["monetary"] = g["monetary"].round(2)
cols = ["customer_id", "business_unit", "recency_days", "frequency", "monetary", "r_score", "f_score", "m_score", "segment", "abc_class"]
g[cols].sort_values("customer_id").to_csv(dst, index=False)
print(f"{len(g)} customers; segments: {g['segment'].value_counts().to_dict()}; abc: {g['abc_class'].value_counts().to_dict()}")
