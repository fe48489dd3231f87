-- Working days come from the fiscal calendar (weekends, public holidays and closures excluded).
SELECT
    l.fiscal_period,
    CAST(SUM(l.extended_price * (1 - l.discount)) / ANY_VALUE(c.working_days) AS DECIMAL(18, 2)) AS value
FROM gdp.order_lines AS l
JOIN calendar.fiscal_periods AS c ON c.fiscal_period = l.fiscal_period
GROUP BY l.fiscal_period
