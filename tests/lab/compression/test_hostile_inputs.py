"""Issue 31: what `evaluate` and `compress` read is bounded before any work is sized by it.

A thread count, a latency table's fields and a bundle's budget decide how much work is
done (threads started, tokens per inference, rows timed): each is refused in one line
(exit 2, naming the option or the field) before anything runs. ``--json`` is strict JSON.
Every test drives the real ``rt3lab`` entry point.
"""

from __future__ import annotations

import json

import pytest
from bundle_builder import LAYER, build_bundle
from cli_runner import rt3lab

from lab.compression.latency.table import TABLE_FILE, LatencyTable, host_identity


@pytest.fixture
def bundle(wiki_dir, tmp_path):
    return build_bundle(wiki_dir, tmp_path / "bundle", true_figures=True)


def with_table(bundle, **changes):
    """A latency table beside the bundle (as compress writes one), with ``changes``."""
    t = LatencyTable(host_identity(), 1, "2026-01-01", 2000000, 35, 1.0,
                     {LAYER: [(0.25, 0.8), (1.0, 1.0)]})  # fmt: skip
    doc = {**t.to_dict(), **changes}
    (bundle / TABLE_FILE).write_text(json.dumps(doc))
    return bundle


def refused(r, needle):
    assert r.code == 2, (r.code, r.stdout[-500:], r.stderr[-2000:])
    line = r.stderr.strip()
    assert "\n" not in line and "Traceback" not in line and needle in line, line


def test_a_thread_count_out_of_range_is_refused_before_any_work(bundle, tmp_path):
    refused(rt3lab("evaluate", "--bundle", str(bundle), "--threads", "100000"),
            "--threads: expected 1..256 threads, got 100000")  # fmt: skip
    out = tmp_path / "never"
    refused(rt3lab("compress", "--out", str(out), "--quick", "--threads", "100000"),
            "--threads: expected 1..256 threads")  # fmt: skip
    assert not out.exists()


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"threads": 1000000}, "field threads is 1000000, expected an integer in 1..256"),
        ({"threads": True}, "field threads is True"),
        ({"rows": 1e9}, "field rows is 1000000000.0"),
        ({"rows": -5}, "field rows is -5"),
        ({"additivity": -1e308}, "field additivity is -1e+308"),
        ({"dense_ms": float("inf")}, "field dense_ms"),
        ({"layers": {}}, "field layers: expected rows for at least one layer"),
        ({"layers": {LAYER: [[2.0, 1.0]]}}, "row [2.0, 1.0]: expected [density 0..1"),
        ({"layers": {LAYER: "x"}}, f"layer {LAYER!r}: row None"),
    ],
)
def test_a_latency_table_is_checked_before_it_sizes_any_work(bundle, changes, needle):
    with_table(bundle, **changes)
    refused(rt3lab("evaluate", "--bundle", str(bundle), "--threads", "1"), needle)


def test_a_latency_table_that_is_not_a_file_is_named(bundle):
    import os

    os.mkfifo(bundle / TABLE_FILE)
    refused(rt3lab("evaluate", "--bundle", str(bundle), "--threads", "1"),
            "not a regular file (a FIFO)")  # fmt: skip


def test_the_good_table_is_used(bundle):
    with_table(bundle)
    r = rt3lab("evaluate", "--bundle", str(bundle), "--threads", "1", "--json")
    assert r.code == 0, r.stderr
    assert all(s["latency_estimate_ms"] is not None for s in json.loads(r.stdout)["sets"])


@pytest.mark.parametrize("field", ["seq_len", "batch_size"])
def test_a_budget_that_would_never_finish_scoring_is_refused(bundle, field):
    doc = json.loads((bundle / "bundle.json").read_text())
    doc["provenance"]["budget"][field] = 1048576
    (bundle / "bundle.json").write_text(json.dumps(doc))
    refused(rt3lab("evaluate", "--bundle", str(bundle), "--threads", "1"),
            f"provenance.budget.{field} is 1048576, expected an integer in 1..4096")  # fmt: skip


def test_json_is_strict_a_score_that_is_not_a_number_is_null_with_a_reason(wiki_dir, tmp_path):
    """Weights that make the loss NaN: `--json` printed NaN, which is not JSON."""
    import torch

    from lab.runtime.bundle import Bundle

    path = build_bundle(wiki_dir, tmp_path / "nan")
    b = Bundle.load(path)
    b.backbone[f"{LAYER}.weight"] = torch.full_like(b.backbone[f"{LAYER}.weight"], float("nan"))
    b.save(path)
    r = rt3lab("evaluate", "--bundle", str(path), "--threads", "1", "--json", "--allow-mismatch")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout, parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))
    rows = {s["name"]: s for s in doc["sets"]}
    assert rows["pp-1400mhz"]["perplexity"] is None
    assert any("sets[2].perplexity: nan is not a finite number" in n for n in doc["notes"])
