SELECT
    fiscal_period,
    AVG(CASE WHEN receipt_date <= commit_date THEN 1.0 ELSE 0.0 END) AS value
FROM gdp.order_lines
GROUP BY fiscal_period
