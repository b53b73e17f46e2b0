"""OpenLineage events for asset materializations, so an external catalogue (e.g. Marquez) sees regcalc's lineage.

Each materialization becomes one OpenLineage run of the job named after the asset: a START and a COMPLETE
``RunEvent`` sharing a run id derived from (Dagster run id, asset). The events carry the upstream assets as
inputs, and the asset as output with its schema, column lineage and row count; the Dagster run id and the
partition keys are in the run's ``dagster`` facet (with the Dagster job name).

``FileLineageEventSink`` appends newline-delimited JSON under ``$REGCALC_HOME`` (the default),
``HttpLineageEventSink`` posts to an OpenLineage HTTP endpoint (``OPENLINEAGE_URL``), ``NoLineageEventSink``
emits nothing (``REGCALC_OPENLINEAGE=off``). Emission never fails a materialization: errors are logged as
warnings, secrets masked. An event that would carry a secret of the environment (``regcalc_core.redaction``)
is not sent at all. The ``openlineage`` package is imported lazily, when an event is emitted.
"""

from __future__ import annotations

import functools
import logging
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dagster as dg

from regcalc_resources import settings

log = logging.getLogger(__name__)

PRODUCER = "https://github.com/regcalc/regcalc"
DAGSTER_FACET_SCHEMA = f"{PRODUCER}/spec/DagsterRunFacet.json#/$defs/DagsterRunFacet"
# a failed post is retried twice (about one second of back-off): lineage must not hold up the run for long
HTTP_RETRY = {"total": 2, "connect": 2, "read": 2, "backoff_factor": 0.5,
              "status_forcelist": [500, 502, 503, 504], "allowed_methods": ["POST"]}


