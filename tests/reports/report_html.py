"""Parse a written report.html with html.parser: its tables, images and figure captions."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path


@dataclass
class ParsedReport:
    tables: dict[str, list[list[str]]] = field(default_factory=dict)
    images: list[str] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    verdict: str = ""


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.out = ParsedReport()
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._caption: list[str] | None = None

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
        elif tag == "figcaption":
            self._caption = []
        elif tag == "p" and a.get("id") == "verdict":
            self._verdict = []

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.out.tables[self._table].append(self._row)
            self._row = None
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "p" and getattr(self, "_verdict", None) is not None:
            self.out.verdict = "".join(self._verdict).strip()
            self._verdict = None
        elif tag == "figcaption" and self._caption is not None:
            self.out.captions.append("".join(self._caption).strip())
            self._caption = None

    def handle_data(self, data):
        if getattr(self, "_verdict", None) is not None:
            self._verdict.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._caption is not None:
            self._caption.append(data)


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


def check_headline_against(report: ParsedReport, results: list[dict]) -> int:
    """Every headline number equals results.json to its printed precision; returns rows."""
    rows = headline_rows(report)
    for r in results:
        row = rows[r["policy"]]
        assert abs(float(row["battery life (h)"]) - r["battery_life_s"] / 3600) <= 5e-4
        late = r["deadline_misses"] - r.get("dropped", 0)
        on_time = r["inferences"] - late
        assert int(row["on-time inferences"]) == on_time
        assert int(row["missed"]) == r["deadline_misses"]
        if r.get("mean_accuracy") is None:
            assert row["mean accuracy"] == "n/a"
        else:
            assert abs(float(row["mean accuracy"]) - r["mean_accuracy"]) <= 5e-5
        cell = row["energy per on-time inference (mJ)"]
        if on_time:
            assert abs(float(cell) - 1e3 * r["energy_j"] / on_time) <= 5e-4
        else:
            assert cell == "n/a"
        assert int(row["switches"]) == r["switches"]
    return len(rows)
