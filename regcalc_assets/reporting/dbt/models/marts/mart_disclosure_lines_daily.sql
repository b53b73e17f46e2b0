-- One row per business date x entity x template x template row x residual-maturity bucket: the
-- positions' amounts (unweighted) and contributions (weighted, adjusted) that the versioned line
-- map (seed disclosure_line_map) sends to that row, plus each side's residual (the difference
-- between the reported total and its lines: aggregation- and final-stage rule changes) on the
-- row that the template's definition (seed disclosure_rows, column residual) names.
-- Buckets: EU LIQ2 keeps the NSFR residual maturity (OPEN, <6m, 6m-1y, >=1y); the others ALL.
{{ config(pre_hook="{{ replace_partitions() }}") }}
with lines as (
    select business_date, entity_id, kind, factor_row, product, counterparty_class, nsfr_bucket,
           sum(unweighted) as unweighted, sum(weighted) as weighted
    from {{ ref('stg_position_lines') }}
    where {{ in_partitions() }}
    group by business_date, entity_id, kind, factor_row, product, counterparty_class, nsfr_bucket
),
candidates as (  -- every map entry that fits a line; the most specific one wins
    select l.*, m.template, m.row,
           row_number() over (
               partition by l.business_date, l.entity_id, l.kind, l.factor_row, l.product, l.counterparty_class,
                            l.nsfr_bucket, m.template
               order by case when m.product <> '*' then 2 else 0 end
                        + case when m.counterparty_class <> '*' then 1 else 0 end desc) as rank_
    from lines l
    join {{ ref('disclosure_line_map') }} m
      on m.factor_row = l.factor_row
     and (m.product = '*' or m.product = l.product)
     and (m.counterparty_class = '*' or m.counterparty_class = l.counterparty_class)
),
mapped as (
    select business_date, entity_id, template, row, kind,
           case when template = 'eu_liq2' then nsfr_bucket else 'ALL' end as bucket,
           unweighted, weighted
    from candidates
    where rank_ = 1 and row is not null
),
totals as (  -- the reported (adjusted) total of each side
    select business_date, entity_id, 'outflow' as kind, total_outflows as total from {{ ref('stg_metric') }}
    where basis = 'ADJUSTED' and {{ in_partitions() }}
    union all
    select business_date, entity_id, 'inflow', total_inflows from {{ ref('stg_metric') }}
    where basis = 'ADJUSTED' and {{ in_partitions() }}
    union all
    select business_date, entity_id, 'asf', asf from {{ ref('stg_metric') }}
    where basis = 'ADJUSTED' and {{ in_partitions() }}
    union all
    select business_date, entity_id, 'rsf', rsf from {{ ref('stg_metric') }}
    where basis = 'ADJUSTED' and {{ in_partitions() }}
),
side_lines as (
    select business_date, entity_id, template, kind, sum(weighted) as weighted
    from mapped
    group by business_date, entity_id, template, kind
),
residuals as (
    select t.business_date, t.entity_id, r.template, r.row, t.kind,
           case when r.template = 'eu_liq2' then 'OPEN' else 'ALL' end as bucket,
           cast(0 as double precision) as unweighted,
           cast(round(cast(t.total - coalesce(s.weighted, 0) as numeric(38, 6)), 2) as double precision) as weighted  -- to the cent: float noise is not a rule's change
    from totals t
    join {{ ref('disclosure_rows') }} r on r.residual = t.kind
    left join side_lines s
      on s.business_date = t.business_date and s.entity_id = t.entity_id and s.template = r.template and s.kind = t.kind
)
select business_date, entity_id, template, row, bucket,
       sum(unweighted) as unweighted, sum(weighted) as weighted,
       {{ dbt.current_timestamp() }} as built_at
from (
    select business_date, entity_id, template, row, bucket, unweighted, weighted from mapped
    union all
    select business_date, entity_id, template, row, bucket, unweighted, weighted from residuals
) x
group by business_date, entity_id, template, row, bucket
