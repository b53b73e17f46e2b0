"""Assertion helpers shared by the test modules."""

from __future__ import annotations

import pytest


def mismatches(actual: dict, expected: dict, rel: float = 1e-9, abs: float = 1e-9) -> list[str]:
    """Fields of ``actual`` that differ from ``expected`` (None must be None, strings equal, numbers approx)."""
    bad = []
    for field, want in expected.items():
        got = actual.get(field, "<missing column>")
        if want is None:
            ok = got is None
        elif isinstance(want, str):
            ok = got == want
        else:
            ok = got is not None and not isinstance(got, str) and got == pytest.approx(want, rel=rel, abs=abs)
        if not ok:
            bad.append(f"{field}: expected {want!r}, got {got!r}")
    return bad


# metric -> the components whose traced position (and rule) contributions sum to it (liquidity-rules.md)
TRACED_TOTALS = {
    "hqla_l1": ["HQLA_L1"], "hqla_l2a": ["HQLA_L2A"], "hqla_l2b": ["HQLA_L2B_RMBS", "HQLA_L2B_OTHER"],
    "total_outflows": ["OUTFLOWS"], "total_inflows": ["INFLOWS"], "asf": ["ASF"], "rsf": ["RSF"],
}


def traced_totals(query, business_date: str) -> dict[tuple[str, str], dict[str, float]]:
    """From the warehouse lineage table alone: per (entity, basis), each total as the sum of the
    contributions of the positions traced to its components, plus the rules' changes (aggregation
    rules on the components, final rules on the total); hqla also subtracts the caps it reports."""
    edges = query("SELECT entity_id, output_stage, output_key, input_stage, input_key, base_contribution, contribution "
                  "FROM lineage WHERE business_date = CAST(? AS DATE)", [business_date])
    caps = {(r["entity_id"], r["basis"]): r for r in query(
        "SELECT entity_id, basis, adj15, adj40 FROM liquidity_metrics WHERE business_date = CAST(? AS DATE)", [business_date])}
    out: dict = {}
    for (entity, basis), cap in caps.items():
        column = "base_contribution" if basis == "base" else "contribution"

        def into(stage, key, inputs):
            return sum(e[column] or 0.0 for e in edges if e["entity_id"] == entity and e["output_stage"] == stage
                       and e["output_key"] == key and e["input_stage"] in inputs)

        totals = {metric: sum(into("liquidity_components", c, ("adjusted_positions", "adjustment_rules")) for c in comps)
                  + into("liquidity_metrics", metric, ("adjustment_rules",)) for metric, comps in TRACED_TOTALS.items()}
        totals["hqla"] = (totals["hqla_l1"] + totals["hqla_l2a"] + totals["hqla_l2b"] - cap["adj15"] - cap["adj40"]
                          + into("liquidity_metrics", "hqla", ("adjustment_rules",)))
        out[(entity, basis)] = totals
    return out


def assert_traced_to_the_cent(traced: dict, reported: dict[tuple[str, str], dict]) -> None:
    """Every traced total equals the reported figure to the cent, for every entity and basis."""
    assert set(traced) == set(reported), (sorted(traced), sorted(reported))
    bad = [f"{key} {metric}: traced {value:.2f}, reported {float(reported[key][metric]):.2f}"
           for key, totals in sorted(traced.items()) for metric, value in totals.items()
           if abs(value - float(reported[key][metric])) >= 0.005]
    assert not bad, bad


class CliResult:
    """What a command gave: exit code, standard output, standard error (as a process would)."""

    def __init__(self, result):
        self.returncode = result.exit_code
        self.stdout = result.stdout
        self.stderr = result.stderr
        self.exception = result.exception


def regcalc(*args: str, home, check: bool = True, env: dict | None = None) -> CliResult:
    """``regcalc ARGS`` in this process with click's CliRunner, in ``home`` on the DuckDB engine.
    Every variable the commands read or set is restored afterwards (``eod`` sets REGCALC_LANDING
    for its runs). ``check``: a non-zero exit is an AssertionError with the command's output."""
    from click.testing import CliRunner

    from regcalc_cli.main import cli

    variables = {"REGCALC_HOME": str(home), "REGCALC_ENGINE": "duckdb", "DAGSTER_HOME": None,
                 "REGCALC_LANDING": None, **(env or {})}
    result = CliResult(CliRunner().invoke(cli, list(args), env=variables, catch_exceptions=True))
    if check and result.returncode != 0:
        raise AssertionError(f"regcalc {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
                             + (f"\n{result.exception!r}" if result.exception else ""))
    return result