def lineage_run_id(run_id: str, asset: str) -> str:
    """The OpenLineage run id of one asset's materialization in one Dagster run (uuid5, deterministic)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{PRODUCER}/runs/{run_id}/assets/{asset}"))


@functools.cache
def _dagster_run_facet() -> type:
    """The custom ``dagster`` run facet class (built on first use, so importing this module stays cheap)."""
    import attr
    from openlineage.client.facet_v2 import RunFacet

    @attr.define
    class DagsterRunFacet(RunFacet):
        """The Dagster job and run, and the partition keys materialized in it."""

        jobName: str  # noqa: N815
        runId: str  # noqa: N815
        assetKey: str  # noqa: N815
        partitionKeys: list[str] = attr.field(factory=list)  # noqa: N815

        @staticmethod
        def _get_schema() -> str:
            return DAGSTER_FACET_SCHEMA

    return DagsterRunFacet


def _iso(t: datetime) -> str:
    """ISO 8601 with an offset (naive times are taken as UTC)."""
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).isoformat()


class SecretInEventError(RuntimeError):
    """An OpenLineage event that would carry a secret of the environment (it is not sent)."""


def _refuse_secrets(events: list[Any]) -> None:
    """Raise ``SecretInEventError`` if the serialized events hold a secret of the environment or a
    URL with a password (``regcalc_core.redaction.contains_secret``): an event is sent whole or not
    at all."""
    from openlineage.client.serde import Serde

    from regcalc_core.redaction import contains_secret

    for event in events:
        if contains_secret(Serde.to_json(event)):
            raise SecretInEventError(f"an event of run {event.run.runId} would carry a secret; none was sent")


class LineageEventSink(dg.ConfigurableResource):
    """Interface: where OpenLineage events for materializations go."""

    namespace: str = "regcalc"

    def emit_materialization(self, *, job_name: str, run_id: str, asset: str, inputs: list[str],
                             partitions: list[str], fields: list[tuple[str, str]],
                             column_lineage: dict[str, list[tuple[str, str]]], row_count: int | None,
                             started_at: datetime, ended_at: datetime) -> int:
        """Emit START (at ``started_at``) and COMPLETE (at ``ended_at``) for one materialization of ``asset``
        in Dagster run ``run_id`` of ``job_name``; returns the number of events emitted (0 on any error)."""
        from regcalc_core.redaction import redact

        try:
            events = self._events(job_name=job_name, run_id=run_id, asset=asset, inputs=inputs,
                                  partitions=partitions, fields=fields, column_lineage=column_lineage,
                                  row_count=row_count, started_at=started_at, ended_at=ended_at)
            _refuse_secrets(events)
            return self._send(events)
        except Exception as exc:  # noqa: BLE001 - lineage must never fail the materialization
            log.warning("OpenLineage events for asset %s were not emitted: %s: %s", asset,
                        type(exc).__name__, redact(str(exc)))
            return 0

    def _send(self, events: list[Any]) -> int:
        """Deliver the events in order; raises on the first failure."""
        raise NotImplementedError

    def _events(self, *, job_name: str, run_id: str, asset: str, inputs: list[str], partitions: list[str],
                fields: list[tuple[str, str]], column_lineage: dict[str, list[tuple[str, str]]],
                row_count: int | None, started_at: datetime, ended_at: datetime) -> list[Any]:
        """The START and COMPLETE ``RunEvent`` of one materialization."""
        import openlineage.client as ol_client
        from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
        from openlineage.client.facet_v2 import (
            column_lineage_dataset as cl,
            job_type_job,
            output_statistics_output_dataset as stats,
            processing_engine_run,
            schema_dataset,
        )

        ns, p = self.namespace, PRODUCER
        run = Run(runId=lineage_run_id(run_id, asset), facets={
            "dagster": _dagster_run_facet()(producer=p, jobName=job_name, runId=run_id, assetKey=asset,
                                            partitionKeys=list(partitions)),
            "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
                producer=p, version=dg.__version__, name="Dagster",
                openlineageAdapterVersion=getattr(ol_client, "__version__", None)),
        })
        job = Job(namespace=ns, name=asset, facets={
            "jobType": job_type_job.JobTypeJobFacet(producer=p, processingType="BATCH", integration="DAGSTER",
                                                   jobType="ASSET"),
        })
        facets: dict[str, Any] = {
            "schema": schema_dataset.SchemaDatasetFacet(
                producer=p, fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in fields]),
            "columnLineage": cl.ColumnLineageDatasetFacet(producer=p, fields={
                column: cl.Fields(inputFields=[cl.InputField(namespace=ns, name=a, field=c) for a, c in sources])
                for column, sources in column_lineage.items() if sources}),
        }
        output_facets: dict[str, Any] = {}
        if row_count is not None:
            output_facets["outputStatistics"] = stats.OutputStatisticsOutputDatasetFacet(producer=p,
                                                                                        rowCount=row_count)
        ins = [InputDataset(namespace=ns, name=name) for name in inputs]
        out = [OutputDataset(namespace=ns, name=asset, facets=facets, outputFacets=output_facets)]
        return [RunEvent(eventType=state, eventTime=_iso(t), run=run, job=job, inputs=ins, outputs=out, producer=p)
                for state, t in ((RunState.START, started_at), (RunState.COMPLETE, ended_at))]


class FileLineageEventSink(LineageEventSink):
    """Appends one JSON event per line to ``path`` (newline-delimited JSON)."""

    path: str

    def _send(self, events: list[Any]) -> int:
        from openlineage.client.transport.file import FileConfig, FileTransport

        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        transport = FileTransport(FileConfig(log_file_path=self.path, append=True))
        for event in events:
            transport.emit(event)
        return len(events)


class HttpLineageEventSink(LineageEventSink):
    """Posts each event to ``url``/``endpoint`` (an OpenLineage HTTP API such as Marquez's).
    ``api_key``, if set, is sent as a bearer token."""

    url: str
    endpoint: str = "api/v1/lineage"
    api_key: str | None = None
    timeout_seconds: float = 5.0

    def _send(self, events: list[Any]) -> int:
        from openlineage.client.transport.http import (
            ApiKeyTokenProvider,
            HttpConfig,
            HttpTransport,
            TokenProvider,
        )

        auth = ApiKeyTokenProvider({"apiKey": self.api_key}) if self.api_key else TokenProvider({})
        transport = HttpTransport(HttpConfig(url=self.url, endpoint=self.endpoint, timeout=self.timeout_seconds,
                                             auth=auth, retry=dict(HTTP_RETRY)))
        try:
            for event in events:
                transport.emit(event)
        finally:
            transport.close()
        return len(events)


class NoLineageEventSink(LineageEventSink):
    """Emits nothing (``REGCALC_OPENLINEAGE=off``)."""

    def emit_materialization(self, **kwargs: Any) -> int:  # type: ignore[override]
        """Emit nothing; returns 0."""
        return 0


def build_lineage_sink() -> LineageEventSink:
    """``REGCALC_OPENLINEAGE=off``: none; ``OPENLINEAGE_URL`` set: HTTP (``OPENLINEAGE_ENDPOINT``,
    ``OPENLINEAGE_API_KEY``); otherwise a file, ``$REGCALC_HOME/openlineage/events.ndjson``."""
    if os.environ.get("REGCALC_OPENLINEAGE", "").lower() == "off":
        return NoLineageEventSink()
    if os.environ.get("OPENLINEAGE_URL"):
        return HttpLineageEventSink(
            url=dg.EnvVar("OPENLINEAGE_URL"),
            endpoint=os.environ.get("OPENLINEAGE_ENDPOINT", "api/v1/lineage"),
            api_key=dg.EnvVar("OPENLINEAGE_API_KEY") if os.environ.get("OPENLINEAGE_API_KEY") else None,
        )
    return FileLineageEventSink(path=str(settings.regcalc_home() / "openlineage" / "events.ndjson"))
