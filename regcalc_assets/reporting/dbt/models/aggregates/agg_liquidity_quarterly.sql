-- One row per entity x quarter with results: daily averages over the quarter's business dates
-- with results (LCR, its parts, NSFR), the number of those dates, and the quarter-end NSFR.
-- A materialized view on PostgreSQL and Redshift, a table on DuckDB.
with daily as (
    select l.business_date, l.entity_id, l.reporting_currency, l.hqla_adjusted as hqla,
           l.net_outflows_adjusted as net_outflows, l.lcr_adjusted as lcr, n.nsfr_adjusted as nsfr,
           {{ quarter_index('l.business_date') }} as quarter_ix
    from {{ ref('mart_lcr_daily') }} l
    join {{ ref('mart_nsfr_daily') }} n on n.business_date = l.business_date and n.entity_id = l.entity_id
),
quarter_ends as (select entity_id, quarter_ix, max(business_date) as business_date from daily group by entity_id, quarter_ix)
select d.entity_id, d.quarter_ix, {{ quarter_label('d.quarter_ix') }} as quarter, max(d.reporting_currency) as reporting_currency,
       count(*) as business_dates, avg(d.hqla) as avg_hqla, avg(d.net_outflows) as avg_net_outflows,
       avg(d.lcr) as avg_lcr, avg(d.nsfr) as avg_nsfr, max(q.business_date) as quarter_end_date,
       max(case when d.business_date = q.business_date then d.nsfr end) as quarter_end_nsfr
from daily d
join quarter_ends q on q.entity_id = d.entity_id and q.quarter_ix = d.quarter_ix
group by d.entity_id, d.quarter_ix
