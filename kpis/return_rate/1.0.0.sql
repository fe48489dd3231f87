SELECT
    fiscal_period,
    AVG(CASE WHEN return_flag = 'R' THEN 1.0 ELSE 0.0 END) AS value
FROM gdp.order_lines
GROUP BY fiscal_period
