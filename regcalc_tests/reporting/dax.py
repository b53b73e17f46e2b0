"""DAX checks for the Power BI semantic model's tests: parsing, references, literals, and a small
evaluator of the metric measures over the warehouse.

Parsing is done by ``sidemantic-dax`` (PyPI; the Python binding of the Rust ``dax-parser``
crate; AGPL-3.0, a test-only dependency in the ``test`` extra, never imported by the package): a
real DAX lexer and parser that works offline. On top of its parse:

- ``validate_expression(..., report_unrecognized_functions=True)``: every function is in its
  bundled DAX function catalog and called with an accepted number of arguments;
- ``validate_expression_against_model``: every ``'Table'[Column]``, ``Table[Column]`` and
  ``[Measure]`` resolves to a column or measure of the model, without ambiguity (so no measure
  may share a name with a column);
- ours: the functions of :data:`COLUMN_FUNCTIONS` (``SUM``, ``SELECTEDVALUE`` ...) are given a
  column, not a measure (``'T'[x]`` may name the measure ``x`` of ``T``, which the parser accepts);
- :func:`literal_filters`: every ``'Table'[column] = "text"`` (and ``SELECTEDVALUE(col, "text")``)
  names a value the tests then look up in the warehouse column behind it.

What it cannot tell: whether an expression returns what the business means, nor anything that
needs the engine (data types at run time, context transition subtleties, performance). The
evaluator below answers the first question for the measures it knows how to read, against the
golden figures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import sidemantic_dax as sd
from sidemantic_dax import ast


# functions whose first argument must be a column (a qualified reference could name a measure)
COLUMN_FUNCTIONS = {"SUM", "AVERAGE", "MIN", "MAX", "COUNT", "COUNTA", "COUNTBLANK", "DISTINCTCOUNT",
                    "DISTINCTCOUNTNOBLANK", "SELECTEDVALUE", "HASONEVALUE", "HASONEFILTER", "VALUES", "DISTINCT",
                    "ISFILTERED", "ISCROSSFILTERED", "ISINSCOPE", "FIRSTNONBLANK", "LASTNONBLANK"}


class DaxError(ValueError):
    pass


def parse(text: str):
    try:
        return sd.parse_expression(text)
    except ValueError as exc:
        raise DaxError(f"does not parse: {exc}") from exc


def problems(text: str, metadata: sd.ModelMetadata) -> list[str]:
    """Everything wrong with one expression: empty list when it parses, calls known functions
    correctly and references only the model's columns and measures."""
    try:
        parse(text)
    except DaxError as exc:
        return [str(exc)]
    found = [f"{i.code.value}: {i.message}" for i in sd.validate_expression(text, report_unrecognized_functions=True)]
    found += [f"{i.code.value}: {i.message}" for i in sd.validate_expression_against_model(text, metadata)]
    columns = {(t.name.lower(), c.lower()) for t in metadata.tables for c in t.columns}
    for n in walk(parse(text)):  # 'T'[x] also names T's measure x: these functions need a column
        if (isinstance(n, ast.FunctionCall) and n.name.upper() in COLUMN_FUNCTIONS and n.args
                and isinstance(n.args[0], ast.TableColumnRef)
                and (n.args[0].table.name.lower(), n.args[0].column.lower()) not in columns):
            found.append(f"ExpectedColumn: {n.name} takes a column; {n.args[0].table.name}[{n.args[0].column}] is not one")
    return found


def walk(node) -> Iterator[object]:
    """Every AST node below ``node`` (itself included), depth first."""
    yield node
    if dataclasses.is_dataclass(node):
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            for item in value if isinstance(value, list) else [value]:
                if dataclasses.is_dataclass(item):
                    yield from walk(item)


def column_refs(tree) -> set[tuple[str, str]]:
    return {(n.table.name, n.column) for n in walk(tree) if isinstance(n, ast.TableColumnRef)}


def measure_refs(tree) -> set[str]:
    return {n.name for n in walk(tree) if isinstance(n, ast.BracketRef)}


def functions(tree) -> set[str]:
    return {n.name.upper() for n in walk(tree) if isinstance(n, ast.FunctionCall)}


def literal_filters(tree) -> set[tuple[str, str, str]]:
    """(table, column, text) for each ``'T'[c] = "text"``, ``SELECTEDVALUE('T'[c], "text")`` and
    ``SELECTEDVALUE('T'[c], ...) = "text"``: text values the expression expects in a column."""
    found = set()
    for n in walk(tree):
        if isinstance(n, ast.Binary) and n.op in (ast.BinaryOp.eq, ast.BinaryOp.strict_eq, ast.BinaryOp.neq):
            for col, lit in ((n.left, n.right), (n.right, n.left)):
                if isinstance(col, ast.FunctionCall) and col.name.upper() == "SELECTEDVALUE" and col.args:
                    col = col.args[0]
                if isinstance(col, ast.TableColumnRef) and isinstance(lit, ast.String):
                    found.add((col.table.name, col.column, lit.value))
        if (isinstance(n, ast.FunctionCall) and n.name.upper() == "SELECTEDVALUE" and len(n.args) == 2
                and isinstance(n.args[0], ast.TableColumnRef) and isinstance(n.args[1], ast.String)):
            found.add((n.args[0].table.name, n.args[0].column, n.args[1].value))
    return found


