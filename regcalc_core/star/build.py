"""The star-schema operator: dimensions with deterministic surrogate keys and an unknown member,
SCD2 history from business dates, facts keyed to every dimension, bridges for n:n links, a date
dimension and aggregate tables, in the PySpark DataFrame API (real Spark or sqlframe/DuckDB).

Surrogate keys are the first 60 bits of SHA-256 over the natural key (and, for an SCD2 version,
its ``valid_from``), rendered as text with ``\\x1f`` between parts and ``\\x00`` for a null. The
same key comes out of any engine, any re-run and any processing order; ``key_of`` computes it in
plain Python. The unknown member of every dimension has key ``-1``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

from regcalc_core.dataframes import column_types, frame_of_rows, functions_for, is_sqlframe, session_of
from regcalc_core.star.spec import FAR_FUTURE, Aggregate, Relationship, Role, StarSpec, StarSpecError

UNKNOWN_KEY = -1
EXACT = "decimal(38,10)"  # sums of doubles in aggregates: order-independent
UNKNOWN_TEXT = "<unknown>"
FIRST_DATE = "1900-01-01"  # valid_from of the unknown member
SEPARATOR, NULL = "\x1f", "\x00"
KEY_TYPES = ("string", "int", "bigint", "smallint", "tinyint", "date", "boolean")
EXAMPLES = 5


def key_of(*parts) -> int:
    """The surrogate key of a natural key (plus an SCD2 version start), computed in Python: the
    independent definition the DataFrame expression must match."""
    text = SEPARATOR.join(NULL if p is None else (p.isoformat() if isinstance(p, dt.date) else
                                                  str(p).lower() if isinstance(p, bool) else str(p)) for p in parts)
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:15], 16)


def surrogate_key(df, columns: list):
    """The DataFrame expression of ``key_of`` over ``columns`` (names or Columns)."""
    F, _ = functions_for(df)
    parts = [F.coalesce((F.col(c) if isinstance(c, str) else c).cast("string"), F.lit(NULL)) for c in columns]
    digest = F.substring(F.sha2(F.concat_ws(SEPARATOR, *parts), 256), 1, 15)
    if is_sqlframe(df):  # DuckDB reads a 0x-prefixed text as hexadecimal; it has no conv()
        return F.concat(F.lit("0x"), digest).cast("bigint")
    return F.conv(digest, 16, 10).cast("bigint")


def date_key_expr(F, column: str, span: tuple[dt.date, dt.date] | None = None):
    """yyyymmdd as an integer; the unknown date (-1) for a null or a date outside ``span``."""
    d = F.col(column).cast("date")
    key = F.year(d) * 10000 + F.month(d) * 100 + F.dayofmonth(d)
    if span is not None:
        inside = (d >= F.lit(span[0].isoformat()).cast("date")) & (d <= F.lit(span[1].isoformat()).cast("date"))
        key = F.when(inside, key)
    return F.coalesce(key, F.lit(UNKNOWN_KEY)).cast("int")


@dataclass(frozen=True)
class Physical:
    """How the warehouse stores a star table (Redshift: DISTSTYLE, DISTKEY, SORTKEY)."""

    table: str
    diststyle: str  # ALL, KEY or AUTO
    distkey: str | None
    sortkey: tuple[str, ...]
    reason: str


@dataclass
class StarSchema:
    """What the operator built: star table name -> DataFrame (dimensions, dim_date, facts,
    bridges, aggregates, in that order), and each input table's role with its reason."""

    spec: StarSpec
    roles: list[Role]
    tables: dict = field(default_factory=dict)
    foreign_keys: dict = field(default_factory=dict)  # star table -> its surrogate foreign key columns

    def unknown_members(self) -> dict[str, dict[str, int]]:
        """Per fact and bridge, per foreign key: rows that point at the unknown member (the value
        matched no member, or was null). No row is dropped for it."""
        out = {}
        for name, keys in self.foreign_keys.items():
            if not keys or name not in self.tables:
                continue
            df = self.tables[name]
            F, _ = functions_for(df)
            row = df.agg(*[F.sum(F.when(F.col(k) == F.lit(UNKNOWN_KEY), 1).otherwise(0)).alias(k) for k in keys]).collect()[0]
            out[name] = {k: int(row[k] or 0) for k in keys}
        return out

    def physical(self, cardinalities: dict[str, dict[str, int]] | None = None) -> dict[str, Physical]:
        """``physical_design`` of every table; a fact's foreign keys are counted in its data
        unless ``cardinalities`` (table -> key -> distinct values) gives them."""
        out = {}
        for name, df in self.tables.items():
            keys = [k for k in self.foreign_keys.get(name, []) if k != "date_key"]
            counts = (cardinalities or {}).get(name)
            if counts is None and name.startswith("fact_") and keys:
                counts = _distinct_counts(df, keys)
            out[name] = physical_design(name, list(df.columns), self.foreign_keys.get(name, []), counts or {})
        return out


