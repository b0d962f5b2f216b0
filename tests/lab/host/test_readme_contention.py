"""The profiling README's figures for OpenMP's wait policy under contention are the recorded
``scripts/contention.py --micro 30`` run's (``docs/contention-micro.json``), each
configuration alone and beside the hogs, in one line each."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def contention_lines(d: dict) -> list[str]:
    """One README line per configuration of a recorded ``contention.py`` run.

    >>> contention_lines({"hogs": 2, "summary": {"a": {"quiet_s": 0.1, "contended_s": 0.5,
    ...     "ratio": 5.0}}})
    ['- a: 0.10 s alone, 0.50 s beside 2 CPU hogs (5.00x)']
    """
    return [
        f"- {name}: {s['quiet_s']:.2f} s alone, {s['contended_s']:.2f} s beside "
        f"{d['hogs']} CPU hogs ({s['ratio']:.2f}x)"
        for name, s in d["summary"].items()
    ]


def test_readme_contention_lines_are_the_recorded_run():
    d = json.loads((ROOT / "docs" / "contention-micro.json").read_text(encoding="utf-8"))
    readme = (ROOT / "lab" / "profiling" / "README.md").read_text(encoding="utf-8")
    for line in contention_lines(d):
        assert line in readme.splitlines(), line
    assert f"({d['workload']}" in readme
