-- Lines are the grain: left joins keep every line even if its order, customer or supply offer is missing.
-- A line belongs to the fiscal period of its order's date; lines arrive in the same extract as their
-- order, which may be the next period's (late_periods in order_lines.yaml).
-- supply_cost is the unit cost the line's supplier charges for its part (partsupp).
-- Customer name and segment come from the survived (and masked) gdp.customers.
SELECT
    l.l_orderkey      AS order_key,
    l.l_linenumber    AS line_number,
    o.o_custkey       AS customer_key,
    l.l_partkey       AS part_key,
    l.l_suppkey       AS supplier_key,
    o.o_orderdate     AS order_date,
    l.l_shipdate      AS ship_date,
    l.l_commitdate    AS commit_date,
    l.l_receiptdate   AS receipt_date,
    l.l_quantity      AS quantity,
    l.l_extendedprice AS extended_price,
    l.l_discount      AS discount,
    l.l_tax           AS tax,
    l.l_returnflag    AS return_flag,
    l.l_linestatus    AS line_status,
    l.l_shipmode      AS ship_mode,
    ps.ps_supplycost  AS supply_cost,
    c.customer_name,
    c.market_segment,
    n.n_name          AS nation,
    r.r_name          AS region,
    coalesce(fp.fiscal_period, l.fiscal_period) AS fiscal_period
FROM raw.lineitem AS l
LEFT JOIN raw.orders AS o
    ON o.o_orderkey = l.l_orderkey AND o.fiscal_period = l.fiscal_period
LEFT JOIN calendar.fiscal_days AS fp ON fp.day = o.o_orderdate
LEFT JOIN raw.partsupp AS ps ON ps.ps_partkey = l.l_partkey AND ps.ps_suppkey = l.l_suppkey
LEFT JOIN gdp.customers AS c ON c.customer_key = o.o_custkey
LEFT JOIN raw.nation AS n ON n.n_nationkey = c.nation_key
LEFT JOIN raw.region AS r ON r.r_regionkey = n.n_regionkey
