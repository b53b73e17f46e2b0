-- One row per business date with results x entity x template row x measure: the row's figure on
-- that date, before the template's averaging. Measures: 'weighted', 'unweighted' and, for EU
-- LIQ2, 'unweighted:<bucket>' per residual maturity. Sources (seed disclosure_rows): lines (the
-- row's mapped lines rolled up through its members), row:<code> (another row's rolled-up lines),
-- metric:<column> (fact_metric, adjusted), constant:<x>, zero. Adjusted figures (what is reported).
{{ config(materialized='incremental', incremental_strategy='append', pre_hook="{{ replace_partitions() }}") }}
{% set metrics = ['hqla', 'total_outflows', 'total_inflows', 'net_outflows', 'lcr', 'asf', 'rsf', 'nsfr'] %}
with days as (
    select business_date, entity_id, reporting_currency from {{ ref('stg_metric') }}
    where basis = 'ADJUSTED' and {{ in_partitions() }}
),
rows_ as (select * from {{ ref('disclosure_rows') }}),
buckets as (
    select 'ALL' as bucket union all select 'OPEN' union all select '<6m' union all select '6m-1y' union all select '>=1y'
),
rolled as (  -- per row, the lines of its members, by bucket
    select l.business_date, l.entity_id, m.template, m.row, l.bucket,
           sum(l.unweighted) as unweighted, sum(l.weighted) as weighted
    from {{ ref('mart_disclosure_lines_daily') }} l
    join {{ ref('disclosure_row_members') }} m on m.template = l.template and m.member_row = l.row
    where {{ in_partitions('l.business_date', 'l.entity_id') }}
    group by l.business_date, l.entity_id, m.template, m.row, l.bucket
),
metric_values as (
    {%- for f in metrics %}
    select business_date, entity_id, 'metric:{{ f }}' as source, {{ f }} as value
    from {{ ref('stg_metric') }} where basis = 'ADJUSTED' and {{ in_partitions() }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),
cells as (  -- every (date, entity, row, measure, bucket) the template has a figure for
    select d.business_date, d.entity_id, d.reporting_currency, r.template, r.row, 'unweighted' as kind, r.unweighted as source,
           b.bucket
    from days d cross join rows_ r
    join buckets b on (r.template = 'eu_liq2' and b.bucket <> 'ALL') or (r.template <> 'eu_liq2' and b.bucket = 'ALL')
    where r.unweighted not in ('none', 'quarter_end', 'observations')
    union all
    select d.business_date, d.entity_id, d.reporting_currency, r.template, r.row, 'weighted', r.weighted, 'ALL'
    from days d cross join rows_ r
    where r.weighted not in ('none', 'quarter_end', 'observations')
),
source_rows as (  -- the row whose rolled-up lines a cell takes
    select c.*,
           case when c.source = 'lines' then c.row
                when c.source like 'row:%' then substring(c.source, 5) end as lines_row
    from cells c
),
lines_by_row as (  -- rolled-up lines, all buckets summed (the weighted figure, and ALL for the others)
    select business_date, entity_id, template, row, sum(unweighted) as unweighted, sum(weighted) as weighted
    from rolled group by business_date, entity_id, template, row
)
select
    s.business_date, s.entity_id, s.reporting_currency, s.template, s.row,
    case when s.kind = 'unweighted' and s.template = 'eu_liq2' then 'unweighted:' || s.bucket else s.kind end as measure,
    case
        when s.source = 'zero' then 0
        when s.source like 'constant:%' then cast(substring(s.source, 10) as double precision)
        when s.source like 'metric:%' then mv.value
        when s.kind = 'weighted' then coalesce(lr.weighted, 0)
        when s.template = 'eu_liq2' then coalesce(rb.unweighted, 0)
        else coalesce(lr.unweighted, 0)
    end as value,
    {{ dbt.current_timestamp() }} as built_at
from source_rows s
left join metric_values mv
  on mv.business_date = s.business_date and mv.entity_id = s.entity_id and mv.source = s.source
left join lines_by_row lr
  on lr.business_date = s.business_date and lr.entity_id = s.entity_id and lr.template = s.template and lr.row = s.lines_row
left join rolled rb
  on rb.business_date = s.business_date and rb.entity_id = s.entity_id and rb.template = s.template
 and rb.row = s.lines_row and rb.bucket = s.bucket
