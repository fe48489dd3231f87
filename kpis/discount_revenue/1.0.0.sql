SELECT
    fiscal_period,
    SUM(extended_price * discount) AS value
FROM gdp.order_lines
WHERE discount BETWEEN 0.05 AND 0.07 AND quantity < 24
GROUP BY fiscal_period
