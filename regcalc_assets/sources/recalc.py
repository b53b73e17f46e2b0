"""What is stale, and the few runs that bring it up to date.

A materialized (asset, partition) is stale when the source version it consumed differs from the
source's current version, or when a parent partition is stale or was materialized after it. The
plan batches the stale partitions of a date into runs that share an asset selection and cover a
contiguous range of entities, so a recalculation starts few runs (one engine session each), and
every partition that is not stale is reused.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import dagster as dg

from regcalc_assets.partitions import ENTITY_PARTITIONS, contiguous_groups, date_range_tags
from regcalc_assets.sources.logic import LANDING_SOURCE, RULE_SOURCES
from regcalc_assets.sources.versions import consumed_versions

# stage asset -> the source whose version it records (each source feeds only these)
CONSUMERS = {
    "landed_positions": LANDING_SOURCE,
    "entity_profiles": LANDING_SOURCE,
    "unassigned_positions": LANDING_SOURCE,
    "adjusted_positions": "deal_rules",
    "liquidity_components": "aggregation_rules",
    "liquidity_metrics": "final_rules",
}
DATE_LEVEL = {"unassigned_positions"}
RECOMPUTED_TAG, REUSED_TAG = "regcalc/recalc_recomputed", "regcalc/recalc_reused"
RECALC_ID_TAG = "regcalc/recalc_id"  # the same on every run of one recalculation (one plan)
assert set(CONSUMERS.values()) == {LANDING_SOURCE, *RULE_SOURCES}


@dataclass
class RecalcRun:
    business_date: str
    assets: list[str]
    entities: list[str]  # empty for a date-level run
    marker: str = ""  # what else makes this run differ from an earlier one (a circuit-breaker release)

    def tags(self) -> dict[str, str]:
        base = {"regcalc/business_date": self.business_date, "regcalc/trigger": "recalc"}
        if self.entities:
            base.update(date_range_tags(self.business_date, self.entities[0], self.entities[-1]))
        return base


@dataclass
class RecalcPlan:
    stale: dict[str, set[str]] = field(default_factory=dict)  # asset -> stale partition keys
    materialized: dict[str, set[str]] = field(default_factory=dict)  # asset -> partition keys in scope
    runs: list[RecalcRun] = field(default_factory=list)
    plan_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])

    @property
    def recomputed(self) -> int:
        return sum(len(v) for v in self.stale.values())

    @property
    def reused(self) -> int:
        return sum(len(v) for v in self.materialized.values()) - self.recomputed

    def summary_tags(self) -> dict[str, str]:
        """Tags of every run of this recalculation: its partitions recomputed and reused (the
        whole recalculation's, so its cache hit rate), and its id (to count it once)."""
        return {RECOMPUTED_TAG: str(self.recomputed), REUSED_TAG: str(self.reused), RECALC_ID_TAG: self.plan_id}


def _date_of(partition: str) -> str:
    return partition.split("|", 1)[0]


def plan(instance, asset_graph, current: dict[str, dict[str, str]], dates: set[str] | None = None,
         released: set[tuple[str, str]] | None = None) -> RecalcPlan:
    """The stale (asset, partition) pairs among the materialized ones (of ``dates``, if given),
    and the runs that recompute exactly them. The circuit breaker is respected
    (``circuit_breaker.adjust_plan``): nothing is published for a held partition, what a run it
    stopped left undone for the others is done, and a held partition whose failed evaluation an
    acknowledgment names (``released``: (partition, run id), from ``circuit_breaker.released``)
    is recomputed from liquidity_metrics, so that its check runs again."""
    from regcalc_assets import circuit_breaker

    latest = {}
    result = RecalcPlan()
    consumed = {asset: consumed_versions(instance, asset) for asset in CONSUMERS}
    whole: dict[str, set[str]] = {}  # unpartitioned asset -> its neighbours (parents and children)
    for key in asset_graph.toposorted_asset_keys:
        node = asset_graph.get(key)
        if not node.is_materializable:
            continue
        asset = key.to_user_string()
        if node.partitions_def is None:  # a whole table rebuilt from every date (star dimensions, aggregates)
            if instance.get_latest_materialization_event(key) is not None:  # built before (REGCALC_STAR on)
                whole[asset] = {k.to_user_string() for k in (*node.parent_keys, *node.child_entity_keys)
                                if isinstance(k, dg.AssetKey)}
            continue
        latest[asset] = instance.event_log_storage.get_latest_storage_id_by_partition(
            key, dg.DagsterEventType.ASSET_MATERIALIZATION)
        in_scope = {pk for pk in latest[asset] if dates is None or _date_of(pk) in dates}
        result.materialized[asset] = in_scope
        stale = set()
        for pk in in_scope:
            source = CONSUMERS.get(asset)
            if source is not None:
                source_pk = _date_of(pk) if source == LANDING_SOURCE else pk
                now = current.get(source, {}).get(source_pk)
                if now is not None and consumed[asset].get(pk) != now:
                    stale.add(pk)
                    continue
            for parent in node.parent_keys:
                name = parent.to_user_string()
                if name not in latest:  # a source: handled above
                    continue
                if pk in result.stale.get(name, ()) or latest[name].get(pk, 0) > latest[asset][pk]:
                    stale.add(pk)
                    break
        result.stale[asset] = stale
    markers, also_whole = circuit_breaker.adjust_plan(instance, asset_graph, result.stale, latest, released or set(), dates)
    for name in also_whole - set(whole):  # a whole table the stopped run would have built
        node = asset_graph.get(dg.AssetKey(name))
        whole[name] = {k.to_user_string() for k in (*node.parent_keys, *node.child_entity_keys) if isinstance(k, dg.AssetKey)}
    result.runs = _runs(instance, result.stale)
    for run in result.runs:
        run.marker = ";".join(sorted(markers[(run.business_date, e)] for e in run.entities if (run.business_date, e) in markers))
    for run in result.runs:
        # a whole table next to a recomputed partition is rebuilt in the same run: the dimensions
        # before the facts that key to them, the aggregates after the facts they sum
        if run.entities:
            selected = set(run.assets)
            run.assets = sorted(selected | {w for w, neighbours in whole.items() if neighbours & selected})
    return result


def _runs(instance, stale: dict[str, set[str]]) -> list[RecalcRun]:
    """Few runs: per date, entities with the same stale assets share a run (contiguous ranges)."""
    order = instance.get_dynamic_partitions(ENTITY_PARTITIONS)
    by_partition: dict[tuple[str, str], set[str]] = {}
    runs = []
    for asset, keys in stale.items():
        for pk in keys:
            if asset in DATE_LEVEL:
                runs.append(RecalcRun(pk, [asset], []))
                continue
            date, entity = pk.split("|", 1)
            by_partition.setdefault((date, entity), set()).add(asset)
    groups: dict[tuple[str, tuple[str, ...]], set[str]] = {}
    for (date, entity), assets in by_partition.items():
        groups.setdefault((date, tuple(sorted(assets))), set()).add(entity)
    for (date, assets), entities in sorted(groups.items()):
        for group in contiguous_groups(order, entities):
            runs.append(RecalcRun(date, list(assets), group))
    return sorted(runs, key=lambda r: (r.business_date, not r.entities, r.entities[:1], r.assets))