def physical_design(name: str, columns: list[str], foreign_keys: list[str], counts: dict[str, int]) -> Physical:
    """How the warehouse stores a star table: dimensions ALL; facts KEY on their highest-cardinality
    foreign key (``counts``; never date_key, so a day's load spreads over every slice); bridges KEY
    on the fact key they link; aggregates AUTO; the sort key leads with date_key wherever there is
    one."""
    dated = ("date_key",) if "date_key" in columns else ()
    if name.startswith("dim_"):
        key = "date_key" if name == "dim_date" else columns[0]
        return Physical(name, "ALL", None, (key,), "dimension: a copy on every node, joins stay local")
    if name.startswith("fact_"):
        candidates = [k for k in foreign_keys if k != "date_key"]
        if not candidates:
            return Physical(name, "AUTO", None, dated, "fact without a foreign key to distribute on")
        best = sorted(candidates, key=lambda k: (-counts.get(k, 0), k))[0]
        return Physical(name, "KEY", best, dated + (best,), f"fact: distributed on its highest-cardinality foreign "
                                                           f"key {best} ({counts.get(best, 0)} distinct values)")
    if name.startswith("bridge_"):
        fact_key = columns[columns.index("weight") - 2]
        return Physical(name, "KEY", fact_key, dated + (fact_key,), "bridge: co-located by the fact key it links")
    return Physical(name, "AUTO", None, dated, "aggregate: small, Redshift chooses")


def _distinct_counts(df, columns: list[str]) -> dict[str, int]:
    F, _ = functions_for(df)
    row = df.agg(*[F.countDistinct(c).alias(c) for c in columns]).collect()[0]
    return {c: int(row[c] or 0) for c in columns}


# --- checks on data -----------------------------------------------------------------------------
def check_columns(spec: StarSpec, inputs: dict, only: set[str] | None = None) -> None:
    """Every table the spec needs (``only`` these, when given) is given, and has every column the
    spec names."""
    only = set(spec.tables) if only is None else only
    for name in spec.tables:
        if name in only and name not in inputs:
            raise StarSpecError(f"table {name!r} of the spec was not given (given: {', '.join(sorted(inputs)) or 'none'})")
    needs: dict[str, list[tuple[str, str]]] = {n: [(k, "natural key") for k in t.key] for n, t in spec.tables.items()}
    for name, table in spec.tables.items():
        if table.date:
            needs[name].append((table.date, "date"))
    for name, cols in spec.measures.items():
        needs[name] += [(c, "measure") for c in cols]
    for name, s in spec.scd2.items():
        needs[name] += [(c, "scd2 track") for c in s.track] + [(s.as_of, "scd2 as_of")]
    for rel in spec.relationships:
        needs[rel.from_table].append((rel.from_column, f"relationship {rel.text}"))
        needs[rel.to_table].append((rel.to_column, f"relationship {rel.text}"))
        if rel.via:
            needs[rel.via] += [(rel.to_column, f"link of {rel.text}")]
            needs[rel.via] += [(k, f"link of {rel.text} (natural key of {rel.from_table})")
                               for k in spec.tables[rel.from_table].key]
    for name, wanted in needs.items():
        if name not in only:
            continue
        types = column_types(inputs[name])
        for column, why in wanted:
            if column not in types:
                raise StarSpecError(f"table {name!r} has no column {column!r} (named as {why}; "
                                    f"columns: {', '.join(types)})")
        for k in spec.tables[name].key:
            if not types[k].startswith(KEY_TYPES):
                raise StarSpecError(f"table {name!r}: natural key column {k!r} has type {types[k]}; a key must be "
                                    f"text, an integer, a date or a boolean")


