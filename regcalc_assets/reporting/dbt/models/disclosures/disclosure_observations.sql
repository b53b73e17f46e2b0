-- One row per template x entity x disclosed quarter x period (0 = T ... 3 = T-3) x observation
-- date used: EU LIQ1 the month-ends (last business date with results of each month) of the
-- twelve months to the period's quarter end; EU LIQ2 the quarter's last business date with
-- results; US LCR every business date with results in the quarter.
{{ config(materialized='view') }}
with days as (
    select distinct entity_id, business_date,
           {{ month_index('business_date') }} as month_ix, {{ quarter_index('business_date') }} as quarter_ix
    from {{ ref('disclosure_daily_values') }}
),
quarters as (select distinct entity_id, quarter_ix from days),
month_ends as (
    select entity_id, month_ix, max(business_date) as business_date from days group by entity_id, month_ix
),
periods as (select 0 as period union all select 1 union all select 2 union all select 3)
select 'eu_liq1' as template, q.entity_id, q.quarter_ix, p.period, m.business_date
from quarters q
cross join periods p
join month_ends m
  on m.entity_id = q.entity_id
 and m.month_ix between 3 * (q.quarter_ix - p.period) - 8 and 3 * (q.quarter_ix - p.period) + 3
union all
select 'eu_liq2', d.entity_id, d.quarter_ix, 0, max(d.business_date)
from days d group by d.entity_id, d.quarter_ix
union all
select 'us_lcr', d.entity_id, d.quarter_ix, 0, d.business_date
from days d
