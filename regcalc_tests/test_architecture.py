"""The package's import arrows: the domain core imports no Dagster and nothing above it, the
resources import only the core, and a stage folder imports only the stages before it. Read from
the source (every import statement, at module level or inside a function), so a lazy import
cannot hide an upward arrow; plus a fresh process proving the definitions load fast and without
the heavy optional imports."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# regcalc_assets' stage folders in pipeline order: a folder may import the ones before it
STAGES = ["sources", "landing", "validation", "enrichment", "adjustments", "aggregation", "metrics", "lineage",
          "star", "publication"]


_IMPORTS = """
import ast, json, sys
from pathlib import Path
repo = Path(sys.argv[1])
out = {}
for package in sys.argv[2:]:
    for path in sorted((repo / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        out[str(path.relative_to(repo))] = sorted(names)
print(json.dumps(out))
"""


@functools.lru_cache(maxsize=None)
def _import_table() -> dict[str, list[str]]:
    """Every absolute import of every module of the four packages, read with ``ast`` in a fresh
    interpreter: CPython 3.11's parser can fail with "AST constructor recursion depth mismatch" in
    a process where an earlier test changed the recursion limit or hit a RecursionError (a pytest
    worker runs other files first), and no thread of that process is clean."""
    out = subprocess.run([sys.executable, "-c", _IMPORTS, str(REPO), "regcalc_core", "regcalc_resources",
                          "regcalc_assets", "regcalc_cli"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def imports(package: str) -> dict[Path, set[str]]:
    return {Path(path): set(names) for path, names in _import_table().items()
            if Path(path).parts[0] == package}


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
