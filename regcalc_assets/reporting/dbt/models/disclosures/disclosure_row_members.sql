-- One row per template row x row whose lines count in it: itself, its children and their
-- children ("of which" rows and, for EU LIQ1 row 20, the inflow rows it totals).
{{ config(materialized='view') }}
with r as (select template, row, parent from {{ ref('disclosure_rows') }})
select template, row, row as member_row from r
union all
select template, parent, row from r where parent is not null
union all
select p.template, p.parent, c.row
from r c join r p on p.template = c.template and p.row = c.parent
where p.parent is not null
