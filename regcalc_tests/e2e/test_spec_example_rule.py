"""The example rule of adjustment-rules.md (ADJ_2024_001), taken from the spec text as written,
through the CLI: submitted, approved by another user, and applied only on the business dates of
its effective / expiry window."""

from __future__ import annotations

import re

import duckdb
import pytest

from regcalc_cli.eod import run_eod
from regcalc_cli.report import fetch_report
from regcalc_tests.conftest import SHARED
from regcalc_tests.helpers import regcalc

pytestmark = pytest.mark.slow

BEFORE, FIRST_DAY, LAST_DAY, AFTER = "2024-01-12", "2024-01-15", "2024-12-31", "2025-01-02"
# golden positions that are SECURITY or LOAN and mature after 2025-01-01 (worked out from the
# golden README and files); UK-0006 (equity, no maturity) and the quarantined US-0045 do not count
MATCHED = {"UK-0003", "UK-0004", "UK-0005", "UK-0007", "UK-0020", "US-0029", "US-0030", "US-0031"}
# of those, HQLA (so with a haircut): not the loan UK-0020, and not UK-0007 while it is encumbered
# (until 2024-09-30)
HQLA_ENCUMBERED_GILT = MATCHED - {"UK-0020", "UK-0007"}
HQLA_ALL = MATCHED - {"UK-0020"}


def spec_example_rule() -> str:
    """The YAML block under 'Shape' in adjustment-rules.md, verbatim."""
    text = (SHARED / "spec" / "adjustment-rules.md").read_text()
    return re.search(r"```yaml\n(.*?)```", text, re.S).group(1)


def golden_landing_on(golden, root, dates):
    """The golden delivery re-dated: every file with its business_date column set to each date."""
    con = duckdb.connect()
    source = golden / "landing" / "business_date=2024-06-28"
    for date in dates:
        folder = root / f"business_date={date}"
        folder.mkdir(parents=True)
        for file in source.glob("*.parquet"):
            con.execute(f"COPY (SELECT * REPLACE (DATE '{date}' AS business_date) FROM read_parquet('{file}')) "
                        f"TO '{folder / file.name}' (FORMAT parquet)")


def test_adj_2024_001_as_written_in_the_spec_respects_its_window(tmp_path, golden, regcalc_home, monkeypatch):
    from regcalc_cli.instance import get_instance
    from regcalc_resources import build_resources

    home, landing = regcalc_home, tmp_path / "landing"
    monkeypatch.setenv("REGCALC_ENGINE", "duckdb")
    dates = [BEFORE, FIRST_DAY, LAST_DAY, AFTER]
    golden_landing_on(golden, landing, dates)
    rule_file = tmp_path / "adj_2024_001.yaml"
    rule_file.write_text(spec_example_rule())
    regcalc("rules", "submit", str(rule_file), "--as-user-unverified", "--user", "analyst_a", home=home)
    regcalc("rules", "approve", "ADJ_2024_001", "--as-user-unverified", "--user", "risk_admin", home=home)
    instance, warehouse = get_instance(), build_resources()["warehouse"]
    for date in dates:
        assert run_eod(instance, date, str(landing)).success

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    trail = con.execute("SELECT CAST(business_date AS VARCHAR), rule_id, version, position_id, field, value_before, "
                        "value_after, clamped FROM adjustment_trail").fetchall()
    by_date: dict[str, list] = {d: [] for d in dates}
    for row in trail:
        by_date[row[0]].append(row[1:])

    for date in (BEFORE, AFTER):  # outside the window: nothing changes, adjusted = base
        assert by_date[date] == [], date
        adjusted, base = fetch_report(warehouse, date), fetch_report(warehouse, date, "base")
        assert adjusted == base and all(r["lcr_variance"] == 0 and r["nsfr_variance"] == 0 for r in adjusted)

    for date, hqla in ((FIRST_DAY, HQLA_ENCUMBERED_GILT), (LAST_DAY, HQLA_ALL)):  # both ends inclusive
        rows = by_date[date]
        assert {(r[0], r[1]) for r in rows} == {("ADJ_2024_001", 1)} and not any(r[6] for r in rows)
        rsf = {r[2]: (r[4], r[5]) for r in rows if r[3] == "rsf_factor"}
        haircut = {r[2]: (r[4], r[5]) for r in rows if r[3] == "haircut"}
        assert set(rsf) == MATCHED, date
        assert set(haircut) == hqla, date
        assert all(after == pytest.approx(before * 0.95) for before, after in rsf.values())
        assert all(after == pytest.approx(before + 0.05) for before, after in haircut.values())
        assert haircut["UK-0003"] == pytest.approx((0.0, 0.05)) and haircut["US-0031"] == pytest.approx((0.5, 0.55))
        assert all(r["nsfr_variance"] > 0 for r in fetch_report(warehouse, date)), "a lower RSF raises the NSFR of both entities"
