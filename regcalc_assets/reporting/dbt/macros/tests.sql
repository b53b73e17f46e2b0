{#- Generic data tests written here because dbt's hub (dbt_utils) is not reachable. -#}

{#- no two rows share the values of `columns` -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as n
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

{#- `column` equals `expression` (within `tolerance`) on every row: an identity of the figures -#}
{% test equals_expression(model, column_name, expression, tolerance=0.000001) %}
select *
from {{ model }}
where abs(coalesce({{ column_name }}, 0) - coalesce({{ expression }}, 0)) > {{ tolerance }}
   or ({{ column_name }} is null) <> (({{ expression }}) is null)
{% endtest %}
