SELECT
    fiscal_period,
    COUNT(DISTINCT order_key) AS value
FROM gdp.order_lines
GROUP BY fiscal_period
