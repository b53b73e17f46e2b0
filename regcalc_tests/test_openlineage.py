"""OpenLineage sinks: the events written to a file and posted over HTTP, failure tolerance, selection by env."""

from __future__ import annotations

import json
import logging
import socket
import threading
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from regcalc_resources.openlineage import (
    FileLineageEventSink,
    HttpLineageEventSink,
    NoLineageEventSink,
    build_lineage_sink,
)

START = datetime(2024, 1, 16, 6, 0, 0, tzinfo=timezone.utc)
END = datetime(2024, 1, 16, 6, 0, 42, 500000, tzinfo=timezone.utc)


def _materialize(sink, asset="liquidity_components", run_id="dagster-run-1") -> int:
    return sink.emit_materialization(
        job_name="eod", run_id=run_id, asset=asset, inputs=["component_breakdown", "entity_profiles"],
        partitions=["2024-01-15|LE_UK"], fields=[("business_date", "date"), ("amount", "double")],
        column_lineage={"amount": [("component_breakdown", "amount")]}, row_count=16,
        started_at=START, ended_at=END)


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_file_sink_writes_start_and_complete_as_ndjson(tmp_path):
    path = tmp_path / "deep" / "dir" / "events.ndjson"  # parent directories do not exist yet
    sink = FileLineageEventSink(path=str(path))

    assert _materialize(sink) == 2
    start, complete = _lines(path)
    assert len(path.read_text().splitlines()) == 2
    assert [start["eventType"], complete["eventType"]] == ["START", "COMPLETE"]
    assert start["eventTime"] == "2024-01-16T06:00:00+00:00"
    assert complete["eventTime"] == "2024-01-16T06:00:42.500000+00:00"
    assert start["run"]["runId"] == complete["run"]["runId"]
    assert uuid.UUID(complete["run"]["runId"]).version == 5
    assert complete["producer"] == "https://github.com/regcalc/regcalc"

    assert complete["job"]["namespace"] == "regcalc"
    assert complete["job"]["name"] == "liquidity_components"
    assert complete["job"]["facets"]["jobType"]["integration"] == "DAGSTER"
    assert complete["job"]["facets"]["jobType"]["processingType"] == "BATCH"
    assert [(i["namespace"], i["name"]) for i in complete["inputs"]] == [
        ("regcalc", "component_breakdown"), ("regcalc", "entity_profiles")]

    [output] = complete["outputs"]
    assert (output["namespace"], output["name"]) == ("regcalc", "liquidity_components")
    assert [(f["name"], f["type"]) for f in output["facets"]["schema"]["fields"]] == [
        ("business_date", "date"), ("amount", "double")]
    lineage = output["facets"]["columnLineage"]["fields"]
    assert set(lineage) == {"amount"}  # business_date has no entry, so it is left out
    assert [(f["namespace"], f["name"], f["field"]) for f in lineage["amount"]["inputFields"]] == [
        ("regcalc", "component_breakdown", "amount")]
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == 16

    dagster = complete["run"]["facets"]["dagster"]
    assert dagster["partitionKeys"] == ["2024-01-15|LE_UK"]
    assert dagster["runId"] == "dagster-run-1"
    assert dagster["jobName"] == "eod"
    assert "2024-01-15|LE_UK" in path.read_text().splitlines()[0]  # in START too

    # a second materialization appends; same (run, asset) gives the same run id, another asset another
    assert _materialize(sink) == 2
    assert _materialize(sink, asset="liquidity_metrics") == 2
    events = _lines(path)
    assert len(events) == 6
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"] * 3
    assert events[2]["run"]["runId"] == start["run"]["runId"]
    assert events[4]["run"]["runId"] != start["run"]["runId"]
    assert events[5]["job"]["name"] == "liquidity_metrics"


def test_row_count_none_leaves_out_output_statistics(tmp_path):
    path = tmp_path / "events.ndjson"
    n = FileLineageEventSink(path=str(path)).emit_materialization(
        job_name="eod", run_id="r", asset="a", inputs=[], partitions=[], fields=[], column_lineage={},
        row_count=None, started_at=START, ended_at=START + timedelta(seconds=1))
    assert n == 2
    assert "outputStatistics" not in _lines(path)[1]["outputs"][0].get("outputFacets", {})


