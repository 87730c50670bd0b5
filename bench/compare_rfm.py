#!/usr/bin/python3
"""Compare cdw's bench_rfm_abc with bench/rfm_abc.py's output, column by column.

Usage: compare_rfm.py OURS_CSV PANDAS_CSV
OURS_CSV: cdw query --config X --format csv --limit 0 "SELECT * FROM bench_rfm_abc"
Exits 1 when a customer or a value differs (monetary within half a cent).
"""
import sys

import pandas as pd

a = pd.read_csv(sys.argv[1], dtype={"customer_id": str})
p = pd.read_csv(sys.argv[2], dtype={"customer_id": str})
m = a.merge(p, on="customer_id", suffixes=("_c", "_p"))
bad = len(a) != len(p) or len(m) != len(a)
print("customers: ours", len(a), "pandas", len(p), "in both", len(m))
for c in ["business_unit", "recency_days", "frequency", "r_score", "f_score", "m_score", "segment", "abc_class"]:
    n = int((m[c + "_c"] != m[c + "_p"]).sum())
    bad = bad or n > 0
    print(f"{c}: {n} differ")
n = int(((m["monetary_c"] - m["monetary_p"]).abs() > 0.005).sum())
print(f"monetary: {n} differ")
sys.exit(1 if bad or n else 0)
