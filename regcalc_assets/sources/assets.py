"""The pipeline's sources as observable assets: the adjustment rules of each stage, per (date,
entity), and the landing-zone delivery, per date. An observation records a new data version only
for the partitions whose version changed, so exactly the stages downstream of them go stale."""

import warnings

import dagster as dg

from regcalc_assets.partitions import BUSINESS_DATES, DATE_ENTITY, ENTITY_PARTITIONS
from regcalc_assets.sources.logic import LANDING_SOURCE, RULE_SOURCES
from regcalc_assets.sources.versions import changed_versions, current_versions


def _observe(context, source: str) -> dg.DataVersionsByPartition:
    store, landing = context.resources.rules, context.resources.landing
    registered = context.instance.get_dynamic_partitions(ENTITY_PARTITIONS)
    current = current_versions(store.approved_rules(), landing.root, registered)
    changed = changed_versions(context.instance, {source: current[source]})
    context.log.info(f"{source}: {len(changed.get(source, {}))} partition(s) with a new version")
    return dg.DataVersionsByPartition(changed.get(source, {}))


# observable source assets are "beta" in Dagster 1.13; the API used here is the documented one
warnings.filterwarnings("ignore", message=".*observable_source_asset.*", category=dg.BetaWarning)


def _rule_source(source: str, stage: str):
    @dg.observable_source_asset(
        name=source, partitions_def=DATE_ENTITY, group_name="sources", required_resource_keys={"rules", "landing"},
        description=(f"The approved {stage} adjustment rules that can apply to a (business_date, entity_id): "
                     "its data version is a hash of their (rule_id, version), effective on the date and not "
                     "excluded by an entity condition (adjustment-rules.md). Feeds only the "
                     f"{stage} stage."),
    )
    def _source(context):
        return _observe(context, source)

    return _source


deal_rules, aggregation_rules, final_rules = (_rule_source(s, stage) for s, stage in RULE_SOURCES.items())


@dg.observable_source_asset(
    name=LANDING_SOURCE, partitions_def=BUSINESS_DATES, group_name="sources",
    required_resource_keys={"rules", "landing"},
    description="A business date's delivery in the landing zone (landing-zone.md): its data version is a hash "
                "of the date folder's files (name, size, modification time), so a re-delivered positions, "
                "entities or FX file makes that date's ingestion stale.",
)
def landing_delivery(context):
    return _observe(context, LANDING_SOURCE)
