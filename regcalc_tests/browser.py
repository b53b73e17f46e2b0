"""A real headless Chromium for the tests that look at pages, and a PNG decoder to judge a screenshot.

The browser is the machine's own ``/usr/bin/chromium`` (installed from the package manager by
``make chromium``, part of ``make test``), driven by Playwright, which is never allowed to
download one. A page's console errors, uncaught exceptions and every request it makes are
collected, so a test can require none but the page itself.

Pillow is not a dependency: ``decode_png`` reads a screenshot with the standard library (zlib and
the five PNG row filters, 8-bit RGB / RGBA, not interlaced: what Chromium writes).
"""

from __future__ import annotations

import os
import shutil
import struct
import zlib
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class PageLog:
    """What a page did: console messages by type, uncaught errors, requested URLs."""

    console: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    @property
    def console_errors(self) -> list[str]:
        return [text for kind, text in self.console if kind == "error"] + self.errors


@contextmanager
def chromium_page(width: int = 1400, height: int = 900):
    """(page, log) in a fresh headless Chromium; skips the test if the browser is not installed."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs it from the package manager")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            log = PageLog()
            page.on("console", lambda m: log.console.append((m.type, m.text)))
            page.on("pageerror", lambda e: log.errors.append(str(e)))
            page.on("request", lambda r: log.requests.append(r.url))
            yield page, log
        finally:
            browser.close()


def artifacts_dir(name: str) -> Path:
    """A test's own directory of artifacts (screenshots), created: ``$REGCALC_ARTIFACTS/name``,
    by default ``test-artifacts/name`` at the repository root (git-ignored)."""
    root = Path(os.environ.get("REGCALC_ARTIFACTS") or Path(__file__).resolve().parents[1] / "test-artifacts")
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def keep_artifact(path: Path) -> None:
    """Copy a test artifact (a screenshot) to ``$REGCALC_ARTIFACTS`` when it is set."""
    target = os.environ.get("REGCALC_ARTIFACTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(target) / path.name)


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB bytes) of an 8-bit RGB or RGBA, non-interlaced PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    pos, chunks, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if zlib.crc32(kind + body) != struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0]:
            raise ValueError(f"bad CRC in chunk {kind!r}")
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        elif kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour}, interlace {interlace}")
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(b"".join(chunks)), width * bpp
    prev, rows = bytearray(stride), []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:  # Sub
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif kind == 2:  # Up
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif kind == 3:  # Average
            for i in range(stride):
                line[i] = (line[i] + (((line[i - bpp] if i >= bpp else 0) + prev[i]) >> 1)) & 255
        elif kind == 4:  # Paeth
            for i in range(stride):
                a, b, c = (line[i - bpp] if i >= bpp else 0), prev[i], (prev[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        elif kind != 0:
            raise ValueError(f"bad PNG row filter {kind}")
        prev = line
        rows.append(bytes(line) if bpp == 3 else bytes(v for i, v in enumerate(line) if i % 4 != 3))
    return width, height, rows


def colour_counts(png: bytes) -> Counter:
    """How many pixels of each RGB colour a PNG has."""
    _, _, rows = decode_png(png)
    return Counter(row[i:i + 3] for row in rows for i in range(0, len(row), 3))