class _Recorder(BaseHTTPRequestHandler):
    requests: list[tuple[str, dict, dict]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.requests.append((self.path, dict(self.headers), json.loads(body)))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def lineage_server(monkeypatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    handler = type("Handler", (_Recorder,), {"requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler.requests
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.parametrize("api_key", [None, "s3cret-key"])
def test_http_sink_posts_both_events(lineage_server, api_key):
    url, received = lineage_server
    assert _materialize(HttpLineageEventSink(url=url, api_key=api_key)) == 2

    assert [path for path, _, _ in received] == ["/api/v1/lineage", "/api/v1/lineage"]
    assert [body["eventType"] for _, _, body in received] == ["START", "COMPLETE"]
    assert received[1][2]["job"]["name"] == "liquidity_components"
    assert received[0][2]["run"]["runId"] == received[1][2]["run"]["runId"]
    for _, headers, _ in received:
        assert headers["Content-Type"] == "application/json"
        if api_key:
            assert headers["Authorization"] == "Bearer s3cret-key"
        else:
            assert "Authorization" not in headers


def test_http_sink_custom_endpoint(lineage_server):
    url, received = lineage_server
    assert _materialize(HttpLineageEventSink(url=url, endpoint="lineage/v2")) == 2
    assert [path for path, _, _ in received] == ["/lineage/v2", "/lineage/v2"]


def test_unreachable_endpoint_warns_and_returns_zero(caplog):
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = HttpLineageEventSink(url=f"http://127.0.0.1:{port}", api_key="never-logged", timeout_seconds=1.0)
    with caplog.at_level(logging.WARNING, logger="regcalc_resources.openlineage"):
        assert _materialize(sink) == 0
    warnings = [r for r in caplog.records if r.name == "regcalc_resources.openlineage"]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "liquidity_components" in warnings[0].getMessage()
    assert "never-logged" not in caplog.text


def test_unwritable_file_warns_and_returns_zero(tmp_path, caplog):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    with caplog.at_level(logging.WARNING, logger="regcalc_resources.openlineage"):
        assert _materialize(FileLineageEventSink(path=str(blocker / "events.ndjson"))) == 0
    assert "liquidity_components" in caplog.text


def test_an_event_carrying_a_secret_is_not_sent_and_the_warning_masks_it(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("AWS_SESSION_TOKEN", "LeakedSessionTok3n")
    path = tmp_path / "events.ndjson"
    with caplog.at_level(logging.WARNING, logger="regcalc_resources.openlineage"):
        sent = FileLineageEventSink(path=str(path)).emit_materialization(
            job_name="eod", run_id="dagster-run-1", asset="liquidity_components", inputs=[],
            partitions=["2024-01-15|LeakedSessionTok3n"], fields=[], column_lineage={}, row_count=None,
            started_at=START, ended_at=END)
    assert sent == 0 and not path.exists()
    assert "SecretInEventError" in caplog.text and "LeakedSessionTok3n" not in caplog.text


def test_no_sink_emits_nothing(tmp_path):
    assert _materialize(NoLineageEventSink()) == 0


@pytest.fixture
def lineage_env(monkeypatch, tmp_path):
    monkeypatch.setenv("REGCALC_HOME", str(tmp_path))
    for var in ("REGCALC_OPENLINEAGE", "OPENLINEAGE_URL", "OPENLINEAGE_ENDPOINT", "OPENLINEAGE_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_build_lineage_sink_defaults_to_file_under_home(lineage_env, tmp_path):
    sink = build_lineage_sink()
    assert type(sink) is FileLineageEventSink
    assert sink.path == str(tmp_path / "openlineage" / "events.ndjson")


def test_build_lineage_sink_off(lineage_env):
    lineage_env.setenv("REGCALC_OPENLINEAGE", "off")
    lineage_env.setenv("OPENLINEAGE_URL", "http://marquez:5000")  # off wins
    assert type(build_lineage_sink()) is NoLineageEventSink


def test_build_lineage_sink_http(lineage_env):
    import dagster as dg

    lineage_env.setenv("OPENLINEAGE_URL", "http://marquez:5000")
    sink = build_lineage_sink()
    assert type(sink) is HttpLineageEventSink
    assert isinstance(sink.url, dg.EnvVar) and sink.url == "OPENLINEAGE_URL"  # resolved by Dagster, not now
    assert sink.endpoint == "api/v1/lineage"
    assert sink.api_key is None

    lineage_env.setenv("OPENLINEAGE_ENDPOINT", "api/v2/lineage")
    lineage_env.setenv("OPENLINEAGE_API_KEY", "k")
    sink = build_lineage_sink()
    assert sink.endpoint == "api/v2/lineage"
    assert isinstance(sink.api_key, dg.EnvVar) and sink.api_key == "OPENLINEAGE_API_KEY"
