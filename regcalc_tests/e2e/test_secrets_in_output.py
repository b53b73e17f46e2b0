"""No DSN password, AWS key or token in anything a run or a command writes (issue 16, section 4).

Recognizable secrets in the environment, well-formed and malformed DSNs for the warehouse, the rule
store and Redshift, AWS keys and an OpenLineage key; real ``regcalc`` commands (EODs in their own
process, as a user runs them, and quicker commands in this one); then every byte under
``$REGCALC_HOME`` (SQLite run and index databases, compute logs, stage storage, OpenLineage events,
dbt's run directories) and everything printed is searched for each secret.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from regcalc_tests.conftest import REPO

pytestmark = pytest.mark.slow
DATE = "2024-06-28"
AWS = {"AWS_ACCESS_KEY_ID": "AKIAPROBEKEYID000001", "AWS_SECRET_ACCESS_KEY": "aws/Probe+SecretKey0123456789",
       "AWS_SESSION_TOKEN": "FwoGProbeSessionToken0123456789", "OPENLINEAGE_API_KEY": "ol-probe-api-key-0123"}
AWS_SECRETS = ["Probe+SecretKey0123456789", "FwoGProbeSessionToken0123456789", "ol-probe-api-key-0123"]
UNSET = ("REGCALC_WAREHOUSE_DSN", "REGCALC_REDSHIFT_DSN", "REGCALC_RULES_DSN", "REGCALC_STORAGE_ROOT",
         "REGCALC_WAREHOUSE_PATH", "DAGSTER_HOME", "OPENLINEAGE_URL", "REGCALC_LANDING", "REGCALC_DEBUG")


def leaks(home: Path, printed: list[str], secrets: list[str]) -> list[str]:
    """Every (place, secret) where a secret occurs: each file under ``home`` read as bytes, and
    each printed text."""
    found = []
    for path in sorted(p for p in home.rglob("*") if p.is_file() and not p.is_symlink()):
        data = path.read_bytes()
        found += [f"{path.relative_to(home)}: {s}" for s in secrets if s.encode() in data]
    for number, text in enumerate(printed):
        found += [f"output {number}: {s}" for s in secrets if s in text]
    return found


def written(home: Path) -> dict[str, int]:
    """How many files of each kind the runs wrote (proof that the search covered them)."""
    files = [p for p in home.rglob("*") if p.is_file()]
    return {"compute_logs": sum("compute_logs" in p.parts for p in files),
            "run_databases": sum(p.suffix == ".db" for p in files),
            "lineage_events": sum(p.name == "events.ndjson" for p in files)}


def regcalc(home: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """``regcalc ARGS`` in its own process with ``env`` over a clean environment."""
    base = {k: v for k, v in os.environ.items() if k not in UNSET and not k.startswith("AWS_")}
    return subprocess.run([sys.executable, "-m", "regcalc_cli.main", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600,
                          env={**base, "REGCALC_HOME": str(home), "REGCALC_ENGINE": "duckdb", **env})


def test_a_misspelled_warehouse_dsn_keeps_its_password_out_of_every_output(golden, tmp_path):
    """The issue's case: ``postgresq://`` (a typo in the scheme) with the password in it."""
    home = tmp_path / "home"
    dsn = "postgresq://user:SECRETPASS-w4rehouse@127.0.0.1:1/db"
    eod = regcalc(home, {"REGCALC_WAREHOUSE_DSN": dsn, "REGCALC_LINEAGE": "off", "REGCALC_STAR": "off", **AWS},
                  "eod", "--date", DATE, "--landing", str(golden / "landing"))

    assert eod.returncode == 2, eod.stderr[-2000:]  # a configuration error the user must fix
    assert ("REGCALC_WAREHOUSE_DSN is not a valid PostgreSQL connection string: missing \"=\" after "
            "\"postgresq://user:***@127.0.0.1:1/db\"") in eod.stderr
    assert leaks(home, [eod.stdout, eod.stderr], ["SECRETPASS-w4rehouse", *AWS_SECRETS]) == []
    counts = written(home)
    assert counts["compute_logs"] > 0 and counts["run_databases"] >= 2, counts
    stored = b"".join(p.read_bytes() for p in home.rglob("*.db"))
    assert b"InvalidDsnError" in stored and b"postgresq://user:***@127.0.0.1:1/db" in stored  # kept, masked


