"""`regcalc star build`: the generic star-schema operator on any tables named by a spec."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import click


def _inputs(engine, spec) -> dict:
    """Each table of the spec read from its ``path`` (CSV or Parquet, relative to the spec)."""
    from regcalc_core.star.spec import StarSpecError

    inputs = {}
    for name, table in spec.tables.items():
        if not table.path:
            raise StarSpecError(f"table {name!r} has no 'path': star build reads every table from a file")
        path = (spec.base_dir / table.path).resolve()
        if not path.exists():
            raise StarSpecError(f"table {name!r}: {path} does not exist")
        if not (path.is_dir() or path.suffix in (".csv", ".parquet")):
            raise StarSpecError(f"table {name!r}: {path} is neither a .csv nor a .parquet file nor a directory of Parquet files")
        try:
            inputs[name] = engine.read_table(str(path))
            inputs[name].columns  # noqa: B018 - read the header now, so a bad file is named here
        except Exception as exc:  # noqa: BLE001 - the engine's own error, with the file named
            raise StarSpecError(f"table {name!r}: cannot read {path}: {str(exc).splitlines()[0]}") from exc
    return inputs


def write_star(engine, tables: dict, out: Path) -> dict[str, int]:
    """Every star table as Parquet under ``out/<table>/``: all written to a staging directory
    first (a failure changes nothing), then each swapped into place. Rows per table."""
    import pyarrow.parquet as pq

    from regcalc_core.files import replace_dir

    out.mkdir(parents=True, exist_ok=True)
    staging = out / f".staging-{uuid.uuid4().hex[:12]}"
    try:
        for name, df in tables.items():
            engine.write_table(df, str(staging / name))
        rows = {name: sum(pq.ParquetFile(f).metadata.num_rows for f in sorted((staging / name).glob("*.parquet")))
                for name in tables}
        for name in tables:
            replace_dir(str(staging / name), str(out / name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return rows


def render(roles, rows: dict, physical: dict, unknown: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps({
            "classification": [{"table": r.table, "role": r.role, "star_table": r.output, "reason": r.reason} for r in roles],
            "tables": {n: {"rows": rows[n], "diststyle": physical[n].diststyle, "distkey": physical[n].distkey,
                           "sortkey": list(physical[n].sortkey)} for n in rows},
            "unknown_members": unknown,
        }, indent=2)
    width = max(len(r.table) for r in roles)
    lines = [f"{'table'.ljust(width)}  {'role'.ljust(9)}  reason"]
    lines += [f"{r.table.ljust(width)}  {r.role.ljust(9)}  {r.reason}" for r in roles]
    lines.append("")
    name_width = max(len(n) for n in rows)
    for name, count in rows.items():
        p = physical[name]
        design = f"DISTSTYLE {p.diststyle}" + (f" DISTKEY({p.distkey})" if p.distkey else "") + \
            (f" SORTKEY({', '.join(p.sortkey)})" if p.sortkey else "")
        lost = sum(unknown.get(name, {}).values())
        lines.append(f"{name.ljust(name_width)}  {count:>10} rows  {design}" +
                     (f"  ({lost} foreign keys at the unknown member)" if lost else ""))
    return "\n".join(lines)


@click.group()
def star():
    """Star schemas: facts, dimensions (SCD2), bridges, a date dimension and aggregates."""


@star.command()
@click.option("--spec", "spec_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="the star spec (YAML); its tables' paths are relative to it")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="each star table goes to OUT/<table>/")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def build(spec_path, out, fmt):
    """Build the star schema a spec describes, from CSV or Parquet tables: print each input's role
    and why, and write every star table as Parquet under OUT."""
    from regcalc_core.star.build import build_star
    from regcalc_core.star.spec import StarSpec
    from regcalc_resources import build_engine

    spec = StarSpec.from_yaml(spec_path)
    engine = build_engine()  # plain configuration: no Dagster resource context needed
    if engine.remote:
        from regcalc_core.errors import RegcalcInputError

        raise RegcalcInputError("regcalc star build reads and writes files on this machine, which a Spark Connect "
                                "cluster cannot see: run it without REGCALC_SPARK_REMOTE")
    star_schema = build_star(spec, _inputs(engine, spec))
    unknown = star_schema.unknown_members()
    physical = star_schema.physical()
    rows = write_star(engine, star_schema.tables, Path(out))
    click.echo(render(star_schema.roles, rows, physical, unknown, fmt))
    if fmt == "table":
        click.echo(f"\nwrote {len(rows)} tables under {os.path.abspath(out)}")
