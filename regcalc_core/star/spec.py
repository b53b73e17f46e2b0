"""A star-schema spec: tables and their natural keys, relationships, measures, SCD2 settings,
the date dimension and aggregate grains, read from versioned YAML, checked, and classified.

Everything here is plain Python (no engine): the checks that need data (missing columns, keys
not unique on the one side) live in ``build``. Vocabulary (design document, Appendix A, with the
departures its README lists):

- relationship ``from: t.c, to: u.d, type: "n:1"``: ``t`` is on the many side, ``u`` on the one
  side; ``"1:n"`` is the same link written the other way round; ``"1:1"`` treats ``to`` as the
  one side; ``"n:n"`` needs ``via:``, a link table holding both columns, which becomes a bridge
  (``unlinked: omit`` leaves out the fact rows it links to nothing; by default each gets a row at
  the unknown member);
- ``measures`` (YAML key ``columns``): table -> {column: aggregation}; every other column is a
  dimension attribute;
- ``scd2``: dimension -> {track: [attributes], as_of: column dating each snapshot}.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from regcalc_core.errors import RegcalcInputError

CARDINALITIES = ("1:1", "1:n", "n:1", "n:n")
AGGREGATIONS = ("sum", "avg", "count", "min", "max")
ROLES = ("fact", "dimension", "bridge")
FAR_FUTURE = "9999-12-31"  # valid_to of a current SCD2 version


class StarSpecError(RegcalcInputError):
    """A spec (or its data) the operator cannot build from; the message names the culprit."""


@dataclass(frozen=True)
class TableDef:
    """An input table: its natural key, where it is read from (``star build``) and, optionally,
    the date column that dates each row (a fact's ``date_key``; the SCD2 version it resolves to)."""

    name: str
    key: tuple[str, ...]
    path: str | None = None
    date: str | None = None
    star: str | None = None  # the name in the star (dim_<star>, fact_<star>), when not the table's

    @property
    def star_name(self) -> str:
        return self.star or self.name


@dataclass(frozen=True)
class Relationship:
    from_table: str
    from_column: str
    to_table: str
    to_column: str
    type: str
    via: str | None = None  # n:n: the link table
    role: str | None = None  # names the foreign key when one table points at a dimension twice
    # n:n: a fact row the link table pairs with nothing gets one bridge row at the unknown member
    # (weight 1, the default: every fact row's weights sum to 1), or no bridge row ("omit")
    unlinked: str = "unknown"

    @property
    def text(self) -> str:
        via = f" via {self.via}" if self.via else ""
        return f"{self.from_table}.{self.from_column} -> {self.to_table}.{self.to_column} ({self.type}{via})"

    @property
    def many(self) -> tuple[str, str]:
        """(table, column) on the many side (for 1:1, the referencing side)."""
        return (self.to_table, self.to_column) if self.type == "1:n" else (self.from_table, self.from_column)

    @property
    def one(self) -> tuple[str, str]:
        """(table, column) on the one side: the dimension and its natural key."""
        return (self.from_table, self.from_column) if self.type == "1:n" else (self.to_table, self.to_column)



@dataclass(frozen=True)
class SCD2:
    track: tuple[str, ...]
    as_of: str


@dataclass(frozen=True)
class Aggregate:
    fact: str
    grain: tuple[str, ...]
    name: str


@dataclass(frozen=True)
class Role:
    """Why a table became a fact, a dimension or a bridge."""

    table: str
    role: str
    reason: str

    star: str = ""

    @property
    def output(self) -> str:
        return f"{'dim' if self.role == 'dimension' else self.role}_{self.star or self.table}"


@dataclass(frozen=True)
class StarSpec:
    tables: dict[str, TableDef]
    relationships: tuple[Relationship, ...] = ()
    measures: dict[str, dict[str, str]] = field(default_factory=dict)
    fact: str | None = None
    scd2: dict[str, SCD2] = field(default_factory=dict)
    date_range: tuple[dt.date, dt.date] | None = None
    aggregates: tuple = ()  # raw entries; resolved by ``aggregates_of`` once roles are known
    base_dir: Path | None = None
    version: str | None = None

    # --- reading -------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path) -> StarSpec:
        path = Path(path)
        try:
            doc = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise StarSpecError(f"cannot read star spec {path}: {exc.strerror or exc}") from exc
        except yaml.YAMLError as exc:
            raise StarSpecError(f"star spec {path} is not valid YAML: {exc}") from exc
        return cls.from_dict(doc, base_dir=path.parent, source=str(path))

    @classmethod
    def from_dict(cls, doc, base_dir: Path | None = None, source: str = "star spec") -> StarSpec:
        if not isinstance(doc, dict) or not isinstance(doc.get("tables"), dict) or not doc["tables"]:
            raise StarSpecError(f"{source}: 'tables' must map each table name to {{path, key}}")
        tables = {}
        for name, entry in doc["tables"].items():
            entry = entry or {}
            if not isinstance(entry, dict):
                raise StarSpecError(f"{source}: table {name!r} must be a mapping with 'key' (and 'path')")
            key = entry.get("key")
            key = [key] if isinstance(key, str) else key
            if not key or not all(isinstance(k, str) for k in key):
                raise StarSpecError(f"{source}: table {name!r} needs 'key', its natural key column(s)")
            tables[str(name)] = TableDef(str(name), tuple(key), entry.get("path"), entry.get("date"), entry.get("name"))
        rels = tuple(_relationship(r, source) for r in doc.get("relationships") or [])
        measures = {}
        for table, cols in (doc.get("columns") or {}).items():
            if not isinstance(cols, dict):
                raise StarSpecError(f"{source}: columns.{table} must map measure columns to an aggregation")
            for col, agg in cols.items():
                if agg not in AGGREGATIONS:
                    raise StarSpecError(f"{source}: measure {table}.{col} has aggregation {agg!r}; "
                                        f"expected one of {', '.join(AGGREGATIONS)}")
            measures[str(table)] = {str(c): str(a) for c, a in cols.items()}
        scd2 = {}
        for table, entry in (doc.get("scd2") or {}).items():
            if not isinstance(entry, dict) or not entry.get("as_of") or not entry.get("track"):
                raise StarSpecError(f"{source}: scd2.{table} needs 'track' (attributes) and 'as_of' (snapshot date column)")
            scd2[str(table)] = SCD2(tuple(entry["track"]), str(entry["as_of"]))
        date_range = None
        if doc.get("date_dimension"):
            d = doc["date_dimension"]
            try:
                date_range = (dt.date.fromisoformat(str(d["from"])), dt.date.fromisoformat(str(d["to"])))
            except (KeyError, TypeError, ValueError) as exc:
                raise StarSpecError(f"{source}: date_dimension needs 'from' and 'to' as YYYY-MM-DD ({exc})") from exc
            if date_range[0] > date_range[1]:
                raise StarSpecError(f"{source}: date_dimension 'from' {date_range[0]} is after 'to' {date_range[1]}")
        spec = cls(tables, rels, measures, doc.get("fact"), scd2, date_range, tuple(doc.get("aggregates") or ()),
                   base_dir, str(doc["version"]) if doc.get("version") is not None else None)
        spec.check()
        return spec

    def key_column(self, rel: Relationship) -> str:
        """The surrogate foreign key a relationship adds to its many side: ``<role>_key`` or
        ``<dimension>_key``."""
        return f"{rel.role or self.tables[rel.one[0]].star_name}_key"

    def own_key(self, table: str) -> str:
        """A table's own surrogate key column: ``<name>_key``."""
        return f"{self.tables[table].star_name}_key"

    # --- checks that need no data ---------------------------------------------------------
    def check(self) -> None:
        """Names that resolve, one side on a natural key, no cycle, n:n with a link table."""
        known = ", ".join(sorted(self.tables))

        def table(name: str, what: str) -> TableDef:
            if name not in self.tables:
                raise StarSpecError(f"{what} names table {name!r}, which the spec does not define (tables: {known})")
            return self.tables[name]

        if self.fact is not None:
            table(self.fact, "the fact hint")
        for name in [*self.measures, *self.scd2]:
            table(name, f"columns/scd2 entry {name!r}")
        for rel in self.relationships:
            table(rel.from_table, f"relationship {rel.text}")
            table(rel.to_table, f"relationship {rel.text}")
            if rel.type == "n:n":
                if not rel.via:
                    raise StarSpecError(f"relationship {rel.text}: an n:n needs 'via', the link table holding "
                                        f"{rel.from_column} and {rel.to_column}")
                table(rel.via, f"relationship {rel.text}")
                if self.tables[rel.via].key is None:
                    raise StarSpecError(f"link table {rel.via!r} needs a key")
            one_table, one_column = rel.one
            if self.tables[one_table].key != (one_column,):
                raise StarSpecError(
                    f"relationship {rel.text}: {one_table}.{one_column} is on the one side but is not "
                    f"{one_table}'s natural key ({', '.join(self.tables[one_table].key)})")
        names = [(r.many[0], self.key_column(r)) for r in self.relationships if r.type != "n:n"]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise StarSpecError(f"table {dupes[0][0]!r} would get foreign key {dupes[0][1]!r} twice: give its "
                                "relationships distinct 'as:' role names")
        self._check_cycles()

    def _check_cycles(self) -> None:
        edges: dict[str, list[str]] = {}
        for rel in self.relationships:
            if rel.type != "n:n":
                edges.setdefault(rel.many[0], []).append(rel.one[0])
        state: dict[str, int] = {}

        def visit(node: str, path: list[str]) -> None:
            state[node] = 1
            for nxt in edges.get(node, []):
                if state.get(nxt) == 1:
                    cycle = path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
                    raise StarSpecError(f"relationships form a cycle: {' -> '.join(cycle)} (a star needs a "
                                        "direction from facts to dimensions)")
                if not state.get(nxt):
                    visit(nxt, path + [nxt])
            state[node] = 2

        for node in sorted(edges):
            if not state.get(node):
                visit(node, [node])

    # --- roles ---------------------------------------------------------------------------------
    def classify(self) -> list[Role]:
        """Each table's role and why: link tables of n:n are bridges; the hint and many-side tables
        holding measures are facts; one-side tables are dimensions."""
        roles = {}
        links = {r.via: r for r in self.relationships if r.type == "n:n"}
        one_side: dict[str, list[Relationship]] = {}
        many_side: dict[str, list[Relationship]] = {}
        for rel in self.relationships:
            if rel.type == "n:n":
                continue
            one_side.setdefault(rel.one[0], []).append(rel)
            many_side.setdefault(rel.many[0], []).append(rel)
        for name in self.tables:
            measures = sorted(self.measures.get(name, {}))
            held = f"holds measures {', '.join(measures)}" if measures else "holds no measures"
            if name in links:
                rel = links[name]
                roles[name] = Role(name, "bridge", f"links {rel.from_table} and {rel.to_table}: {rel.text}")
            elif name == self.fact:
                roles[name] = Role(name, "fact", f"named as the fact table (fact: {name}); {held}")
            elif name in many_side and measures:
                roles[name] = Role(name, "fact", f"many side of {many_side[name][0].text}; {held}")
            elif name in one_side:
                roles[name] = Role(name, "dimension", f"one side of {one_side[name][0].text}")
            elif name in many_side:
                roles[name] = Role(name, "fact", f"many side of {many_side[name][0].text}; {held} (a factless fact)")
            elif measures:
                roles[name] = Role(name, "fact", f"{held}; related to no dimension")
            else:
                roles[name] = Role(name, "dimension", "holds no measures and is on no many side")
        for name, rels in one_side.items():
            if roles[name].role != "dimension":
                raise StarSpecError(f"table {name!r} is a {roles[name].role} ({roles[name].reason}) but is also on "
                                    f"the one side of {rels[0].text}: only a dimension can be referenced")
        for name in self.scd2:
            if roles[name].role != "dimension":
                raise StarSpecError(f"scd2.{name}: {name!r} is a {roles[name].role}, not a dimension")
        outputs: dict[str, str] = {}
        for name in self.tables:
            role = roles[name] = Role(name, roles[name].role, roles[name].reason, self.tables[name].star_name)
            if role.output in outputs:
                raise StarSpecError(f"tables {outputs[role.output]!r} and {name!r} would both become {role.output}: "
                                    "give one of them another 'name:'")
            outputs[role.output] = name
        return [roles[n] for n in self.tables]

    def aggregates_of(self, roles: list[Role]) -> list[Aggregate]:
        """The aggregate tables asked for: a grain list applies to the main fact; a mapping names
        its fact (and optionally the table: ``agg_<name>``)."""
        facts = [r.table for r in roles if r.role == "fact"]
        main = self.fact or (facts[0] if len(facts) == 1 else None)
        out = []
        for entry in self.aggregates:
            if isinstance(entry, dict):
                fact, grain, name = entry.get("fact", main), entry.get("grain"), entry.get("name")
            else:
                fact, grain, name = main, entry, None
            if fact not in facts:
                raise StarSpecError(f"aggregate {entry!r}: {'no main fact (give fact:)' if fact is None else repr(fact) + ' is not a fact'}"
                                    f" (facts: {', '.join(facts) or 'none'})")
            if not grain or not all(isinstance(g, str) for g in grain):
                raise StarSpecError(f"aggregate {entry!r}: the grain must be a list of column names")
            out.append(Aggregate(fact, tuple(grain), name or f"{self.tables[fact].star_name}_by_{'_'.join(grain)}"))
        return out


def _relationship(entry, source: str) -> Relationship:
    if not isinstance(entry, dict) or not {"from", "to", "type"} <= set(entry):
        raise StarSpecError(f"{source}: a relationship needs from, to and type: got {entry!r}")

    def end(text, what):
        parts = str(text).split(".")
        if len(parts) != 2 or not all(parts):
            raise StarSpecError(f"{source}: relationship {what} {text!r} must be table.column")
        return parts

    (ft, fc), (tt, tc) = end(entry["from"], "from"), end(entry["to"], "to")
    if entry["type"] not in CARDINALITIES:
        raise StarSpecError(f"{source}: relationship {entry['from']} -> {entry['to']} has type {entry['type']!r}; "
                            f"expected one of {', '.join(CARDINALITIES)}")
    unlinked = entry.get("unlinked", "unknown")
    if unlinked not in ("unknown", "omit"):
        raise StarSpecError(f"{source}: relationship {entry['from']} -> {entry['to']} has unlinked {unlinked!r}; "
                            "expected 'unknown' or 'omit'")
    return Relationship(ft, fc, tt, tc, str(entry["type"]), entry.get("via"), entry.get("as"), unlinked)
