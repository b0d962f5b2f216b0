"""Issue 29, item 1 (material): ``evaluate`` keeps each test sequence's accuracy, the
same sequences for dense and every set, and they add up to the stored accuracy exactly.

Real torch on the small real bundle of ``bundle_builder`` (TEST budget: 600 test
predictions in windows of 16, so 37 full windows and a last one of 8).
"""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
import torch
from bundle_builder import LAYER, build_bundle
from cli_runner import rt3lab

from lab.compression.budget import TEST
from lab.compression.evaluation import evaluate_bundle
from lab.compression.pipeline import load_lm_data
from lab.model import build_model
from lab.model.training import evaluate_lm


@pytest.fixture
def bundle(wiki_dir, tmp_path):
    return build_bundle(wiki_dir, tmp_path / "bundle", true_figures=True)


def test_per_sequence_accuracies_weighted_by_tokens_are_the_accuracy_exactly(bundle):
    ev = evaluate_bundle(bundle, threads=1)
    rows = {r.name: r for r in ev.rows}
    assert list(ev.per_sequence) == ["dense", "bp", "pp-1400mhz"]
    assert ev.sequence_tokens == [16] * 37 + [8]
    for name, accs in ev.per_sequence.items():
        assert len(accs) == len(ev.sequence_tokens)
        # each sequence's correct predictions are an integer count of its tokens
        counts = [a * n for a, n in zip(accs, ev.sequence_tokens, strict=True)]
        assert all(c == round(c) for c in counts), name
        total = Fraction(sum(round(c) for c in counts), sum(ev.sequence_tokens))
        assert float(total) == rows[name].accuracy, name
    # the plain mean is not the accuracy when the last window is shorter: weighting matters
    dense = ev.per_sequence["dense"]
    weighted = sum(a * n for a, n in zip(dense, ev.sequence_tokens, strict=True)) / 600
    assert weighted == pytest.approx(rows["dense"].accuracy, abs=1e-15)


def test_per_sequence_accuracies_are_each_windows_own_score(bundle, wiki_dir):
    """The first and the last sequence, scored on their own, give the same accuracies: the
    list is in stream order and each entry is that window's score, not a share of the
    total."""
    ev = evaluate_bundle(bundle, threads=1)
    data = load_lm_data(f"wikitext2:{wiki_dir}", TEST)
    from lab.runtime.bundle import Bundle

    b = Bundle.load(bundle)
    model = build_model("rt3-transformer", b.model["config"]).eval()
    model.load_state_dict(b.backbone)
    with torch.no_grad():
        model.get_submodule(LAYER).weight.mul_(b.sets["pp-1400mhz"].masks()[LAYER])
    stream = data.test[: TEST.report_tokens + 1]
    first = evaluate_lm(model, stream[:17], TEST.seq_len, threads=1)
    last = evaluate_lm(model, stream[592:], TEST.seq_len, threads=1)
    got = ev.per_sequence["pp-1400mhz"]
    assert (got[0], got[-1]) == (first.accuracy, last.accuracy)
    whole = evaluate_lm(model, stream, TEST.seq_len, threads=1, per_sequence=True)
    assert whole.sequence_tokens == tuple(ev.sequence_tokens)
    pairs = zip(whole.sequence_correct, whole.sequence_tokens, strict=True)
    assert [c / n for c, n in pairs] == got
    assert sum(whole.sequence_correct) / 600 == whole.accuracy
    assert "sequence_correct" not in first.to_dict()  # only when asked for


def test_json_carries_per_sequence_only_when_asked(bundle):
    plain = rt3lab("evaluate", "--bundle", str(bundle), "--json", "--threads", "1")
    assert plain.code == 0, plain.stderr
    assert "per_sequence" not in json.loads(plain.stdout)
    r = rt3lab("evaluate", "--bundle", str(bundle), "--json", "--per-sequence", "--threads", "1")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    seq = doc["per_sequence"]
    assert seq["tokens"] == [16] * 37 + [8]
    assert set(seq["correct"]) == {"dense", "bp", "pp-1400mhz"}
    rows = {s["name"]: s for s in doc["sets"]}
    for name, correct in seq["correct"].items():
        pairs = zip(correct, seq["tokens"], strict=True)
        assert all(isinstance(c, int) and 0 <= c <= n for c, n in pairs)
        assert sum(correct) / 600 == rows[name]["accuracy"], name
