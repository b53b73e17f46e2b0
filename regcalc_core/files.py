"""Reading what a delivered file says about itself, without an engine."""

from __future__ import annotations


def csv_header(path: str) -> list[str]:
    """The column names of a CSV file's header row (a byte-order mark is not part of the first
    name); an empty list for an empty file."""
    import csv

    with open(path, newline="", encoding="utf-8-sig") as fh:
        return [c.strip() for c in next(csv.reader(fh), [])]


def replace_dir(staged: str, target: str) -> None:
    """Put the directory ``staged`` in the place of ``target`` (which may not exist): a rename
    each, so a reader sees the old directory or the new one, never a half-written one (between the
    two renames, briefly, neither). ``staged`` must be on the same file system."""
    import os
    import shutil
    import uuid

    old = None
    if os.path.lexists(target):
        old = os.path.join(os.path.dirname(target), f".old-{os.path.basename(target)}-{uuid.uuid4().hex[:12]}")
        os.rename(target, old)
    os.rename(staged, target)
    if old:
        shutil.rmtree(old, ignore_errors=True) if os.path.isdir(old) and not os.path.islink(old) else os.remove(old)