def check_unique(df, columns: list[str], what: str) -> None:
    """Error naming the table and giving examples when ``columns`` are not unique in ``df``."""
    F, _ = functions_for(df)
    dupes = (df.groupBy(*columns).agg(F.count(F.lit(1)).alias("__rows")).where(F.col("__rows") > 1)
             .orderBy(*columns).limit(EXAMPLES).collect())
    if dupes:
        examples = "; ".join(", ".join(f"{c}={r[c]!r}" for c in columns) + f" ({r['__rows']} rows)" for r in dupes)
        raise StarSpecError(f"{what}: ({', '.join(columns)}) is not unique; duplicates (up to {EXAMPLES}): {examples}")


# --- dimensions ----------------------------------------------------------------------------------
def _with_unknown(dim, key: str, types: dict[str, str]):
    """The dimension plus its unknown member: key -1, text columns '<unknown>', the rest null
    (an SCD2 one valid from 1900-01-01 to 9999-12-31, current). ``types`` are the dimension's
    column types (known from its input: asking the built frame would plan it once more)."""
    F, _ = functions_for(dim)
    one = frame_of_rows(session_of(dim), [(1,)], "__one int")
    special = {key: F.lit(UNKNOWN_KEY).cast("bigint"), "valid_from": F.lit(FIRST_DATE).cast("date"),
               "valid_to": F.lit(FAR_FUTURE).cast("date"), "is_current": F.lit(True)}
    cols = [(special[name] if name in special else F.lit(UNKNOWN_TEXT) if dtype == "string"
             else F.lit(None).cast(dtype)).alias(name) for name, dtype in types.items()]
    return dim.unionByName(one.select(*cols))