@pytest.mark.star
def test_a_postgresql_warehouse_with_a_password_and_dbt_leave_no_trace_of_it(golden, tmp_path, postgres_uri,
                                                                              monkeypatch):
    """A well-formed DSN with a password (percent-encoded ``@``) to a real PostgreSQL: the whole
    EOD with the star schema and the dbt reporting layer (dbt gets the password in its
    environment), then ``regcalc report`` reading it back."""
    import psycopg
    from click.testing import CliRunner
    from psycopg.conninfo import conninfo_to_dict

    from regcalc_cli.main import cli

    password = "Pg-Probe-7Q@x!"
    with psycopg.connect(postgres_uri, autocommit=True) as con:
        con.execute("DROP DATABASE IF EXISTS secret_probe")
        con.execute("DROP ROLE IF EXISTS regcalc_secret_probe")
        con.execute(f"CREATE ROLE regcalc_secret_probe LOGIN PASSWORD '{password}'")
        con.execute("CREATE DATABASE secret_probe OWNER regcalc_secret_probe")
    socket_dir = conninfo_to_dict(postgres_uri)["host"]
    dsn = f"postgresql://regcalc_secret_probe:{quote(password, safe='')}@/secret_probe?host={socket_dir}"
    home = tmp_path / "home"
    env = {"REGCALC_WAREHOUSE_DSN": dsn, "REGCALC_LINEAGE": "off", **AWS}

    eod = regcalc(home, env, "eod", "--date", DATE, "--landing", str(golden / "landing"))
    assert eod.returncode == 0, eod.stderr[-3000:]
    with monkeypatch.context() as mp:  # the report in this process (a second interpreter start saved)
        for name in UNSET:
            mp.delenv(name, raising=False)
        report = CliRunner().invoke(cli, ["report", "--date", DATE, "--format", "csv"],
                                    env={"REGCALC_HOME": str(home), **env})
    assert report.exit_code == 0 and "LE_UK" in report.output, report.output
    with psycopg.connect(dsn) as con:  # dbt did build the reporting layer with that password
        assert con.execute("SELECT count(*) FROM mart_lcr_daily").fetchone()[0] == 2

    secrets = [password, quote(password, safe=""), "Pg-Probe-7Q", *AWS_SECRETS]
    assert leaks(home, [eod.stdout, eod.stderr, report.output], secrets) == []
    counts = written(home)
    assert counts["compute_logs"] > 0 and counts["run_databases"] >= 2 and counts["lineage_events"] == 1, counts


@pytest.mark.parametrize(("variable", "dsn", "secret", "command"), [
    ("REGCALC_RULES_DSN", "postgresq://rules:RulesPw-malformed1@127.0.0.1:1/rules", "RulesPw-malformed1",
     ["rules", "list"]),
    ("REGCALC_RULES_DSN", "postgresql://rules:RulesPw-refused2@127.0.0.1:1/rules", "RulesPw-refused2",
     ["eod", "--date", DATE]),
    ("REGCALC_RULES_DSN", "postgresql://rules:Rules%ZZPw-badescape3@127.0.0.1:1/rules", "Rules%ZZPw-badescape3",
     ["eod", "--date", DATE]),
    ("REGCALC_REDSHIFT_DSN", "redshft//loader:RsPw-malformed4@cluster:5439/dev", "RsPw-malformed4",
     ["report", "--date", DATE]),
    ("REGCALC_REDSHIFT_DSN", "redshift://loader:RsPw-refused5@127.0.0.1:1/dev", "RsPw-refused5",
     ["report", "--date", DATE]),
    ("REGCALC_REDSHIFT_DSN", "RsPw-bareword6", "RsPw-bareword6", ["report", "--date", DATE]),
    ("REGCALC_WAREHOUSE_DSN", "postgresql://wh:Wh%ZZPw-badescape7@127.0.0.1/db", "Wh%ZZPw-badescape7",
     ["report", "--date", DATE]),
    ("REGCALC_WAREHOUSE_DSN", "host=127.0.0.1 port=1 user=wh password='Wh Pw-keyvalue8'", "Wh Pw-keyvalue8",
     ["report", "--date", DATE]),
])
def test_commands_with_a_bad_or_unreachable_dsn_print_no_secret(variable, dsn, secret, command, golden,
                                                                regcalc_home, monkeypatch):
    """Quick commands in this process (click's runner): the one-line error names the problem,
    never the password, and nothing written under the home holds it."""
    from click.testing import CliRunner

    from regcalc_cli.main import cli

    for name in UNSET:
        monkeypatch.delenv(name, raising=False)
    env = {variable: dsn, "REGCALC_REDSHIFT_IAM_ROLE": "arn:aws:iam::111122223333:role/copy",
           "REGCALC_REDSHIFT_STAGING_BUCKET": "staging", "REGCALC_LANDING": str(golden / "landing"), **AWS}
    result = CliRunner().invoke(cli, command, env=env)
    assert result.exit_code in (1, 2) and "error: " in result.output, result.output
    assert leaks(regcalc_home, [result.output], [secret, *AWS_SECRETS]) == []
