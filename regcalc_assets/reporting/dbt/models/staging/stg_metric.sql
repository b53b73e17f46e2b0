-- One row per business date x entity x basis: the figures of fact_metric with their natural keys.
select
    m.business_date,
    m.entity_id,
    upper(m.basis) as basis,
    m.reporting_currency,
    m.hqla_l1, m.hqla_l2a, m.hqla_l2b, m.adj15, m.adj40, m.hqla,
    m.total_outflows, m.total_inflows, m.capped_inflows, m.net_outflows, m.lcr,
    m.asf, m.rsf, m.nsfr,
    m.positions_accepted, m.positions_quarantined
from {{ source('star', 'fact_metric') }} m
