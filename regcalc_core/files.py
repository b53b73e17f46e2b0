"""Reading what a delivered file says about itself, without an engine."""

from __future__ import annotations


def csv_header(path: str) -> list[str]:
    """The column names of a CSV file's header row (a byte-order mark is not part of the first
    name); an empty list for an empty file."""
    import csv

    with open(path, newline="", encoding="utf-8-sig") as fh:
        return [c.strip() for c in next(csv.reader(fh), [])]
