{#- Calendar arithmetic written once for DuckDB, PostgreSQL and Redshift: months and quarters as
    integers (year * 12 + month, year * 4 + quarter - 1), so windows are plain comparisons. -#}
{% macro month_index(d) -%}
  (cast(extract(year from {{ d }}) as integer) * 12 + cast(extract(month from {{ d }}) as integer))
{%- endmacro %}

{% macro quarter_index(d) -%}
  (cast(extract(year from {{ d }}) as integer) * 4 + cast(extract(quarter from {{ d }}) as integer) - 1)
{%- endmacro %}

{#- the label of quarter index q: '2024Q4' -#}
{% macro quarter_label(q) -%}
  (cast(cast(floor(({{ q }}) / 4.0) as integer) as varchar(4)) || 'Q'
   || cast(cast(({{ q }}) - 4 * floor(({{ q }}) / 4.0) + 1 as integer) as varchar(1)))
{%- endmacro %}

{#- the last calendar day of quarter index q, as text 'YYYY-MM-DD' (EU-1a) -#}
{% macro quarter_end_text(q) -%}
  (cast(cast(floor(({{ q }}) / 4.0) as integer) as varchar(4)) || '-'
   || case cast(({{ q }}) - 4 * floor(({{ q }}) / 4.0) as integer)
        when 0 then '03-31' when 1 then '06-30' when 2 then '09-30' else '12-31' end)
{%- endmacro %}
