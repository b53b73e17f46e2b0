-- One row per business date x entity: the LCR and its parts, base (no adjustments), adjusted
-- (what is reported) and variance (adjusted - base), in the entity's reporting currency.
{{ config(pre_hook="{{ replace_partitions() }}") }}
{% set figures = ['hqla', 'total_outflows', 'total_inflows', 'capped_inflows', 'net_outflows', 'lcr'] %}
select
    business_date,
    entity_id,
    max(reporting_currency) as reporting_currency,
    {%- for f in figures %}
    max(case when basis = 'BASE' then {{ f }} end) as {{ f }}_base,
    max(case when basis = 'ADJUSTED' then {{ f }} end) as {{ f }}_adjusted,
    max(case when basis = 'ADJUSTED' then {{ f }} end) - max(case when basis = 'BASE' then {{ f }} end) as {{ f }}_variance,
    {%- endfor %}
    {{ dbt.current_timestamp() }} as built_at
from {{ ref('stg_metric') }}
where {{ in_partitions() }}
group by business_date, entity_id
