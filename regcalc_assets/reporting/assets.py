"""The reporting layer as Dagster assets: every model, seed and test of the dbt project
(``logic.PROJECT_DIR``) through dagster-dbt, partitioned like the stages (business date x
entity) and built by one ``dbt build`` per run with the run's date and entities as ``--vars``.
dbt's data and unit tests are asset checks: a failing one fails the build of what it tests and
skips what depends on it. The star tables are the dbt sources, all produced by ``warehouse_star``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from regcalc_assets.partitions import DATE_ENTITY, run_scope
from regcalc_assets.reporting.logic import PROJECT_DIR, build_vars, dbt_executable, manifest_path

GROUP = "reporting"


class ReportingTranslator(DagsterDbtTranslator):
    """Models and seeds keep their dbt names as asset keys, in the ``reporting`` group; every star
    table the project reads is the output of ``warehouse_star``."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey("warehouse_star")
        return dg.AssetKey(dbt_resource_props["name"])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return GROUP

    def get_description(self, dbt_resource_props: Mapping[str, Any]) -> str:
        return dbt_resource_props.get("description") or super().get_description(dbt_resource_props)


TRANSLATOR = ReportingTranslator(settings=DagsterDbtTranslatorSettings(enable_duplicate_source_asset_keys=True))


@contextlib.contextmanager
def _environ(values: dict[str, str]):
    """These variables in this process's environment while a dbt process is started (dagster-dbt
    passes the environment on); the previous values are restored at once."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _LogLines:
    """A text stream whose lines go to a Dagster log at debug level, secrets masked (dbt runs with
    the warehouse password in its environment)."""

    def __init__(self, log):
        self.log, self.pending = log, ""

    def write(self, text: str) -> int:
        from regcalc_core.redaction import redact

        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            if line.strip():
                self.log.debug(redact(line))
        return len(text)

    def flush(self) -> None:
        pass


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=str(PROJECT_DIR), profiles_dir=str(PROJECT_DIR), dbt_executable=dbt_executable())


@lru_cache(maxsize=1)
def reporting_assets() -> dg.AssetsDefinition:
    """The dbt project's assets (parsing the project on first use of a new version)."""

    @dbt_assets(manifest=manifest_path(), partitions_def=DATE_ENTITY, dagster_dbt_translator=TRANSLATOR,
                name="reporting_models", required_resource_keys={"warehouse", "dbt"})
    def reporting_models(context):  # (no annotation: Dagster reads it before postponed hints resolve)
        """The reporting layer: staging views over the star tables (one row per star row),
        daily marts (one row per business date x entity: mart_lcr_daily, mart_nsfr_daily; one row
        per date x entity x template row x bucket: mart_disclosure_lines_daily), aggregates (one
        row per entity x month-end / quarter) and the disclosures (one row per template x entity x
        quarter x row x column). The run's partitions are replaced; the aggregates and the
        disclosures are rebuilt from every stored date."""
        from regcalc_resources.settings import regcalc_home

        business_date, entities = run_scope(context)
        warehouse = context.resources.warehouse
        target = regcalc_home() / "dbt" / "runs" / context.run.run_id
        with _environ(warehouse.dbt_profile_env()):
            invocation = context.resources.dbt.cli(["build", "--vars", build_vars(business_date, entities)], context=context,
                                 target_path=target)
        events, sink = invocation.stream(), _LogLines(context.log)
        while True:  # dagster-dbt echoes dbt's log to stdout: into the run's (debug) log instead
            with contextlib.redirect_stdout(sink):
                event = next(events, None)
            if event is None:
                break
            yield event
        shutil.rmtree(target, ignore_errors=True)  # dbt's artifacts of a successful build

    return reporting_models
