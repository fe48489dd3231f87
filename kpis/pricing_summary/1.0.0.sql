-- The TPC-H Q1 measures, per fiscal period of the order instead of up to a ship date.
SELECT
    fiscal_period,
    return_flag,
    line_status,
    SUM(quantity) AS sum_qty,
    SUM(extended_price) AS sum_base_price,
    SUM(extended_price * (1 - discount)) AS sum_disc_price,
    SUM(extended_price * (1 - discount) * (1 + tax)) AS sum_charge,
    AVG(quantity) AS avg_qty,
    AVG(extended_price) AS avg_price,
    AVG(discount) AS avg_disc,
    COUNT(*) AS count_order
FROM gdp.order_lines
GROUP BY fiscal_period, return_flag, line_status
