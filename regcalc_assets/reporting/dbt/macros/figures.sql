{#- A daily mart: one row per business date x entity of the run's partitions (every date on a
    first build) with base, adjusted and variance (adjusted - base) of each figure, from
    stg_metric's two rows per date and entity (basis BASE, ADJUSTED). -#}
{% macro daily_mart(figures) -%}
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
{%- endmacro %}
