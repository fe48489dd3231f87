-- An order belongs to the fiscal period of its date, whichever extract delivered it: one that
-- arrives in a later period's extract restates its own period (late_periods in orders.yaml).
SELECT
    o.o_orderkey      AS order_key,
    o.o_custkey       AS customer_key,
    o.o_orderstatus   AS order_status,
    o.o_totalprice    AS total_price,
    o.o_orderdate     AS order_date,
    o.o_orderpriority AS order_priority,
    o.o_clerk         AS clerk,
    o.o_shippriority  AS ship_priority,
    coalesce(c.fiscal_period, o.fiscal_period) AS fiscal_period
FROM raw.orders AS o
LEFT JOIN calendar.fiscal_days AS c ON c.day = o.o_orderdate
