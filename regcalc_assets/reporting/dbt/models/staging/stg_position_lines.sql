-- One row per position x kind of contribution (hqla, outflow, inflow, asf, rsf) that the position
-- has: the factor-table row behind it (natural id), product, counterparty class, NSFR residual
-- maturity bucket, the position's amount (unweighted) and its contribution (weighted), adjusted.
{% set kinds = [('hqla', 'haircut'), ('outflow', 'outflow'), ('inflow', 'inflow'), ('asf', 'asf'), ('rsf', 'rsf')] %}
with positions as (
    select p.*, pr.product
    from {{ source('star', 'fact_position') }} p
    left join {{ source('star', 'dim_product') }} pr on pr.product_key = p.product_key
)
{% for kind, role in kinds %}
select
    p.business_date,
    p.entity_id,
    '{{ kind }}' as kind,
    f.factor_row,
    p.product,
    p.counterparty_class,
    p.nsfr_bucket,
    p.amount as unweighted,
    p.{{ kind }}_contribution as weighted
from positions p
join {{ source('star', 'dim_factor_row') }} f on f.factor_row_key = p.{{ role }}_factor_row_key
where f.factor_row_key <> -1
{% if not loop.last %}union all{% endif %}
{% endfor %}
