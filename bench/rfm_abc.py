#!/usr/bin/python3
"""RFM + ABC in pandas: the notebook a data team would write instead of cdw.

Usage: rfm_abc.py ORDERS_CSV OUT_CSV

Does what cdw's staging + customer_segments do for RFM and ABC: keep the latest
version of each order line, sign returns and cancellations negative, then per
customer recency/frequency/monetary, 1-5 quintile scores, a named segment and
the ABC class by cumulative revenue share (A up to 75 %, B up to 95 %, C rest).
"""
import sys

import numpy as np
import pandas as pd

src, dst = sys.argv[1], sys.argv[2]
df = pd.read_csv(
    src,
    usecols=["order_no", "line", "customer", "ordered_at", "status", "qty", "unit_price", "updated_at"],
    dtype={"order_no": "int64", "line": "int32", "customer": "string", "status": "string", "qty": "float64", "unit_price": "float64"},
    parse_dates=["ordered_at", "updated_at"],
)
# Latest version of each line.
df = df.sort_values("updated_at").drop_duplicates(["order_no", "line"], keep="last")
amount = df["qty"] * df["unit_price"]
reversed_ = df["status"].str.lower().isin(["cancelled", "canceled", "returned", "refunded"])
df["net"] = np.where(reversed_, -amount.abs(), amount)
df = df[df["customer"].notna()]

as_of = df["ordered_at"].max().normalize() + pd.Timedelta(days=1)
g = df.groupby("customer").agg(last=("ordered_at", "max"), frequency=("order_no", "nunique"), monetary=("net", "sum"))
g["recency_days"] = (as_of - g["last"]).dt.days


def score(s, ascending=True):
    r = s.rank(method="first", ascending=ascending)
    return pd.qcut(r, 5, labels=False) + 1


g["r"] = score(g["recency_days"], ascending=False)
g["f"] = score(g["frequency"])
g["m"] = score(g["monetary"])
fm = (g["f"] + g["m"]) / 2
conds = [
    (g["r"] >= 4) & (fm >= 4),
    (g["r"] >= 3) & (fm >= 3),
    (g["r"] >= 4) & (fm >= 2),
    (g["r"] >= 4),
    (g["r"] <= 2) & (fm >= 4),
    (g["r"] <= 2) & (fm >= 3),
    (g["r"] <= 1),
]
names = ["champions", "loyal", "potential loyalist", "new", "can't lose", "at risk", "lost"]
g["segment"] = np.select(conds, names, default="hibernating")

g = g.sort_values("monetary", ascending=False)
share = g["monetary"].clip(lower=0).cumsum() / g["monetary"].clip(lower=0).sum()
g["abc"] = np.where(share <= 0.75, "A", np.where(share <= 0.95, "B", "C"))
g.to_csv(dst)
print(f"{len(g)} customers; segments: {g['segment'].value_counts().to_dict()}; abc: {g['abc'].value_counts().to_dict()}")
