"""Parse a written report.html with html.parser: its tables, images and figure captions."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path


@dataclass
class ParsedReport:
    tables: dict[str, list[list[str]]] = field(default_factory=dict)
    images: list[str] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    verdict: str = ""
    verdict_items: list[str] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)  # a table's notes, by table
    provenance: list[str] = field(default_factory=list)  # each figure section's statement


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.out = ParsedReport()
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._text: list[str] | None = None  # the current caption, list item, note, prov
        self._target: tuple[str, str] | None = None
        self._verdict: list[str] | None = None
        self._notes: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("id", f"table{len(self.out.tables)}")
            self.out.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "img":
            self.out.images.append(a.get("src") or "")
        elif tag == "section" and a.get("id") == "verdict":
            self._verdict = []
        elif tag == "div" and a.get("class") == "notes":
            self._notes = (a.get("id") or "").removesuffix("-notes")
            self.out.notes[self._notes] = []
        elif tag == "figcaption":
            self._text, self._target = [], ("captions", "")
        elif tag == "li" and self._verdict is not None:
            self._text, self._target = [], ("verdict_items", "")
        elif tag == "p" and self._notes is not None:
            self._text, self._target = [], ("notes", self._notes)
        elif tag == "p" and a.get("class") == "prov":
            self._text, self._target = [], ("provenance", "")

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.out.tables[self._table].append(self._row)
            self._row = None
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "section" and self._verdict is not None:
            self.out.verdict = " ".join("".join(self._verdict).split())
            self._verdict = None
        elif tag == "div" and self._notes is not None:
            self._notes = None
        elif tag in ("figcaption", "li", "p") and self._text is not None:
            text = " ".join("".join(self._text).split())
            kind, key = self._target
            bucket = self.out.notes[key] if kind == "notes" else getattr(self.out, kind)
            bucket.append(text)
            self._text = self._target = None

    def handle_data(self, data):
        for sink in (self._verdict, self._cell, self._text):
            if sink is not None:
                sink.append(data)


def parse_report(path: Path) -> ParsedReport:
    parser = _Parser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser.out


def png_payloads(report: ParsedReport) -> list[bytes]:
    """Every image's decoded bytes; fails unless each is an embedded, non-empty PNG."""
    out = []
    for src in report.images:
        assert src.startswith("data:image/png;base64,"), src[:60]
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
        out.append(data)
    return out


def headline_rows(report: ParsedReport) -> dict[str, dict[str, str]]:
    """The headline table as {policy: {column: text}}."""
    table = report.tables["headline"]
    header = table[0]
    return {row[0]: dict(zip(header, row, strict=True)) for row in table[1:]}


def number(text: str) -> float:
    """A number as the report prints it: thousands separated (``477,429,949``)."""
    assert re.fullmatch(r"-?\d{1,3}(,\d{3})*(\.\d+)?", text), f"not a printed number: {text!r}"
    return float(text.replace(",", ""))


def check_headline_against(report: ParsedReport, results: list[dict]) -> int:
    """Every headline number equals results.json to its printed precision, counts with
    thousands separators; returns the rows."""
    rows = headline_rows(report)
    for r in results:
        row = rows[r["policy"]]
        assert abs(number(row["battery life (h)"]) - r["battery_life_s"] / 3600) <= 5e-4
        late = r["deadline_misses"] - r.get("dropped", 0)
        on_time = r["inferences"] - late
        assert number(row["on-time inferences"]) == on_time
        assert number(row["missed"]) == r["deadline_misses"]
        if r.get("mean_accuracy") is None:
            assert row["mean accuracy"] == "n/a"
        else:
            assert abs(number(row["mean accuracy"]) - r["mean_accuracy"]) <= 5e-5
        cell = row["energy per on-time inference (mJ)"]
        if on_time:
            assert abs(number(cell) - 1e3 * r["energy_j"] / on_time) <= 5e-4
        else:
            assert cell == "n/a"
        assert number(row["switches"]) == r["switches"]
    return len(rows)
