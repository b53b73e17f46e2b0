-- One row per template x entity x quarter x template row x template column: the disclosure in
-- long form (EU LIQ1, EU LIQ2, US LCR), adjusted figures. value is a decimal (ratios: 1.25 =
-- 125%); value_text holds EU-1a's date; note says how a row is filled where the spec has no concept.
-- Columns: EU LIQ1 a-d unweighted, e-h weighted for T, T-1, T-2, T-3 (averages of month-ends over
-- twelve months); EU LIQ2 a-d unweighted by residual maturity (no maturity, < 6 months,
-- 6 months to < 1 year, >= 1 year), e weighted (quarter-end); US LCR a average unweighted,
-- b average weighted (daily averages over the quarter).
with obs as (select * from {{ ref('disclosure_observations') }}),
rows_ as (select * from {{ ref('disclosure_rows') }}),
periods as (  -- every period of every disclosed quarter, even one without observations
    select distinct o.template, o.entity_id, o.quarter_ix, p.period
    from obs o
    cross join (select 0 as period union all select 1 union all select 2 union all select 3) p
    where o.period = 0 and (o.template = 'eu_liq1' or p.period = 0)
),
averaged as (
    select o.template, o.entity_id, o.quarter_ix, o.period, v.row, v.measure, avg(v.value) as value
    from obs o
    join {{ ref('disclosure_daily_values') }} v
      on v.template = o.template and v.entity_id = o.entity_id and v.business_date = o.business_date
    group by o.template, o.entity_id, o.quarter_ix, o.period, v.row, v.measure
),
counts as (
    select template, entity_id, quarter_ix, period, count(*) as observations
    from obs group by template, entity_id, quarter_ix, period
),
info as (  -- EU-1a and EU-1b, in every column of their period
    select p.template, p.entity_id, p.quarter_ix, p.period, r.row, m.measure,
           case when r.weighted = 'observations' then cast(coalesce(c.observations, 0) as double precision) end as value,
           case when r.weighted = 'quarter_end' then {{ quarter_end_text('p.quarter_ix - p.period') }} end as value_text
    from periods p
    join rows_ r on r.template = p.template and r.weighted in ('observations', 'quarter_end')
    cross join (select 'unweighted' as measure union all select 'weighted') m
    left join counts c
      on c.template = p.template and c.entity_id = p.entity_id and c.quarter_ix = p.quarter_ix and c.period = p.period
),
currencies as (
    select entity_id, max(reporting_currency) as reporting_currency
    from {{ ref('disclosure_daily_values') }} group by entity_id
),
cells as (
    select template, entity_id, quarter_ix, period, row, measure, value, cast(null as varchar(10)) as value_text from averaged
    union all
    select template, entity_id, quarter_ix, period, row, measure, value, value_text from info
)
select
    c.template,
    c.entity_id,
    {{ quarter_label('c.quarter_ix') }} as quarter,
    c.row,
    r.row_order,
    r.label,
    case
        when c.template = 'eu_liq1' and c.measure = 'unweighted' then substring('abcd', c.period + 1, 1)
        when c.template = 'eu_liq1' then substring('efgh', c.period + 1, 1)
        when c.template = 'eu_liq2' and c.measure = 'unweighted:OPEN' then 'a'
        when c.template = 'eu_liq2' and c.measure = 'unweighted:<6m' then 'b'
        when c.template = 'eu_liq2' and c.measure = 'unweighted:6m-1y' then 'c'
        when c.template = 'eu_liq2' and c.measure = 'unweighted:>=1y' then 'd'
        when c.template = 'eu_liq2' then 'e'
        when c.measure = 'unweighted' then 'a'
        else 'b'
    end as column_code,
    c.value,
    c.value_text,
    case when r.weighted in ('metric:lcr', 'metric:nsfr') or r.weighted like 'constant:%' then 'ratio'
         when r.weighted = 'observations' then 'count'
         when r.weighted = 'quarter_end' then 'date'
         else 'amount' end as unit,
    cu.reporting_currency,
    r.note,
    r.citation
from cells c
join rows_ r on r.template = c.template and r.row = c.row
left join currencies cu on cu.entity_id = c.entity_id
