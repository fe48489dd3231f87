SELECT
    fiscal_period,
    SUM(extended_price * (1 - discount)) / COUNT(DISTINCT order_key) AS value
FROM gdp.order_lines
GROUP BY fiscal_period