# --- a small evaluator ------------------------------------------------------------------------


class Unsupported(DaxError):
    """An expression outside the subset the evaluator reads."""


class Evaluator:
    """Evaluates measures under a filter context of equality filters on model columns, the way
    the engine would, for the subset of DAX the metric measures and the calculation group use:
    numbers and text, variables, + - * /, measure references, ``SUM`` of a column, ``DIVIDE``,
    ``SELECTEDVALUE``, ``SELECTEDMEASURE`` and ``CALCULATE`` with ``'T'[c] = value`` filters
    (each replaces the filter on its column). A calculation item is applied to the measure it is
    evaluated with, once (the engine applies an item to a measure reference and then no more).

    ``total(table, column, filters)`` must return the sum of a model column under filters on
    model columns; ``values(table, column, filters)`` the distinct values of a column of that
    table under the filters on the same table. Anything else raises :class:`Unsupported`.
    """

    def __init__(self, measures: dict[str, str], total: Callable, values: Callable):
        self.measures = {name: parse(text) for name, text in measures.items()}
        self.total = total
        self.values = values

    def measure(self, name: str, filters: dict | None = None, item: str | None = None):
        """``[name]`` under ``filters`` ({(table, column): value}); ``item`` is a calculation item's
        DAX applied to it."""
        filters = dict(filters or {})
        if item is not None:
            return self._eval(parse(item), filters, {}, name)
        return self._eval(self.measures[name], filters, {}, name)

    def _eval(self, node, filters, env, selected):
        ev = lambda n, f=filters, e=env: self._eval(n, f, e, selected)  # noqa: E731
        if isinstance(node, ast.Number):
            return float(node.value)
        if isinstance(node, ast.String):
            return node.value
        if isinstance(node, ast.Paren):
            return ev(node.expr)
        if isinstance(node, ast.Identifier):
            if node.name not in env:
                raise Unsupported(f"unknown variable {node.name}")
            return env[node.name]
        if isinstance(node, ast.VarBlock):
            inner = dict(env)
            for decl in node.decls:
                inner[decl.name] = ev(decl.expr, filters, inner)
            return ev(node.body, filters, inner)
        if isinstance(node, ast.Unary) and node.op == ast.UnaryOp.minus:
            value = ev(node.expr)
            return None if value is None else -value
        if isinstance(node, ast.Binary) and node.op in (ast.BinaryOp.add, ast.BinaryOp.sub, ast.BinaryOp.mul,
                                                        ast.BinaryOp.div):
            left, right = ev(node.left), ev(node.right)
            if left is None and right is None:
                return None  # BLANK op BLANK is BLANK; otherwise BLANK counts as 0
            left, right = left or 0.0, right or 0.0
            if node.op == ast.BinaryOp.add:
                return left + right
            if node.op == ast.BinaryOp.sub:
                return left - right
            if node.op == ast.BinaryOp.mul:
                return left * right
            return left / right
        if isinstance(node, ast.BracketRef):
            if node.name not in self.measures:
                raise Unsupported(f"unknown measure [{node.name}]")
            return self._eval(self.measures[node.name], filters, {}, node.name)
        if isinstance(node, ast.FunctionCall):
            name, args = node.name.upper(), node.args
            if name == "SELECTEDMEASURE" and not args:
                return self._eval(self.measures[selected], filters, {}, selected)
            if name == "SUM" and len(args) == 1 and isinstance(args[0], ast.TableColumnRef):
                return self.total(args[0].table.name, args[0].column, filters)
            if name == "DIVIDE" and len(args) in (2, 3):
                num, den = ev(args[0]), ev(args[1])
                if not den:
                    return ev(args[2]) if len(args) == 3 else None
                return None if num is None else num / den
            if name == "SELECTEDVALUE" and len(args) in (1, 2) and isinstance(args[0], ast.TableColumnRef):
                key = (args[0].table.name, args[0].column)
                found = [filters[key]] if key in filters else self.values(*key, filters)
                if len(found) == 1:
                    return found[0]
                return ev(args[1]) if len(args) == 2 else None
            if name == "CALCULATE" and args:
                inner = dict(filters)
                for f in args[1:]:
                    if not (isinstance(f, ast.Binary) and f.op == ast.BinaryOp.eq
                            and isinstance(f.left, ast.TableColumnRef)):
                        raise Unsupported(f"CALCULATE filter {f}")
                    inner[(f.left.table.name, f.left.column)] = ev(f.right)
                return self._eval(args[0], inner, env, selected)
        raise Unsupported(f"{type(node).__name__}: {node}")