def build_dimension(spec: StarSpec, name: str, df, check: bool = True):
    """``dim_<name>``: ``<name>_key``, the natural key and the attributes; for SCD2 one row per
    version with ``valid_from`` / ``valid_to`` (half-open: a version ends where the next begins;
    the current one ends 9999-12-31) and ``is_current``. Versions come from the snapshots' own
    dates, so the history is the same whatever order the snapshots were processed in."""
    F, Window = functions_for(df)
    table, scd2 = spec.tables[name], spec.scd2.get(name)
    key, nk = spec.own_key(name), list(table.key)
    types = column_types(df)
    if scd2 is None:
        if check:
            check_unique(df, nk, f"dimension {name!r} (one side of a relationship)")
        attrs = [c for c in df.columns if c not in nk]
        out_types = {key: "bigint", **{c: types[c] for c in nk + attrs}}
        return _with_unknown(df.select(surrogate_key(df, nk).alias(key), *nk, *attrs), key, out_types)
    if check:
        check_unique(df, nk + [scd2.as_of], f"SCD2 dimension {name!r} (one snapshot per key and {scd2.as_of})")
    attrs = [c for c in df.columns if c not in nk and c != scd2.as_of]
    # few DataFrame operations: sqlframe re-plans the whole tree on each one
    signature = F.concat_ws(SEPARATOR, *[F.coalesce(F.col(c).cast("string"), F.lit(NULL)) for c in scd2.track])
    previous = F.lag(signature).over(Window.partitionBy(*nk).orderBy(F.col(scd2.as_of)))
    marked = df.select(*nk, *attrs, F.col(scd2.as_of).cast("date").alias("__as_of"),
                       F.when(previous.isNull() | (previous != signature), 1).otherwise(0).alias("__new"))
    running = Window.partitionBy(*nk).orderBy("__as_of").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    in_version = Window.partitionBy(*nk, "__version")
    latest = (marked.withColumn("__version", F.sum("__new").over(running))
              .select(*nk, *attrs, F.min("__as_of").over(in_version).alias("valid_from"),
                      F.row_number().over(in_version.orderBy(F.col("__as_of").desc())).alias("__rank"))
              .where(F.col("__rank") == 1))
    following = F.lead("valid_from").over(Window.partitionBy(*nk).orderBy("valid_from"))
    dim = latest.select(surrogate_key(latest, [*nk, "valid_from"]).alias(key), *nk, *attrs, "valid_from",
                        F.coalesce(following, F.lit(FAR_FUTURE).cast("date")).alias("valid_to"),
                        following.isNull().alias("is_current"))
    out_types = {key: "bigint", **{c: types[c] for c in nk + attrs}, "valid_from": "date", "valid_to": "date",
                 "is_current": "boolean"}
    return _with_unknown(dim, key, out_types)


def date_dimension(session, start: dt.date, end: dt.date):
    """``dim_date``: one row per calendar day, ``date_key`` yyyymmdd, with year, quarter, month,
    day, ISO day of week (1 Monday), month and quarter ends, business day (Monday to Friday: no
    holiday calendar) and the last business day of the month; plus the unknown date (-1)."""
    rows = [(UNKNOWN_KEY, None, None, None, None, None, None, None, False, False, False, False)]
    day = start
    while day <= end:
        month_end = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
        last_business = month_end - dt.timedelta(days=max(0, month_end.isoweekday() - 5))
        rows.append((day.year * 10000 + day.month * 100 + day.day, day, day.year, (day.month - 1) // 3 + 1, day.month,
                     day.day, day.isoweekday(), day.strftime("%A"), day == month_end,
                     day == month_end and day.month % 3 == 0, day.isoweekday() <= 5, day == last_business))
        day += dt.timedelta(days=1)
    return frame_of_rows(session, rows, "date_key int, date date, year int, quarter int, month int, day int, "
                                         "day_of_week int, day_name string, is_month_end boolean, "
                                         "is_quarter_end boolean, is_business_day boolean, "
                                         "is_last_business_day_of_month boolean")


# --- facts and bridges ---------------------------------------------------------------------------
LOOKUP_LIMIT = 1000  # members: up to it a foreign key is a CASE over them, past it a join
FACT_DATE = "__fact_date"


