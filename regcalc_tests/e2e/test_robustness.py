"""Issue 11, end to end: a careless or hostile delivery never loses an entity, never escapes
$REGCALC_HOME, never publishes a failed figure and never ends in a traceback.

One EOD of the golden delivery, made hostile: entities whose ids break the identifier rules
(one a path to a victim symlink outside the home), a balance of 1e30, and extra columns named
like internal ones or holding a backtick. The figures of the two real entities must still be
exactly expected_base.csv. Further checks run on that home: a rule producing inf, a bad date
folder, `recalc`. The cheap refusals (arguments, landing files) run no Dagster run at all.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from regcalc_cli.main import cli
from regcalc_tests.e2e.test_golden_pipeline import assert_matches, expected_rows

pytestmark = pytest.mark.slow
DATE = "2024-06-28"
# hostile entity ids: each gets one position (a copy of UK-0001 under a new id)
HOSTILE = ["LE,US", "LE US", "L\u00c9_FR", "LE/US", "LE\\US", "LE|US", "LE\x00US", "LE\nUS", "..", "L" * 300,
           "X" * 10_000]


def _hostile_landing(golden: Path, root: Path, victim: str) -> Path:
    """The golden parquet delivery with hostile entities, a 1e30 balance and unknown columns."""
    landing = root / "landing"
    shutil.copytree(golden / "landing", landing)
    folder = landing / f"business_date={DATE}"
    positions = pq.read_table(folder / "positions.parquet").to_pylist()
    template = positions[0]
    entities = HOSTILE + [victim]
    positions += [dict(template, position_id=f"HOSTILE-{i}", entity_id=e) for i, e in enumerate(entities)]
    positions.append(dict(template, position_id="UK-HUGE", balance=1e30))  # LE_UK, quarantined
    for row in positions:
        row["balance"] = None if row["balance"] is None else float(row["balance"])
        row["fx_rate"] = 0.0001  # named like the internal column: must change nothing
        row["we`ird \"col"] = "x"
    pq.write_table(pa.Table.from_pylist(positions), folder / "positions.parquet")
    ents = pq.read_table(folder / "entities.parquet").to_pylist()
    ents += [dict(ents[0], entity_id=e, parent_entity_id=None) for e in entities]
    pq.write_table(pa.Table.from_pylist(ents), folder / "entities.parquet")
    (landing / "business_date=2024-02-30").mkdir()  # not a date: skipped and reported, never fatal
    return landing


@pytest.fixture(scope="module")
def hostile_eod(golden, tmp_path_factory):
    """(home, landing, victim paths, eod result) after one EOD of the hostile delivery."""
    root = tmp_path_factory.mktemp("hostile")
    home = root / "a" / "b" / "c" / "home"
    victim_dir, victim_file = root / "VICTIM_DIR", root / "victim_file.txt"
    victim_dir.mkdir()
    (victim_dir / "keep.txt").write_text("precious")
    victim_file.write_text("precious")
    (root / "VICTIM_LINK").symlink_to(victim_dir)
    landing = _hostile_landing(golden, root, "../../../../../../../VICTIM_LINK")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REGCALC_HOME", str(home))
        for name in ("REGCALC_STORAGE_ROOT", "REGCALC_WAREHOUSE_PATH", "DAGSTER_HOME", "REGCALC_LANDING"):
            mp.delenv(name, raising=False)
        out = CliRunner().invoke(cli, ["eod", "--date", DATE, "--landing", str(landing)])
        yield home, landing, (victim_dir, victim_file), out


def _report(args=()):
    out = CliRunner().invoke(cli, ["report", "--date", DATE, "--format", "json", *args])
    assert out.exit_code == 0, out.output
    import json

    return json.loads(out.output[out.output.index("["):])


@pytest.fixture()
def in_home(hostile_eod, monkeypatch):
    home, landing, _, _ = hostile_eod
    monkeypatch.setenv("REGCALC_HOME", str(home))
    for name in ("REGCALC_STORAGE_ROOT", "REGCALC_WAREHOUSE_PATH", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REGCALC_LANDING", str(landing))
    return hostile_eod


def test_hostile_delivery_loses_nothing_and_escapes_nothing(golden, in_home):
    home, _, (victim_dir, victim_file), out = in_home
    assert out.exit_code == 0, out.output
    assert f"{len(HOSTILE) + 1} position(s) with a null or unknown entity_id quarantined" in out.output
    assert "ignored column(s) the landing-zone contract does not know: positions.parquet: 'fx_rate', 'we`ird \"col'" in out.output
    assert "12 entity_id(s) of the entities file are not valid identifiers" in out.output
    # the two real entities: exactly the golden figures, LE_UK with one more quarantined row (1e30)
    want = expected_rows(golden)
    want["LE_UK"] = dict(want["LE_UK"], positions_quarantined=str(int(want["LE_UK"]["positions_quarantined"]) + 1))
    assert_matches(_report(["--base"]), want)
    # nothing escaped the home: the victim directory, its link and the file are untouched
    assert (victim_dir / "keep.txt").read_text() == "precious" and victim_file.read_text() == "precious"
    assert (victim_dir.parent / "VICTIM_LINK").is_symlink() and not victim_file.is_symlink()
    # no invalid key was ever registered as a partition (a CheckError used to leave one for good)
    from regcalc_cli.instance import get_instance

    instance = get_instance()
    assert instance.get_dynamic_partitions("legal_entities") == ["LE_UK", "LE_US"]
    # the date-level reconciliation counted every delivered position, and passed
    import dagster as dg

    check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("unassigned_positions"), "every_delivered_position_accounted_for")])
    [record] = check.values()
    assert record.status.value == "SUCCEEDED"
    import duckdb

    stored = list((home / "storage" / "unassigned_positions").glob("business_date=*/*.parquet"))
    with duckdb.connect() as con:
        rules = con.execute("SELECT quarantine_rule, count(*) FROM read_parquet(?) GROUP BY 1",
                            [[str(p) for p in stored]]).fetchall()
    assert rules == [("entity_id:invalid_identifier", len(HOSTILE) + 1)]


def test_a_lost_entity_partition_fails_the_date_reconciliation(in_home):
    """The reconciliation counts every delivered entity: if a stage lost one, it fails naming it."""
    from regcalc_assets.definitions import build_definitions
    from regcalc_cli.instance import get_instance

    home = in_home[0]
    link = home / "storage" / "validated_positions" / f"business_date={DATE}" / "entity_id=LE_US"
    target = link.readlink()
    link.unlink()
    try:
        result = build_definitions().resolve_job_def("unassigned_positions_job").execute_in_process(
            instance=get_instance(), partition_key=DATE, raise_on_error=False)
        [evaluation] = result.get_asset_check_evaluations()
        assert not evaluation.passed
        assert evaluation.metadata["summary"].value.startswith("no stored partition for entity LE_US")
    finally:
        link.symlink_to(target)


def test_bad_date_folder_is_skipped_and_reported_by_recalc(in_home):
    out = CliRunner().invoke(cli, ["recalc"])
    assert out.exit_code == 0, out.output
    assert "skipped" in out.output and "business_date=2024-02-30: not a valid business date folder" in out.output


def test_a_non_finite_figure_fails_the_eod_and_reaches_no_warehouse(in_home, tmp_path):
    """A final rule multiplying hqla by 1e308 twice gives inf: the metrics contract (blocking)
    fails, the EOD fails, and the warehouse keeps the figures of the last good run."""
    before = _report()
    rules = tmp_path / "inf.yaml"
    rules.write_text(
        "rule_id: INF_1\nstage: final_calc\ndescription: overflow\npriority: 1\n"
        "conditions: [{field: entity_id, operator: '==', value: LE_UK}]\n"
        "adjustments: [{field: hqla, operation: multiply, value: 1.0e+308}, {field: hqla, operation: multiply, value: 1.0e+308}]\n"
        "effective_date: 2024-01-01\n")
    runner = CliRunner()
    assert runner.invoke(cli, ["rules", "submit", str(rules), "--as-user-unverified", "--user", "analyst_a"]).exit_code == 0
    assert runner.invoke(cli, ["rules", "approve", "INF_1", "--as-user-unverified", "--user", "risk_admin"]).exit_code == 0
    try:
        out = runner.invoke(cli, ["eod", "--date", DATE])
        assert out.exit_code == 1, out.output
        assert "FAILED" in out.output and "liquidity_metrics" in out.output
        after = _report()
        assert after == before, "nothing of the failed date reached the warehouse"
        assert all(r["hqla"] != float("inf") for r in after)
    finally:
        assert runner.invoke(cli, ["rules", "retire", "INF_1", "--as-user-unverified", "--user", "analyst_a"]).exit_code == 0
        assert runner.invoke(cli, ["rules", "approve", "INF_1", "--as-user-unverified", "--user", "risk_admin"]).exit_code == 0


def test_invalid_entity_argument_registers_nothing(regcalc_home, golden):
    for entity in ("LE|US", "../x", "LE\nUS", "L" * 300):
        out = CliRunner().invoke(cli, ["eod", "--date", DATE, "--landing", str(golden / "landing"), "--entity", entity])
        assert out.exit_code == 2, out.output
        assert "is not a valid identifier" in out.output and "Traceback" not in out.output
    from regcalc_cli.instance import get_instance

    assert get_instance().get_dynamic_partitions("legal_entities") == []


def test_bad_landing_input_is_one_line_and_exit_2(regcalc_home, golden, tmp_path):
    """Each refused before any run: the file and the column named, no generated SQL, no trace."""
    runner = CliRunner()

    def eod(landing, date=DATE):
        out = runner.invoke(cli, ["eod", "--date", date, "--landing", str(landing)])
        assert out.exit_code == 2, out.output
        assert "Traceback" not in out.output and "SELECT" not in out.output
        return out.output

    def broken(name: str, fmt: str = "parquet") -> Path:
        landing = tmp_path / name
        shutil.copytree(golden / ("landing" if fmt == "parquet" else "landing_csv"), landing)
        return landing

    folder = f"business_date={DATE}"
    missing = broken("missing")
    table = pq.read_table(missing / folder / "positions.parquet").drop(["currency"])
    pq.write_table(table, missing / folder / "positions.parquet")
    assert f"landing file {missing / folder / 'positions.parquet'} lacks required column(s) currency" in eod(missing)

    semicolon = broken("semicolon", "csv")
    path = semicolon / folder / "fx_rates.csv"
    path.write_text(path.read_text().replace(",", ";"))
    assert "fx_rates.csv lacks required column(s) currency, usd_per_unit (the header is one column" in eod(semicolon)

    truncated = broken("truncated")
    data = (truncated / folder / "prices.parquet").read_bytes()
    (truncated / folder / "prices.parquet").write_bytes(data[: len(data) // 2])
    assert f"cannot read landing file {truncated / folder / 'prices.parquet'}" in eod(truncated)

    empty = broken("empty")
    (empty / folder / "securities.parquet").write_bytes(b"")
    assert f"cannot read landing file {empty / folder / 'securities.parquet'}" in eod(empty)

    a_file = tmp_path / "landing-file"
    a_file.write_text("not a directory")
    assert "is a file, not a directory" in eod(a_file)

    assert "outside the business dates the pipeline covers" in eod(golden / "landing", "2019-12-31")
    assert "outside the business dates the pipeline covers" in eod(golden / "landing", "2999-01-01")
    assert "is not a date" in eod(golden / "landing", "2024-02-30")
    from regcalc_cli.instance import get_instance

    assert get_instance().get_runs_count() == 0, "nothing ran"
