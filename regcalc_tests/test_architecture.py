"""The package's import arrows: the domain core imports no Dagster and nothing above it, the
resources import only the core, and a stage folder imports only the stages before it. Read from
the source (every import statement, at module level or inside a function), so a lazy import
cannot hide an upward arrow; plus a fresh process proving the definitions load fast and without
the heavy optional imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# regcalc_assets' stage folders in pipeline order: a folder may import the ones before it
STAGES = ["sources", "landing", "validation", "enrichment", "adjustments", "aggregation", "metrics", "lineage",
          "star", "publication"]


def _parse(path: Path) -> ast.AST:
    """``ast.parse`` in a fresh thread: CPython 3.11's parser can fail with "AST constructor
    recursion depth mismatch" in a thread where an earlier test hit a RecursionError (the worker
    runs other files first); a new thread starts with a clean recursion count."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(ast.parse, path.read_text(), str(path)).result()


def imports(package: str) -> dict[Path, set[str]]:
    out = {}
    for path in sorted((REPO / package).rglob("*.py")):
        names = set()
        for node in ast.walk(_parse(path)):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        out[path.relative_to(REPO)] = names
    return out


def offending(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(f"{path}: {name}" for path, names in imports(package).items() for name in names
                  if any(name == f or name.startswith(f + ".") for f in forbidden))


def test_the_core_imports_no_dagster_and_nothing_above_it():
    assert offending("regcalc_core", ("dagster", "dagster_aws", "dagster_pyspark", "dagster_dbt", "regcalc_assets",
                                      "regcalc_resources", "regcalc_cli")) == []


def test_resources_import_only_the_core():
    assert offending("regcalc_resources", ("regcalc_assets", "regcalc_cli")) == []


def test_assets_never_import_the_command_line():
    assert offending("regcalc_assets", ("regcalc_cli",)) == []


def test_stages_import_only_earlier_stages():
    upward = []
    for path, names in imports("regcalc_assets").items():
        if len(path.parts) < 3 or path.parts[1] not in STAGES:
            continue
        mine = STAGES.index(path.parts[1])
        for name in names:
            parts = name.split(".")
            if parts[0] == "regcalc_assets" and len(parts) > 1 and parts[1] in STAGES and STAGES.index(parts[1]) > mine:
                upward.append(f"{path}: {name}")
    assert upward == []


@pytest.mark.parametrize("heavy", ["dagster_aws", "pandera", "pandas", "pyspark.pandas"])
def test_definitions_load_without_heavy_optional_imports(heavy):
    code = ("import sys, regcalc_assets.definitions as d; d.defs.resolve_job_def('eod_job'); "
            f"print({heavy!r} in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False", f"{heavy} was imported by loading the definitions"
