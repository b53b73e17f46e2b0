-- One row per business date x entity: the NSFR and its parts, base (no adjustments), adjusted
-- (what is reported) and variance (adjusted - base), in the entity's reporting currency.
{{ config(pre_hook="{{ replace_partitions() }}") }}
{{ daily_mart(['asf', 'rsf', 'nsfr']) }}
