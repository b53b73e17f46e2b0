-- One row per entity x month with results: the month-end observation (the last business date of
-- the month with results) of the adjusted LCR and NSFR figures, with base and variance of the
-- ratios. A materialized view on PostgreSQL and Redshift, a table on DuckDB.
with daily as (
    select l.business_date, l.entity_id, l.reporting_currency,
           l.hqla_adjusted as hqla, l.total_outflows_adjusted as total_outflows,
           l.total_inflows_adjusted as total_inflows, l.net_outflows_adjusted as net_outflows,
           l.lcr_base, l.lcr_adjusted as lcr, l.lcr_variance,
           n.asf_adjusted as asf, n.rsf_adjusted as rsf, n.nsfr_base, n.nsfr_adjusted as nsfr, n.nsfr_variance,
           {{ month_index('l.business_date') }} as month_ix
    from {{ ref('mart_lcr_daily') }} l
    join {{ ref('mart_nsfr_daily') }} n on n.business_date = l.business_date and n.entity_id = l.entity_id
),
last_days as (select entity_id, month_ix, max(business_date) as business_date from daily group by entity_id, month_ix)
select d.entity_id, d.business_date, d.month_ix, d.reporting_currency, d.hqla, d.total_outflows, d.total_inflows,
       d.net_outflows, d.lcr_base, d.lcr, d.lcr_variance, d.asf, d.rsf, d.nsfr_base, d.nsfr, d.nsfr_variance
from daily d
join last_days m on m.entity_id = d.entity_id and m.business_date = d.business_date
