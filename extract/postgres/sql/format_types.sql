-- Type names of described result columns, in column order.
-- $1: type OIDs (int8[]), $2: type modifiers (int4[]).
SELECT format_type(t.oid::oid, t.mod)
FROM unnest($1::int8[], $2::int4[]) WITH ORDINALITY AS t(oid, mod, ord)
ORDER BY t.ord
