"""``rt3lab bench runtime --json`` on a width, depth or early-exit bundle, as short as its
options allow, and the checks every variant's row must pass (no speed threshold: speed
claims live in the benches)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from cli_runner import rt3lab

QUICK = (
    "--rounds", "2", "--per-round", "1", "--warmup", "1", "--switch-reps", "10",
    "--anchor-switch-reps", "2", "--no-layers", "--no-executorch",
)  # fmt: skip
ROW_FIGURES = (
    "latency_ms",
    "latency_p99_ms",
    "first_after_switch_ms",
    "dense_latency_ms",
    "flop_speedup_limit",
    "speedup",
    "speedup_over_limit",
)


def bench_json(bundle: Path, *extra: str) -> dict[str, Any]:
    """The real ``rt3lab bench runtime --bundle BUNDLE --json`` (short rounds), parsed."""
    outcome = rt3lab("bench", "runtime", "--bundle", str(bundle), *QUICK, *extra, "--json")
    assert outcome.code == 0, outcome.stderr
    return json.loads(outcome.stdout)


def check_row(row: dict[str, Any]) -> float:
    """A variant's figures: positive and finite, the ratio their definition says, the op
    counts behind the limit; returns its FLOP limit."""
    for key in ROW_FIGURES:
        assert math.isfinite(row[key]) and row[key] > 0, (key, row)
    ops = row["ops_per_inference"]
    assert ops["set"] > 0 and ops["dense"] > 0
    assert math.isclose(row["flop_speedup_limit"], ops["dense"] / ops["set"])
    assert math.isclose(row["speedup"], row["dense_latency_ms"] / row["latency_ms"])
    assert math.isclose(row["speedup_over_limit"], row["speedup"] / row["flop_speedup_limit"])
    lo, hi = row["speedup_over_limit_ci95"]
    assert 0 < lo <= hi
    return row["flop_speedup_limit"]


def check_bench(doc: dict[str, Any], scheme: str, names: list[str]) -> dict[str, Any]:
    """The bench of a ``scheme`` bundle whose sets are ``names``: on the engine, every set's
    row checked (an early-exit set's every exit); returns the rows."""
    assert doc["runtime"] == "engine" and doc["source"]["scheme"] == scheme
    assert "flop_limit" in doc and doc["dense_latency_ms"] > 0
    assert list(doc["sets"]) == names
    for row in doc["sets"].values():
        check_row(row)
        for exit_row in row.get("per_exit", []):
            check_row(exit_row)
    return doc["sets"]
