SELECT
    s.s_suppkey AS supplier_key,
    s.s_name    AS supplier_name,
    s.s_acctbal AS account_balance,
    n.n_name    AS nation,
    r.r_name    AS region
FROM raw.supplier AS s
LEFT JOIN raw.nation AS n ON n.n_nationkey = s.s_nationkey
LEFT JOIN raw.region AS r ON r.r_regionkey = n.n_regionkey
