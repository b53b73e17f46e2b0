{#- The partition a run covers: --vars {business_date: 'YYYY-MM-DD', entity_ids: [...]} (Dagster's
    date x entity partitions). Without vars every date and entity is in scope. -#}
{% macro partition_filter(date_column='business_date', entity_column='entity_id') -%}
  {%- set day = var('business_date', none) -%}
  {%- set entities = var('entity_ids', []) -%}
  {%- if day is none and not entities -%} 1 = 1
  {%- else -%}
    {%- if day is not none %} {{ date_column }} = cast('{{ check_date(day) }}' as date){% endif -%}
    {%- if day is not none and entities %} and{% endif -%}
    {%- if entities %} {{ entity_column }} in ({% for e in entities %}'{{ check_identifier(e) }}'{{ ", " if not loop.last }}{% endfor %}){% endif -%}
  {%- endif -%}
{%- endmacro %}

{#- An incremental mart replaces exactly its partitions: rows of the run's date and entities are
    deleted before the new ones are appended (same transaction). -#}
{% macro replace_partitions() -%}
  {%- if is_incremental() -%}
    delete from {{ this }} where {{ partition_filter() }}
  {%- else -%}
    select 1
  {%- endif -%}
{%- endmacro %}

{% macro check_date(value) -%}
  {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', value | string) -%}
    {{ exceptions.raise_compiler_error("business_date must be YYYY-MM-DD, not '" ~ value ~ "'") }}
  {%- endif -%}{{ value }}
{%- endmacro %}

{% macro check_identifier(value) -%}
  {%- if not modules.re.fullmatch('[A-Za-z0-9_.-]{1,64}', value | string) -%}
    {{ exceptions.raise_compiler_error("entity id '" ~ value ~ "' is not a valid identifier") }}
  {%- endif -%}{{ value }}
{%- endmacro %}

{#- The rows a model reads: the run's partitions when it adds to an existing table; every date on
    its first build or a --full-refresh (so a new warehouse, or one loaded with the reporting
    layer off, is built whole). -#}
{% macro in_partitions(date_column='business_date', entity_column='entity_id') -%}
  {%- if is_incremental() -%} {{ partition_filter(date_column, entity_column) }} {%- else -%} 1 = 1 {%- endif -%}
{%- endmacro %}
