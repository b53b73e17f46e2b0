"""A small, strict reader of TMDL (Tabular Model Definition Language), for the tests of the
Power BI semantic model in ``powerbi/``.

Why our own: the TMDL readers on the package index (``tmdl-parser``, ``powerbi-tmdl-tools``) were
tried and flatten the structure this model needs (a refresh policy, a calculation group and an
``alternateOf`` all come out as loose properties of their table) and accept malformed text. The
reference implementation (``TmdlSerializer`` in Microsoft.AnalysisServices) is .NET only.

What it reads (the grammar of Microsoft's "TMDL overview", restricted to the vocabulary below):

- indentation by tabs (the TMDL default): an object's properties and child objects are one tab
  deeper than its declaration; root objects (``database``, ``model``, ``table``,
  ``relationship``, ``expression``, ``ref`` ...) start at column 0;
- an object declaration is ``<type> <name>`` (``calculationGroup``, ``refreshPolicy``,
  ``alternateOf`` ... have no name), optionally ``= <default>``: a one-line value, or a
  multi-line expression when nothing follows ``=``;
- a property is ``name: value`` (one line; surrounding double quotes stripped, ``""`` unescaped),
  ``name = expression`` (an expression property, one or more lines), or a bare ``name`` (a
  boolean set to true);
- a multi-line expression is every following line indented at least two tabs deeper than the
  object that owns it (blank lines included, trailing blank lines dropped), or the text between
  ``````` delimiters, dedented to its common indentation;
- names are bare (no whitespace, ``.``, ``=``, ``:`` or ``'``) or single-quoted with ``''``
  escaping a quote; ``/// text`` lines describe the next object; ``ref <type> <name>`` lines of
  model.tmdl only fix an order and are kept as ``ref`` nodes.

It is strict where a typo would otherwise pass silently: an unknown object type or property name
for its parent, a line indented more than one level below its parent, spaces in the indentation,
an unterminated ``````` block, a duplicate property or a duplicate object of the same type and
name under one parent all raise :class:`TmdlError` naming the file and line.

Limits: only the vocabulary below is known (what this model and Power BI Desktop's usual output
use); embedded DAX and M are returned as text, not parsed here (DAX is parsed by the tests with
``sidemantic-dax``; the M is read with a few documented patterns); nothing is checked that
needs the engine (data types of expressions, whether a policy's partitions can be created, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

# object type -> the child object types it may hold ("" is the root of a file)
CHILDREN: dict[str, set[str]] = {
    "": {"database", "model", "table", "relationship", "expression", "role", "culture", "perspective",
         "queryGroup", "annotation", "ref", "dataSource"},
    "database": {"annotation"},
    "model": {"annotation", "dataAccessOptions", "queryGroup"},
    "dataAccessOptions": set(),
    "queryGroup": {"annotation"},
    "table": {"column", "measure", "partition", "hierarchy", "calculationGroup", "refreshPolicy", "annotation",
              "changedProperty", "extendedProperty"},
    "column": {"annotation", "alternateOf", "changedProperty", "variation", "relatedColumnDetails",
               "extendedProperty"},
    "relatedColumnDetails": set(),
    "extendedProperty": set(),
    "alternateOf": set(),
    "variation": set(),
    "measure": {"annotation", "formatStringDefinition", "kpi", "changedProperty", "detailRowsDefinition"},
    "formatStringDefinition": set(),
    "detailRowsDefinition": set(),
    "kpi": set(),
    "partition": {"annotation"},
    "calculationGroup": {"calculationItem", "annotation", "multipleOrEmptySelectionExpression", "noSelectionExpression"},
    "calculationItem": {"formatStringDefinition", "annotation"},
    "multipleOrEmptySelectionExpression": set(),
    "noSelectionExpression": set(),
    "refreshPolicy": {"annotation"},
    "hierarchy": {"level", "annotation"},
    "level": {"annotation"},
    "relationship": {"annotation"},
    "expression": {"annotation"},
    "role": {"tablePermission", "member", "annotation"},
    "tablePermission": set(),
    "member": set(),
    "culture": {"linguisticMetadata"},
    "linguisticMetadata": set(),
    "perspective": {"perspectiveTable", "annotation"},
    "perspectiveTable": {"perspectiveColumn", "perspectiveMeasure", "perspectiveHierarchy"},
    "perspectiveColumn": set(), "perspectiveMeasure": set(), "perspectiveHierarchy": set(),
    "annotation": set(),
    "changedProperty": set(),
    "ref": set(),
    "dataSource": {"annotation"},
}
# object types declared without a name
UNNAMED = {"dataAccessOptions", "calculationGroup", "refreshPolicy", "alternateOf", "kpi",
           "formatStringDefinition", "detailRowsDefinition", "multipleOrEmptySelectionExpression",
           "noSelectionExpression", "changedProperty", "linguisticMetadata", "relatedColumnDetails"}
# object type -> its property names (TOM's, camelCase; TMDL reads them case-insensitively)
PROPERTIES: dict[str, set[str]] = {
    "database": {"compatibilityLevel", "compatibilityMode", "language", "collation"},
    "model": {"culture", "defaultPowerBIDataSourceVersion", "discourageImplicitMeasures", "sourceQueryCulture",
              "defaultMode", "defaultDataView", "forceUniqueNames", "collation", "dataSourceVariablesOverrideBehavior"},
    "dataAccessOptions": {"legacyRedirects", "returnErrorValuesAsNull", "fastCombine"},
    "queryGroup": {"folder"},
    "table": {"isHidden", "isPrivate", "lineageTag", "sourceLineageTag", "dataCategory", "showAsVariationsOnly",
              "excludeFromModelRefresh", "alternateSourcePrecedence", "defaultDetailRowsDefinition"},
    "column": {"dataType", "isHidden", "isKey", "isNullable", "isUnique", "formatString", "sourceColumn", "summarizeBy",
               "sortByColumn", "displayFolder", "dataCategory", "lineageTag", "sourceLineageTag", "isAvailableInMdx",
               "isDefaultLabel", "isDefaultImage", "encodingHint", "sourceProviderType", "isNameInferred",
               "isDataTypeInferred", "keepUniqueRows", "expression", "type"},
    "alternateOf": {"summarization", "baseColumn", "baseTable"},
    "relatedColumnDetails": {"groupByColumn"},
    "extendedProperty": set(),
    "variation": {"isDefault", "relationship", "defaultHierarchy", "defaultColumn"},
    "measure": {"formatString", "displayFolder", "isHidden", "lineageTag", "sourceLineageTag", "dataCategory",
                "isSimpleMeasure", "dataType"},
    "formatStringDefinition": set(),
    "detailRowsDefinition": set(),
    "kpi": {"description", "targetDescription", "targetFormatString", "statusGraphic", "statusDescription",
            "statusExpression", "targetExpression", "trendGraphic", "trendDescription", "trendExpression"},
    "partition": {"mode", "source", "queryGroup", "dataView", "retainDataTillForceCalculate"},
    "calculationGroup": {"precedence"},
    "calculationItem": {"ordinal"},
    "multipleOrEmptySelectionExpression": set(),
    "noSelectionExpression": set(),
    "refreshPolicy": {"policyType", "mode", "rollingWindowGranularity", "rollingWindowPeriods",
                      "incrementalGranularity", "incrementalPeriods", "incrementalPeriodsOffset",
                      "pollingExpression", "sourceExpression"},
    "hierarchy": {"isHidden", "displayFolder", "lineageTag", "hideMembers"},
    "level": {"column", "ordinal", "lineageTag"},
    "relationship": {"fromColumn", "toColumn", "isActive", "crossFilteringBehavior", "fromCardinality",
                     "toCardinality", "relyOnReferentialIntegrity", "securityFilteringBehavior", "joinOnDateBehavior"},
    "expression": {"lineageTag", "queryGroup", "kind", "sourceLineageTag"},
    "role": {"modelPermission"},
    "tablePermission": {"metadataPermission"},
    "member": {"memberType", "identityProvider"},
    "culture": set(),
    "linguisticMetadata": {"contentType"},
    "perspective": set(),
    "perspectiveTable": {"includeAll"},
    "perspectiveColumn": set(), "perspectiveMeasure": set(), "perspectiveHierarchy": set(),
    "annotation": set(),
    "changedProperty": set(),
    "ref": set(),
    "dataSource": {"type", "connectionString", "provider", "impersonationMode", "account"},
}
# properties whose value is an expression (written after '=', possibly over several lines)
EXPRESSION_PROPERTIES = {"source", "sourceExpression", "pollingExpression", "expression", "statusExpression",
                         "targetExpression", "trendExpression"}

_NAME = r"(?:'(?:[^']|'')*'|[^\s'=:.][^\s'=:]*)"
_DECL = re.compile(rf"^(?P<type>[A-Za-z]+)(?:\s+(?P<name>{_NAME}))?\s*(?:=(?P<default>.*))?$")
_PROP = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9]*)\s*(?P<sep>[:=])(?P<value>.*)$")
_BARE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


class TmdlError(ValueError):
    """Malformed TMDL; the message names the file and line."""


@dataclass
class Node:
    """One TMDL object: its type, name, default value or expression (``partition x = m`` ->
    ``"m"``, ``measure x = <DAX>`` -> the DAX), properties, child objects and description."""

    type: str
    name: str | None = None
    default: str | None = None
    properties: dict[str, object] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)
    description: str | None = None
    file: str = ""
    line: int = 0

    def all(self, type_: str) -> list[Node]:
        return [c for c in self.children if c.type == type_]

    def one(self, type_: str) -> Node | None:
        found = self.all(type_)
        return found[0] if found else None

    def child(self, type_: str, name: str) -> Node:
        for c in self.children:
            if c.type == type_ and c.name == name:
                return c
        raise KeyError(f"{self.type} {self.name!r} has no {type_} {name!r}")

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def unquote_name(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == "'" and text[-1] == "'":
        return text[1:-1].replace("''", "'")
    return text


def split_reference(text: str) -> tuple[str, str]:
    """``Table.Column`` / ``'My table'.'My column'`` -> (table, column)."""
    m = re.fullmatch(rf"\s*({_NAME})\.({_NAME})\s*", text)
    if not m:
        raise TmdlError(f"not a qualified Table.Column reference: {text!r}")
    return unquote_name(m.group(1)), unquote_name(m.group(2))


def _value(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1].replace('""', '"')
    return text


def _tabs(line: str) -> int:
    return len(line) - len(line.lstrip("\t"))


def _depth(line: str, where: str) -> int:
    """The nesting depth of a structural line (tabs only: spaces there are an error; inside an
    expression, spaces after the tabs are the expression's own indentation)."""
    if line[_tabs(line):][:1] == " ":
        raise TmdlError(f"{where}: indentation must be tabs, not spaces")
    return _tabs(line)


def parse(text: str, file: str = "<tmdl>") -> list[Node]:
    """Parse one TMDL document into its root objects."""
    lines = text.replace("\r\n", "\n").split("\n")
    roots: list[Node] = []
    stack: list[tuple[int, Node]] = []  # (depth of the declaration, node)
    description: list[str] = []
    i = 0

    def where(n: int) -> str:
        return f"{file}:{n + 1}"

    def read_expression(start: int, owner_depth: int, first: str) -> tuple[str, int]:
        """The expression starting after '=' (``first`` is what follows '=' on the line)."""
        first = first.strip()
        if first.startswith("```"):
            if first != "```":
                raise TmdlError(f"{where(start)}: nothing may follow the opening ```")
            body, j = [], start + 1
            while j < len(lines) and lines[j].strip() != "```":
                body.append(lines[j])
                j += 1
            if j == len(lines):
                raise TmdlError(f"{where(start)}: unterminated ``` expression")
            margin = len(lines[j]) - len(lines[j].lstrip("\t "))
            return "\n".join(b[margin:] if b[:margin].strip() == "" else b.lstrip() for b in body).rstrip("\n"), j + 1
        if first:
            return first, start + 1
        body, j = [], start + 1
        while j < len(lines):
            line = lines[j]
            if line.strip() and _tabs(line) < owner_depth + 2:
                break
            body.append(line)
            j += 1
        while body and not body[-1].strip():
            body.pop()
        if not body:
            raise TmdlError(f"{where(start)}: '=' is followed by no expression")
        margin = min(_tabs(b) for b in body if b.strip())
        return "\n".join(b[margin:] if b.strip() else "" for b in body), j

    while i < len(lines):
        raw = lines[i]
        if not raw.strip():
            i += 1
            continue
        depth = _depth(raw, where(i))
        content = raw.strip()
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parent = stack[-1][1] if stack else None
        parent_depth = stack[-1][0] if stack else -1
        if depth > parent_depth + 1:
            raise TmdlError(f"{where(i)}: indented more than one level below its parent")
        if content.startswith("///"):
            description.append(content[3:].strip())
            i += 1
            continue
        parent_type = parent.type if parent else ""
        if content.startswith("ref ") and "ref" in CHILDREN.get(parent_type, set()):
            (parent.children if parent else roots).append(Node("ref", content[4:].strip(), file=file, line=i + 1))
            i += 1
            continue
        decl = _DECL.match(content)
        word = content.split()[0].split(":")[0].split("=")[0]
        if decl and decl.group("type") in CHILDREN.get(parent_type, set()) and (
                decl.group("type") in UNNAMED or decl.group("name")):
            type_ = decl.group("type")
            name = unquote_name(decl.group("name")) if decl.group("name") else None
            if type_ in UNNAMED and name is not None:
                raise TmdlError(f"{where(i)}: {type_} takes no name")
            node = Node(type_, name, file=file, line=i + 1, description="\n".join(description) or None)
            description = []
            siblings = parent.children if parent else roots
            if name is not None and type_ not in ("annotation", "changedProperty") and any(
                    s.type == type_ and s.name == name for s in siblings):
                raise TmdlError(f"{where(i)}: duplicate {type_} {name!r}")
            if decl.group("default") is not None:
                node.default, i = read_expression(i, depth, decl.group("default"))
            else:
                i += 1
            siblings.append(node)
            stack.append((depth, node))
            continue
        if description:
            raise TmdlError(f"{where(i)}: a /// description must be followed by an object declaration")
        if parent is None:
            raise TmdlError(f"{where(i)}: {word!r} is not a root object type ({', '.join(sorted(CHILDREN['']))})")
        prop = _PROP.match(content)
        allowed = PROPERTIES.get(parent.type, set())
        if prop:
            name, sep = prop.group("name"), prop.group("sep")
            if name not in allowed:
                raise TmdlError(f"{where(i)}: {name!r} is not a property or child of {parent.type}")
            if name in parent.properties:
                raise TmdlError(f"{where(i)}: property {name!r} set twice on {parent.type} {parent.name!r}")
            if sep == "=":
                if name not in EXPRESSION_PROPERTIES:
                    raise TmdlError(f"{where(i)}: {name!r} takes ':' (it is not an expression)")
                parent.properties[name], i = read_expression(i, parent_depth, prop.group("value"))
            else:
                if name in EXPRESSION_PROPERTIES:
                    raise TmdlError(f"{where(i)}: {name!r} is an expression: write '{name} = ...'")
                parent.properties[name] = _value(prop.group("value"))
                i += 1
            continue
        if _BARE.match(content):
            if content not in allowed:
                raise TmdlError(f"{where(i)}: {content!r} is not a property or child of {parent.type}")
            if content in parent.properties:
                raise TmdlError(f"{where(i)}: property {content!r} set twice on {parent.type} {parent.name!r}")
            parent.properties[content] = True
            i += 1
            continue
        raise TmdlError(f"{where(i)}: cannot read {content!r} inside {parent.type} {parent.name or ''}".rstrip())
    if description:
        raise TmdlError(f"{file}: the file ends with a /// description and no object")
    return roots


# --- a model read from a definition folder ---------------------------------------------------


@dataclass
class Model:
    """The objects of a TMDL ``definition/`` folder, merged across its files."""

    database: Node
    model: Node
    tables: dict[str, Node]
    relationships: list[Node]
    expressions: dict[str, Node]
    refs: list[Node]

    def columns(self, table: str) -> dict[str, Node]:
        return {c.name: c for c in self.tables[table].all("column")}

    def measures(self) -> dict[str, tuple[str, Node]]:
        """measure name -> (table, node)."""
        return {m.name: (t.name, m) for t in self.tables.values() for m in t.all("measure")}

    def partition(self, table: str) -> Node:
        parts = self.tables[table].all("partition")
        if len(parts) != 1:
            raise TmdlError(f"table {table!r} has {len(parts)} partitions; expected one")
        return parts[0]


def load(definition: str | Path) -> Model:
    """Read ``database.tmdl``, ``model.tmdl``, ``relationships.tmdl``, ``expressions.tmdl`` and
    ``tables/*.tmdl`` (and any other ``*.tmdl`` below) of a definition folder."""
    definition = Path(definition)
    roots: list[Node] = []
    for path in sorted(definition.rglob("*.tmdl")):
        roots += parse(path.read_text(encoding="utf-8"), str(path.relative_to(definition)))
    by_type: dict[str, list[Node]] = {}
    for node in roots:
        by_type.setdefault(node.type, []).append(node)
    for single in ("database", "model"):
        if len(by_type.get(single, [])) != 1:
            raise TmdlError(f"{definition}: expected exactly one {single} object, found {len(by_type.get(single, []))}")
    tables: dict[str, Node] = {}
    for t in by_type.get("table", []):
        if t.name in tables:
            raise TmdlError(f"{t.where}: table {t.name!r} declared twice")
        tables[t.name] = t
    expressions: dict[str, Node] = {}
    for e in by_type.get("expression", []):
        if e.name in expressions:
            raise TmdlError(f"{e.where}: expression {e.name!r} declared twice")
        expressions[e.name] = e
    names = [r.name for r in by_type.get("relationship", [])]
    if len(names) != len(set(names)):
        raise TmdlError(f"{definition}: duplicate relationship names")
    return Model(by_type["database"][0], by_type["model"][0], tables, by_type.get("relationship", []), expressions,
                 by_type.get("ref", []))


# --- the M of this model's partitions --------------------------------------------------------
# Power Query M is not parsed: every partition of the model is written in one shape, read here
# with two patterns (and the tests fail when a partition does not follow it):
#     Source = WarehouseTable("<warehouse table>"), [InRange = Table.SelectRows(...),]
#     Columns = Table.SelectColumns(<step>, {"<column>", ...})
_M_TABLE = re.compile(r'\bWarehouseTable\(\s*"([^"]+)"\s*\)')
_M_COLUMNS = re.compile(r"\bTable\.SelectColumns\(\s*\w+\s*,\s*\{([^}]*)\}\s*\)", re.S)


def m_warehouse_table(m: str) -> str:
    """The warehouse table a partition's M reads (its one ``WarehouseTable("...")`` call)."""
    found = _M_TABLE.findall(m)
    if len(found) != 1:
        raise TmdlError(f"expected one WarehouseTable(\"...\") call in the M, found {len(found)}:\n{m}")
    return found[0]


def m_selected_columns(m: str) -> list[str]:
    """The columns a partition's M keeps (its one ``Table.SelectColumns(step, {...})``)."""
    found = _M_COLUMNS.findall(m)
    if len(found) != 1:
        raise TmdlError(f"expected one Table.SelectColumns(step, {{...}}) in the M, found {len(found)}:\n{m}")
    items = [item.strip() for item in found[0].split(",") if item.strip()]
    if not all(len(i) >= 2 and i[0] == i[-1] == '"' for i in items):
        raise TmdlError(f"Table.SelectColumns lists something else than text literals: {found[0]}")
    return [i[1:-1] for i in items]
