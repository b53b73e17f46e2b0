-- One row per business date x entity: the LCR and its parts, base (no adjustments), adjusted
-- (what is reported) and variance (adjusted - base), in the entity's reporting currency.
{{ config(pre_hook="{{ replace_partitions() }}") }}
{{ daily_mart(['hqla', 'total_outflows', 'total_inflows', 'capped_inflows', 'net_outflows', 'lcr']) }}
