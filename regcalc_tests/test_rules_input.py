"""Bad rule files and bad moments on the command line (issue 11, items 10 and 11): one line naming
the culprit, exit code 2, no trace, nothing stored; a UTC offset is converted, not dropped.

The commands run in-process through click's CliRunner against a fresh $REGCALC_HOME."""

import datetime as dt
import time

import dagster as dg
import pytest
from click.testing import CliRunner

from regcalc_cli.main import cli
from regcalc_resources.rule_store import DuckDBRuleStore, RuleStore

RULE = {"rule_id": "TZ_1", "stage": "aggregation", "effective_date": "2024-01-01",
        "adjustments": [{"field": "amount", "operation": "multiply", "value": 1.1}]}


@pytest.fixture()
def home(regcalc_home, monkeypatch, tmp_path):
    """A fresh $REGCALC_HOME; DAGSTER_HOME (set by the CLI's get_instance) is restored afterwards."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "unused-dagster-home"))
    monkeypatch.setenv("REGCALC_ENGINE", "duckdb")
    return regcalc_home


def invoke(*args):
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def assert_one_line_error(code, stderr, *fragments):
    lines = stderr.strip().splitlines()
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def store_of(home) -> DuckDBRuleStore:
    return DuckDBRuleStore(path=str(home / "rules.duckdb"))


# -- item 10: time zones ---------------------------------------------------------------------

def approved_at(home) -> dt.datetime:
    """Submit and approve RULE; the moment of approval as the store keeps it (naive UTC)."""
    store = store_of(home)
    store.submit([RULE], "analyst_a")
    store.approve("TZ_1", "risk_admin")
    [version] = store.history("TZ_1")
    return version.approved_at


def with_offset(utc: dt.datetime, hours: int) -> str:
    """The same moment written in local time at UTC+``hours``, with its offset."""
    zone = dt.timezone(dt.timedelta(hours=hours))
    return utc.replace(tzinfo=dt.timezone.utc).astimezone(zone).isoformat()


@pytest.mark.parametrize("hours", [2, -5])
def test_rules_list_as_of_converts_the_offset_to_utc(home, hours):
    """A moment one minute after the approval is in force and one minute before is not, however
    the offset is written (dropping it would move +02:00 two hours late and -05:00 five early)."""
    approval = approved_at(home)
    after, before = approval + dt.timedelta(minutes=1), approval - dt.timedelta(minutes=1)
    code, out, err = invoke("rules", "list", "--as-of", with_offset(after, hours))
    assert code == 0, err
    assert "TZ_1  v1  aggregation" in out
    code, out, err = invoke("rules", "list", "--as-of", with_offset(before, hours))
    assert code == 0, err
    assert "TZ_1" not in out


def test_run_tag_as_of_converts_the_offset_to_utc(home):
    """The regcalc/rules_as_of tag of a real Dagster run is read as the moment it names."""
    from regcalc_assets.sources.versions import AS_OF_TAG, rules_for_run

    approval = approved_at(home)

    @dg.asset
    def in_force(context: dg.AssetExecutionContext, rules: RuleStore) -> list[str]:
        found, meta = rules_for_run(context, rules, "aggregation")
        context.add_output_metadata(meta)
        return [r.rule_id for r in found]

    def applied(moment: dt.datetime, hours: int) -> list[str]:
        result = dg.materialize([in_force], resources={"rules": store_of(home)},
                                tags={AS_OF_TAG: with_offset(moment, hours)})
        return result.output_for_node("in_force")

    assert applied(approval + dt.timedelta(minutes=1), 2) == ["TZ_1"]
    assert applied(approval - dt.timedelta(minutes=1), 2) == []
    assert applied(approval + dt.timedelta(minutes=1), -5) == ["TZ_1"]


def test_rules_list_as_of_garbage_is_one_line(home):
    code, _, err = invoke("rules", "list", "--as-of", "garbage")
    assert_one_line_error(code, err, "--as-of", "'garbage'")


def test_eod_rules_as_of_garbage_fails_before_any_stage_work(home, golden):
    started = time.perf_counter()
    code, _, err = invoke("eod", "--date", "2024-06-28", "--landing", str(golden / "landing"),
                          "--rules-as-of", "garbage")
    assert_one_line_error(code, err, "--rules-as-of", "'garbage'")
    assert time.perf_counter() - started < 5
    assert not (home / "storage").exists(), "no stage wrote anything"
    if (home / "dagster").exists():  # the instance, if created at all, holds no run
        from regcalc_cli.instance import get_instance

        assert get_instance().get_runs() == []


# -- item 11: rule files ---------------------------------------------------------------------

BAD_FILES = {
    "empty.yaml": (b"", ["is empty"]),
    "blank.yaml": (b"# only a comment\n\n", ["is empty"]),
    "scalar.yaml": (b"just some text\n", ["holds a str"]),
    "strings.yaml": (b"- ADJ_1\n- ADJ_2\n", ["item 1 is a str", "'ADJ_1'"]),
    "bad_date.yaml": (b"rule_id: BAD_DATE\nstage: aggregation\neffective_date: 2024-02-30\n"
                      b"adjustments: [{field: amount, operation: multiply, value: 2}]\n",
                      ["rule BAD_DATE", "effective_date", "2024-02-30"]),
    "bad_expiry.json": (b'{"rule_id": "BAD_EXP", "stage": "final_calc", "effective_date": "2024-01-01",'
                        b' "expiry_date": "2024-13-01", "adjustments": [{"field": "hqla", "operation": "add", "value": 1}]}',
                        ["rule BAD_EXP", "expiry_date", "2024-13-01"]),
    "image.yaml": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(range(256)), ["not a text"]),
    "random.yaml": (bytes((i * 151 + 7) % 256 for i in range(2048)), ["not a text"]),
    "nul.yaml": (b"rule_id: X\x00\x00\n", ["NUL"]),
    "broken.yaml": (b"rule_id: [unclosed\n", ["not valid YAML", "line"]),
    "broken.json": (b'{"rule_id": ', ["not valid JSON", "line 1"]),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
@pytest.mark.parametrize("command", [["submit", "--as-user-unverified", "--user", "analyst_a"], ["preview"]], ids=["submit", "preview"])
def test_a_bad_rule_file_is_one_line_naming_it_and_stores_nothing(home, tmp_path, name, command):
    content, fragments = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(content)
    code, out, err = invoke("rules", command[0], str(path), *command[1:])
    assert_one_line_error(code, err, str(path), *fragments)
    assert store_of(home).rule_ids() == [], "nothing of the file is stored"


def test_a_good_file_still_submits_and_dates_stay_dates(home, tmp_path, golden):
    path = tmp_path / "rules.yaml"
    path.write_text((golden / "rules.yaml").read_text())
    code, out, err = invoke("rules", "submit", str(path), "--as-user-unverified", "--user", "analyst_a")
    assert code == 0, err
    assert out.count("awaiting approval") == 3
    [version] = store_of(home).history("ADJ_2024_001")
    assert version.body["effective_date"] == "2024-01-15" and version.body["expiry_date"] == "2024-12-31"


def test_governance_refusals_are_one_line_with_exit_2(home, tmp_path):
    path = tmp_path / "rule.yaml"
    path.write_text("rule_id: TZ_1\nstage: aggregation\neffective_date: 2024-01-01\n"
                    "adjustments: [{field: amount, operation: multiply, value: 2}]\n")
    assert invoke("rules", "submit", str(path), "--as-user-unverified", "--user", "analyst_a")[0] == 0
    code, _, err = invoke("rules", "approve", "TZ_1", "--as-user-unverified", "--user", "analyst_a")
    assert_one_line_error(code, err, "cannot approve")
    code, _, err = invoke("rules", "history", "NOPE")
    assert_one_line_error(code, err, "no rule NOPE")
    code, _, err = invoke("rules", "preview", "NOPE")
    assert_one_line_error(code, err, "no rule NOPE")
