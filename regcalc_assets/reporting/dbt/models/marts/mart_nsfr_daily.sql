-- One row per business date x entity: the NSFR and its parts, base, adjusted and variance.
{{ config(pre_hook="{{ replace_partitions() }}") }}
{% set figures = ['asf', 'rsf', 'nsfr'] %}
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