def _literal(value) -> str:
    """A natural-key value as a Spark SQL literal of its own type."""
    from regcalc_core.conditions import sql_literal

    if isinstance(value, bool) or value is None:
        return sql_literal(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    return sql_literal(str(value))


def _members(spec: StarSpec, dim_name: str, dims: dict, lookups: dict):
    """The members of a dimension (natural key, key[, valid_from, valid_to]) without the unknown
    one, read once per build; None for a dimension too large to inline."""
    if dim_name not in lookups:
        F, _ = functions_for(dims[dim_name])
        key, nk = spec.own_key(dim_name), spec.tables[dim_name].key[0]
        extra = ["valid_from", "valid_to"] if dim_name in spec.scd2 else []
        rows = (dims[dim_name].where(F.col(key) != F.lit(UNKNOWN_KEY)).select(nk, key, *extra)
                .limit(LOOKUP_LIMIT + 1).collect())
        lookups[dim_name] = None if len(rows) > LOOKUP_LIMIT else [tuple(r) for r in rows]
    return lookups[dim_name]


def _resolve(df, rel: Relationship, column: str, dims: dict, spec: StarSpec, date_column: str | None, n: int,
             lookups: dict):
    """(``df``, the expression of ``spec.key_column(rel)``): the member of the dimension that
    ``column`` names (for SCD2, the version valid on ``date_column``, else the current one), or -1.
    A dimension of up to LOOKUP_LIMIT members is inlined as one CASE (no join: cheap to plan on
    sqlframe and to run on both engines); a larger one is joined."""
    F, _ = functions_for(df)
    dim_name, nk = rel.one
    dated = dim_name in spec.scd2 and date_column
    members = _members(spec, dim_name, dims, lookups)
    if members is not None:
        if dim_name in spec.scd2 and not date_column:
            members = [(m[0], m[1]) for m in members if str(m[3]) == FAR_FUTURE]
        if not members:
            return df, F.lit(UNKNOWN_KEY).cast("bigint")
        if dated:
            day = f"CAST(`{date_column}` AS DATE)"
            branches = " ".join(f"WHEN `{column}` = {_literal(v)} AND {day} >= {_literal(vf)} AND {day} < {_literal(vt)} "
                                f"THEN {int(k)}" for v, k, vf, vt in members)
            return df, F.expr(f"CAST(CASE {branches} ELSE {UNKNOWN_KEY} END AS BIGINT)")
        branches = " ".join(f"WHEN {_literal(v)} THEN {int(k)}" for v, k, *_ in members)
        return df, F.expr(f"CAST(CASE `{column}` {branches} ELSE {UNKNOWN_KEY} END AS BIGINT)")
    dim, key, tmp = dims[dim_name], spec.own_key(dim_name), f"__{n}"
    known = dim.where(F.col(key) != F.lit(UNKNOWN_KEY))
    on = F.col(column) == F.col(f"{tmp}_nk")
    if dated:
        right = known.select(F.col(nk).alias(f"{tmp}_nk"), F.col(key).alias(f"{tmp}_k"),
                             F.col("valid_from").alias(f"{tmp}_vf"), F.col("valid_to").alias(f"{tmp}_vt"))
        day = F.col(date_column).cast("date")
        on = on & (day >= F.col(f"{tmp}_vf")) & (day < F.col(f"{tmp}_vt"))
    else:
        if dim_name in spec.scd2:
            known = known.where(F.col("is_current"))
        right = known.select(F.col(nk).alias(f"{tmp}_nk"), F.col(key).alias(f"{tmp}_k"))
    joined = df.join(right, on=on, how="left")
    # a fresh projection: sqlframe otherwise fails to resolve the next join's columns
    joined = joined.select(*[F.col(c) for c in joined.columns])
    return joined, F.coalesce(F.col(f"{tmp}_k"), F.lit(UNKNOWN_KEY)).cast("bigint")


def build_fact(spec: StarSpec, name: str, df, dims: dict, check: bool = True, lookups: dict | None = None):
    """``fact_<name>``: ``date_key``, one surrogate key per relationship, then the natural key and
    other attributes (degenerate dimensions) and the measures; a fact that a bridge links also
    gets its own key (``<name>_key``, its natural key hashed) first. A foreign key that matches
    nothing points at the unknown member: no row is dropped."""
    F, _ = functions_for(df)
    table = spec.tables[name]
    lookups = {} if lookups is None else lookups
    if check:
        check_unique(df, list(table.key), f"fact {name!r} (its natural key)")
    rels = [r for r in spec.relationships if r.type != "n:n" and r.many[0] == name]
    linked = any(r.type == "n:n" and r.from_table == name for r in spec.relationships)
    own = [surrogate_key(df, list(table.key)).alias(spec.own_key(name))] if linked else []
    out, keys, day = df, [], table.date
    if table.date and any(r.one[0] in spec.scd2 and _members(spec, r.one[0], dims, lookups) is None for r in rels):
        # a join on the date: the fact's own copy of it, so that no later join makes it ambiguous
        out, day = df.withColumn(FACT_DATE, F.col(table.date)), FACT_DATE
    for n, rel in enumerate(rels):
        out, key = _resolve(out, rel, rel.many[1], dims, spec, day, n, lookups)
        keys.append(key.alias(spec.key_column(rel)))
    measures = list(spec.measures.get(name, {}))
    replaced = {r.many[1] for r in rels} - set(table.key)
    attrs = [c for c in df.columns if c not in measures and c not in replaced and c not in table.key]
    dated = [date_key_expr(F, table.date, spec.date_range).alias("date_key")] if table.date else []
    return out.select(*own, *dated, *keys, *table.key, *attrs, *measures)


def build_bridge(spec: StarSpec, rel: Relationship, link, dims: dict, fact_rows=None):
    """``bridge_<via's name>``: one row per (fact row, dimension member) the link table pairs, with the
    fact's natural key, both surrogate keys and ``weight`` = 1 / members per fact row (so the
    weights of a fact row sum to 1). A row of ``fact_rows`` (the fact's input, when given) that the
    link table pairs with nothing gets one row at the unknown member, weight 1: no fact row is lost
    through the bridge."""
    F, Window = functions_for(link)
    fact, fact_key = spec.tables[rel.from_table], spec.own_key(rel.from_table)
    date_column = spec.tables[rel.via].date
    if fact_rows is not None:
        keys, types = list(fact.key), column_types(link)
        rest = [rel.to_column, *([date_column] if date_column else [])]
        unlinked = fact_rows.select(*keys).distinct().join(link.select(*keys).distinct(), on=keys, how="left_anti")
        link = link.select(*keys, *rest).unionByName(unlinked.select(
            *[F.col(k).cast(types[k]).alias(k) for k in keys], *[F.lit(None).cast(types[c]).alias(c) for c in rest]))
    resolved, key = _resolve(link, rel, rel.to_column, dims, spec, date_column, 0, {})
    dated = [date_key_expr(F, date_column, spec.date_range).alias("date_key")] if date_column else []
    pairs = resolved.select(*fact.key, *dated, surrogate_key(link, list(fact.key)).alias(fact_key),
                            key.alias(spec.key_column(rel))).distinct()
    per_fact = Window.partitionBy(fact_key)
    return pairs.withColumn("weight", F.lit(1.0) / F.count(F.lit(1)).over(per_fact))


def build_aggregate(spec: StarSpec, agg: Aggregate, fact):
    """``agg_<name>``: the fact's measures by the grain, each with its declared aggregation, and
    ``row_count``."""
    F, _ = functions_for(fact)
    missing = [g for g in agg.grain if g not in fact.columns]
    if missing:
        raise StarSpecError(f"aggregate agg_{agg.name}: grain column {missing[0]!r} is not in the fact of {agg.fact} "
                            f"(columns: {', '.join(fact.columns)})")
    fns = {"sum": F.sum, "avg": F.avg, "count": F.count, "min": F.min, "max": F.max}
    types = column_types(fact)

    def measure(column: str, how: str):
        if how in ("sum", "avg") and types[column] in ("double", "float"):
            # summed in exact decimal arithmetic: the same total whatever order the rows come in
            # (a rebuild, a backfill, the other engine), as the aggregation stage does
            exact = F.sum(F.col(column).cast(EXACT))
            value = exact if how == "sum" else exact / F.count(F.col(column))
            return value.cast("double").alias(column)
        value = fns[how](F.col(column))
        if how == "sum" and types[column] in ("tinyint", "smallint", "int", "bigint"):
            # a bigint, as on Spark: DuckDB sums integers to a 128-bit integer, which sqlframe
            # cannot type and Parquet stores as a double
            value = value.cast("bigint")
        return value.alias(column)

    measures = [measure(c, how) for c, how in spec.measures.get(agg.fact, {}).items()]
    return fact.groupBy(*agg.grain).agg(*measures, F.count(F.lit(1)).cast("bigint").alias("row_count"))


def fact_date_range(spec: StarSpec, inputs: dict, roles: list[Role]) -> tuple[dt.date, dt.date] | None:
    """The date dimension's range when the spec gives none: whole years around the fact dates."""
    lows, highs = [], []
    for role in roles:
        table = spec.tables[role.table]
        if role.role in ("fact", "bridge") and table.date:
            F, _ = functions_for(inputs[role.table])
            row = inputs[role.table].agg(F.min(F.col(table.date).cast("date")).alias("lo"),
                                         F.max(F.col(table.date).cast("date")).alias("hi")).collect()[0]
            if row["lo"] is not None:
                lows.append(row["lo"])
                highs.append(row["hi"])
    if not lows:
        return None
    return dt.date(min(lows).year, 1, 1), dt.date(max(highs).year, 12, 31)


def build_star(spec: StarSpec, inputs: dict, dimensions: dict | None = None, parts: tuple = ("dimension", "date",
               "fact", "bridge", "aggregate"), check: bool = True) -> StarSchema:
    """Build the star from ``inputs`` (table name -> DataFrame). ``dimensions`` (input name ->
    built dimension, unknown member included) reuses dimensions built earlier instead of building
    them from their inputs; ``parts`` limits what is built (a partitioned fact run builds facts
    and bridges against stored dimensions). ``check`` verifies that every column the spec names
    is there and that natural keys are unique (a pipeline whose stages guarantee both skips it)."""
    roles = spec.classify()
    given = {n: df for n, df in inputs.items() if n in spec.tables}
    needed = {r.table for r in roles if (r.role == "dimension" and dimensions is None) or
              (r.role == "fact" and ("fact" in parts or "aggregate" in parts)) or (r.role == "bridge" and "bridge" in parts)}
    if check:
        check_columns(spec, given, only=needed)
    star = StarSchema(spec, roles)
    dims = dict(dimensions or {})
    for role in roles:
        if role.role == "dimension" and role.table not in dims:
            dims[role.table] = build_dimension(spec, role.table, given[role.table], check)
    if "dimension" in parts:
        for role in roles:
            if role.role == "dimension":
                star.tables[role.output] = dims[role.table]
    if "date" in parts:
        span = spec.date_range or fact_date_range(spec, given, roles)
        if span:
            any_df = next(iter(given.values())) if given else next(iter(dims.values()))
            star.tables["dim_date"] = date_dimension(session_of(any_df), *span)
    facts, lookups = {}, {}  # lookups: each dimension's members, read once for every fact
    if "fact" in parts or "aggregate" in parts:
        for role in roles:
            if role.role == "fact":
                facts[role.table] = build_fact(spec, role.table, given[role.table], dims, check, lookups)
                keys = [c for c in facts[role.table].columns if c.endswith("_key") and c != spec.own_key(role.table)]
                star.foreign_keys[role.output] = keys
    if "fact" in parts:
        star.tables.update({f"fact_{spec.tables[n].star_name}": df for n, df in facts.items()})
    if "bridge" in parts:
        for rel in spec.relationships:
            if rel.type == "n:n":
                name = f"bridge_{spec.tables[rel.via].star_name}"
                every_row = given.get(rel.from_table) if rel.unlinked == "unknown" else None
                star.tables[name] = build_bridge(spec, rel, given[rel.via], dims, every_row)
                star.foreign_keys[name] = [spec.key_column(rel)]
    if "aggregate" in parts:
        for agg in spec.aggregates_of(roles):
            star.tables[f"agg_{agg.name}"] = build_aggregate(spec, agg, facts[agg.fact])
    return star
