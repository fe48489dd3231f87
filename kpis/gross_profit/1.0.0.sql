SELECT
    fiscal_period,
    SUM(extended_price * (1 - discount) - supply_cost * quantity) AS value
FROM gdp.order_lines
GROUP BY fiscal_period
