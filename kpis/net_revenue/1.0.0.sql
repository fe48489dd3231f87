SELECT
    fiscal_period,
    SUM(extended_price * (1 - discount)) AS value
FROM gdp.order_lines
GROUP BY fiscal_period
