"""Partitions shared by every stage: business date x legal entity.

Entities are a dynamic dimension: a new entity in a delivery's entities file becomes a partition
without a code change (the EOD command and schedule register it).
"""

from __future__ import annotations

import dagster as dg

ENTITY_PARTITIONS = "legal_entities"
FIRST_BUSINESS_DATE = "2020-01-01"
BUSINESS_DATES = dg.DailyPartitionsDefinition(start_date=FIRST_BUSINESS_DATE, end_offset=1)
LEGAL_ENTITIES = dg.DynamicPartitionsDefinition(name=ENTITY_PARTITIONS)
DATE_ENTITY = dg.MultiPartitionsDefinition({"date": BUSINESS_DATES, "entity": LEGAL_ENTITIES})


def by_date() -> dg.MultiToSingleDimensionPartitionMapping:
    """Every entity partition of a date reads (or follows) the date's partition. (The mapping is
    marked beta in Dagster; its warning would be printed by every command, so it is silenced here.)"""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="date")


def run_scope(context) -> tuple[str, list[str]]:
    """The business date and the entities that a (possibly ranged) run covers."""
    keys = context.partition_keys
    dates = sorted({k.keys_by_dimension["date"] for k in keys})
    if len(dates) != 1:
        raise ValueError(f"a run covers exactly one business date, got {dates}")
    return dates[0], sorted({k.keys_by_dimension["entity"] for k in keys})


def date_range_tags(business_date: str, first_entity: str, last_entity: str) -> dict[str, str]:
    """Run tags that target every partition of one date from first_entity to last_entity (dynamic order)."""
    return {
        "dagster/asset_partition_range_start": f"{business_date}|{first_entity}",
        "dagster/asset_partition_range_end": f"{business_date}|{last_entity}",
    }


def contiguous_groups(order: list[str], wanted: set[str]) -> list[list[str]]:
    """Split the wanted entities into runs of neighbours in the dynamic-partition order."""
    groups, current = [], []
    for entity in order:
        if entity in wanted:
            current.append(entity)
        elif current:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def run_partitions(instance, tags: dict[str, str]) -> list[tuple[str, str]]:
    """(business_date, entity_id) of every partition a run covers, from its tags: one partition
    (a date alone is a date-level run: entity ``WHOLE_DATE``) or a range of entities of one date
    in the dynamic-partition order."""
    from regcalc_resources.stage_store import pair_of_key

    if "dagster/partition" in tags:
        return [pair_of_key(tags["dagster/partition"])]
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    if not start or not end:
        return []
    (date, first), (_, last) = pair_of_key(start), pair_of_key(end)
    order = instance.get_dynamic_partitions(ENTITY_PARTITIONS)
    if first not in order or last not in order:
        return []
    return [(date, e) for e in order[order.index(first):order.index(last) + 1]]
