"""The dashboard's parts on hand-worked inputs: the per-rule replay of a position's trail, the
contributions it changes, the page's formatting, and the PNG decoder the browser test relies on."""

from __future__ import annotations

import struct
import zlib

import pytest

from regcalc_cli.dashboard_html import nice_ticks, signed
from regcalc_cli.waterfall import deal_deltas, replay_positions
from regcalc_tests.browser import colour_counts, decode_png


def _entry(step, rule, field, before, after, clamped=False):
    return {"rule_id": rule, "version": 1, "step": step, "field": field, "before": before, "after": after, "clamped": clamped}


POSITION = {  # an L1 security that also has an outflow rate (fields a rule may change)
    "hqla_level": "L1", "base_amount": 100.0, "base_haircut": 0.1, "base_outflow_rate": 0.5, "base_inflow_rate": None,
    "base_asf_factor": None, "base_rsf_factor": 0.05,
    "adjustment_trail": [  # deliberately out of order: the replay sorts by step
        _entry(3, "R2", "haircut", 0.1, 0.2),
        _entry(1, "R1", "amount", 100.0, 90.0),
        _entry(2, "R2", "outflow_rate", 0.5, 1.1),
        _entry(4, "R2", "outflow_rate", 1.1, 1.0, clamped=True),  # the stage's clamp, attributed to R2
    ],
}


def test_replay_walks_the_trail_rule_by_rule():
    states, seen = replay_positions([POSITION])
    assert seen == {"R1@v1": (1, 1), "R2@v1": (2, 3)}  # first step (order), values changed
    assert [(s["rule"], s["sign"], s["amount"], s["haircut"], s["outflow_rate"]) for s in states] == [
        ("R1@v1", -1.0, 100.0, 0.1, 0.5), ("R1@v1", 1.0, 90.0, 0.1, 0.5),
        ("R2@v1", -1.0, 90.0, 0.1, 0.5), ("R2@v1", 1.0, 90.0, 0.2, 1.1),
        ("R2@v1", -1.0, 90.0, 0.2, 1.1), ("R2@v1", 1.0, 90.0, 0.2, 1.0),
    ]


def test_rule_deltas_by_hand(duckdb_engine):
    states, _ = replay_positions([POSITION])
    deltas = deal_deltas(duckdb_engine, {"LE_X": states})
    # R1: amount 100 -> 90: HQLA_L1 -10 x 0.9, OUTFLOWS -10 x 0.5, RSF -10 x 0.05
    assert deltas[("LE_X", "R1@v1")] == pytest.approx({"HQLA_L1": -9.0, "OUTFLOWS": -5.0, "RSF": -0.5}, abs=1e-9)
    # R2 with its clamp: outflow 0.5 -> 1.0 on 90, haircut 0.1 -> 0.2 on 90
    assert deltas[("LE_X", "R2@v1")] == pytest.approx({"HQLA_L1": -9.0, "OUTFLOWS": 45.0, "RSF": 0.0}, abs=1e-9)


def test_signed_and_ticks():
    assert signed(-1e-17) == "+0.0000" and signed(-0.01234) == "-0.0123" and signed(None) == "n/a"
    ticks = nice_ticks(0.0, 1.37)
    assert ticks[0] == 0.0 and ticks[-1] >= 1.37 and len(ticks) <= 8
    assert all(round(b - a, 9) == round(ticks[1] - ticks[0], 9) for a, b in zip(ticks, ticks[1:]))


def _png(rows: list[bytes], width: int, filters: list[int]) -> bytes:
    """An RGB PNG of ``rows`` written with the given row filters (a reference encoder)."""
    bpp, out, prev = 3, b"", bytes(width * 3)
    for row, kind in zip(rows, filters):
        enc = bytearray()
        for i, value in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            paeth = a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else b if abs(p - b) <= abs(p - c) else c
            predictor = [0, a, b, (a + b) // 2, paeth][kind]
            enc.append((value - predictor) & 255)
        out += bytes([kind]) + bytes(enc)
        prev = row

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, len(rows), 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(out)) + chunk(b"IEND", b"")


def test_png_decoder_reads_every_row_filter():
    width = 7
    rows = [bytes((x * 37 + y * 11 + c * 5) % 256 for x in range(width) for c in range(3)) for y in range(10)]
    png = _png(rows, width, [0, 1, 2, 3, 4, 4, 3, 2, 1, 0])
    assert decode_png(png) == (width, 10, rows)
    assert sum(colour_counts(png).values()) == width * 10
    with pytest.raises(ValueError):
        decode_png(png[:-5] + b"XXXXX")  # a damaged chunk is refused, not read as pixels
