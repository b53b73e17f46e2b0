"""What the hash chain costs (issue 16): reading the rules in force, which every EOD, sensor tick
and `rules list` does, verifies the whole chain first. Timed against the same read the
verification alone (the chain recomputed over the same events, already in memory), in the same run, on the embedded DuckDB store and on
PostgreSQL (pgserver, the store set up by `rules init-db`, acting through its functions).

    python benchmarks/rule_store_benchmark.py [--rules 300 1500] [--repeats 7]

Prints JSON (medians, ratios) and writes benchmarks/results/rule_store_benchmark.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from regcalc_core.governance import chain_break
from regcalc_resources.rule_store import DuckDBRuleStore, PostgresRuleStore

RESULTS = Path(__file__).parent / "results" / "rule_store_benchmark.json"


def rules(n: int) -> list[dict]:
    return [{"rule_id": f"BENCH_{k:05d}", "stage": ("deal_enrichment", "aggregation", "final_calc")[k % 3],
             "effective_date": "2024-01-01", "description": f"benchmark rule {k}",
             "conditions": [{"field": "entity_id", "operator": "==", "value": f"LE_{k % 20:03d}"}],
             "adjustments": [{"field": ("amount", "amount", "hqla")[k % 3], "operation": "multiply", "value": 1.01}]}
            for k in range(n)]


def median_seconds(fn, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def measure(kind: str, analyst, approver, reader, n: int, repeats: int) -> dict:
    start = time.perf_counter()
    analyst.submit(rules(n))
    submit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for k in range(n):
        approver.approve(f"BENCH_{k:05d}")
    approve_seconds = (time.perf_counter() - start) / n
    assert len(reader.approved_rules()) == n
    total = median_seconds(reader.approved_rules, repeats)  # read, verify, fold, parse
    events = reader._read()
    verify = median_seconds(lambda: chain_break(events), repeats)
    count, _, problem = reader.verify()
    assert problem is None and count == 2 * n
    return {"store": kind, "rules": n, "events": count, "submit_file_seconds": round(submit_seconds, 3),
            "approve_one_seconds": round(approve_seconds, 4),
            "rules_in_force_seconds": round(total, 4), "chain_verification_seconds": round(verify, 4),
            "baseline_without_verification_seconds": round(total - verify, 4),
            "ratio_with_to_without_verification": round(total / (total - verify), 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rules", type=int, nargs="+", default=[300, 1500])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    import getpass

    import pgserver
    import psycopg

    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        server = pgserver.get_server(str(Path(tmp) / "pg"), cleanup_mode="stop")
        try:
            uri = server.get_uri()
            for n in args.rules:
                duck = DuckDBRuleStore(path=str(Path(tmp) / f"rules_{n}.duckdb"))
                me = getpass.getuser()
                cases.append(measure("duckdb", duck, _As(duck, "bench_approver"), duck, n, args.repeats) | {"actor": me})
                database = f"bench_{n}"
                with psycopg.connect(uri, autocommit=True) as con:
                    con.execute(f"CREATE DATABASE {database}")
                dsn = _dsn(uri, "postgres", database)
                PostgresRuleStore(dsn=dsn).init_db()
                with psycopg.connect(dsn, autocommit=True) as con:
                    for role, group in (("bench_analyst", "regcalc_analyst"), ("bench_approver", "regcalc_approver"),
                                        ("bench_pipeline", "regcalc_reader")):
                        if not con.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
                            con.execute(f"CREATE ROLE {role} LOGIN")
                        con.execute(f"GRANT {group} TO {role}")
                cases.append(measure("postgres", *(PostgresRuleStore(dsn=_dsn(uri, r, database))
                                                   for r in ("bench_analyst", "bench_approver", "bench_pipeline")),
                                     n, args.repeats))
        finally:
            server.cleanup()
    out = {"benchmark": "rule_store", "repeats": args.repeats, "cases": cases}
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


class _As:
    """The embedded store acting as a named (unverified) user."""

    def __init__(self, store, user):
        self.store, self.user = store, user

    def approve(self, rule_id):
        return self.store.approve(rule_id, user=self.user)


def _dsn(uri: str, role: str, database: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, f"{role}:@", "/" + database, parts.query, ""))


if __name__ == "__main__":
    main()
