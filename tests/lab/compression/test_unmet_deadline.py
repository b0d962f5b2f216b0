"""One rule for every scheme when no variant meets a level's deadline (issue 30): deadlines
the user gave are refused in one line (exit 2) before any training step; deadlines derived
from the model's own timing give the level its fastest variant, recorded in the same shape
for every scheme and printed as a warning. Also ``evaluate``'s checks per scheme."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import yaml
from bundle_builder import build_bundle, write_corpus
from cli_runner import rt3lab

from device_profiles import load_profile
from device_profiles.loader import resolve_profile_path
from lab.compression.budget import TEST
from lab.compression.options import CompressOptions
from lab.compression.pipeline import load_lm_data
from lab.compression.schemes import scheme_builder
from lab.compression.schemes.choose import choose_per_level
from lab.compression.search.reward import LevelSpec
from lab.compression.sparsifier import CompressionError
from lab.runtime.bundle import Bundle

LEVELS = [LevelSpec(1400000, 1.0, 1.0, 1.0), LevelSpec(800000, 1.0, 1.0, 0.5)]
EST = {"w1": 1.0, "w0.25": 0.4}  # ms at 1.4 GHz, 1/f beyond: w0.25 is 0.7 ms at 800 MHz


def _estimate(v: str, f: int) -> float:
    return EST[v] * 1400000 / f


class Warnings:
    """A reporter that keeps the stages it is shown (the CLI's bars show the same names)."""

    def __init__(self) -> None:
        self.stages: list[str] = []

    def stage(self, name: str, total: int) -> None:
        self.stages.append(name)

    def advance(self, n: int = 1, note: str = "") -> None:
        pass


def test_strict_deadlines_no_variant_meets_are_refused_naming_level_variant_and_figures():
    with pytest.raises(CompressionError) as exc:
        choose_per_level(LEVELS, ["w1", "w0.25"], _estimate, {"w1": 0.3, "w0.25": 0.2}, "m")
    msg = str(exc.value)
    assert "\n" not in msg
    assert "at 800000 kHz the fastest variant (w0.25) is estimated (m) at 0.700 ms" in msg
    assert "over the 0.500 ms timing constraint" in msg


def test_derived_deadlines_give_the_level_its_fastest_variant_recorded_and_warned():
    rep = Warnings()
    picks = choose_per_level(
        LEVELS, ["w1", "w0.25"], _estimate, {"w1": 0.3, "w0.25": 0.2}, "m", False, rep
    )
    assert [p.variant for p in picks] == ["w1", "w0.25"]
    top, low = (p.record() for p in picks)
    assert top["meets_deadline"] is True and top["note"] is None and picks[0].unmet is None
    assert low["meets_deadline"] is False and low["chosen"] == "w0.25"
    unmet = picks[1].unmet
    assert unmet is not None and unmet["note"] == low["note"]
    assert {k: unmet[k] for k in ("freq_khz", "variant", "deadline_ms", "meets_deadline")} == {
        "freq_khz": 800000,
        "variant": "w0.25",
        "deadline_ms": 0.5,
        "meets_deadline": False,
    }
    assert unmet["estimate_ms"] == pytest.approx(0.7)
    assert rep.stages == [f"warning: {unmet['note']}"]
    assert "at 800000 kHz the fastest variant (w0.25)" in unmet["note"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A corpus and one dense-model cache for the module (the quick dense model is trained
    once, then read back)."""
    root = tmp_path_factory.mktemp("unmet")
    return write_corpus(root / "wikitext2"), root / "cache"


@pytest.mark.parametrize(
    ("scheme", "extra", "variant"),
    [
        ("width", ("--estimator", "op-count"), "(w0.25)"),
        ("early-exit", (), "(early-exit at threshold 0)"),
    ],
)
def test_compress_refuses_a_deadline_the_user_gave_that_no_variant_meets_before_training(
    corpus, tmp_path, monkeypatch, scheme, extra, variant
):
    wiki, cache = corpus
    monkeypatch.setenv("RT3LAB_CACHE", str(cache))
    out = tmp_path / "b"
    outcome = rt3lab(
        "compress", "--quick", "--scheme", scheme, "--data", f"wikitext2:{wiki}", "--out",
        str(out), "--threads", "1", "--deadlines", "0.0001,0.0001,0.0001", *extra,
    )  # fmt: skip
    assert outcome.code == 2, outcome.stderr
    errors = [ln for ln in outcome.stderr.splitlines() if ln.startswith("rt3lab: error")]
    assert len(errors) == 1 and outcome.stderr.rstrip().endswith(errors[0])
    assert f"impossible deadline: at 1400000 kHz the fastest variant {variant}" in errors[0]
    assert "over the 0.000 ms timing constraint" in errors[0]
    assert "training" not in outcome.stderr.replace("dense training", "")  # refused before
    assert not (out / "bundle.json").exists()


def _tight_profile(tmp_path):
    """rt3-paper with the 800 MHz constraint far below the others: under dense-top no
    variant of any scheme meets it."""
    doc = yaml.safe_load(resolve_profile_path("rt3-paper").read_text())
    for tc in doc["workload"]["timing_constraints"]:
        if tc["freq_khz"] == 800000:
            tc["deadline_ms"] = 1.0
    p = tmp_path / "tight.yaml"
    p.write_text(yaml.safe_dump(doc))
    return load_profile(p)


@pytest.mark.parametrize(
    ("scheme", "levels_at", "chosen", "extra"),
    [
        ("width", "width", "chosen", dict(estimator="op-count", block_rows=32, block_cols=32)),
        ("early-exit", "exits", "variant", {}),
    ],
)
def test_derived_deadlines_a_level_no_variant_meets_runs_its_fastest_recorded_and_warned(
    wiki_dir, tmp_path, capsys, scheme, levels_at, chosen, extra
):
    from lab.compression.cli import RichReporter, progress_bars

    budget = replace(TEST, final_steps=4)
    data = load_lm_data(f"wikitext2:{wiki_dir}", budget)
    out = tmp_path / scheme
    opts = CompressOptions(
        "tight", out, budget, seed=1, threads=1, scheme=scheme, deadlines="dense-top", **extra
    )
    with progress_bars() as bars:  # the reporter `rt3lab compress` shows
        scheme_builder(scheme)(data, _tight_profile(tmp_path), opts, RichReporter(bars))
    err = capsys.readouterr().err
    b = Bundle.load(out, scheme=scheme)
    unmet = b.provenance["unmet_deadlines"]
    assert [u["freq_khz"] for u in unmet] == [800000]
    u = unmet[0]
    assert u["meets_deadline"] is False and u["estimate_ms"] > u["deadline_ms"]
    assert set(u) == {
        "freq_khz", "deadline_ms", "variant", "estimate_ms", "estimator", "meets_deadline", "note"
    }  # fmt: skip
    head = f"impossible deadline: at 800000 kHz the fastest variant ({u['variant']})"
    assert u["note"].startswith(head)
    assert f"warning: {u['note'][:40]}" in err
    levels = b.provenance[levels_at]["levels"]
    low = next(lv for lv in levels if lv["freq_khz"] == 800000)
    assert low["meets_deadline"] is False and low["note"] == u["note"]
    assert all(lv["note"] is None for lv in levels if lv["freq_khz"] != 800000)
    if scheme == "width":  # the fastest width runs there
        assert low[chosen] == u["variant"] == min(low["estimates_ms"], key=low["estimates_ms"].get)
    else:  # threshold 0: every input at the first exit
        assert low["threshold"] == 0.0 and u["variant"] == "early-exit at threshold 0"
    # evaluate: the scheme's checks (op count for sparsity), not RT3's
    outcome = rt3lab("evaluate", "--bundle", str(out), "--json")
    assert outcome.code == 0, outcome.stderr
    ev = json.loads(outcome.stdout)
    assert {"at_least_3_sets", "cost_never_rises_as_frequency_drops"} <= set(ev["checks"])
    assert "costliest_within_1pt_of_dense" in ev["checks"]
    assert not {"sparsity_increases_as_frequency_drops", "least_sparse_within_1pt_of_dense"} & set(
        ev["checks"]
    )
    assert any(n.startswith(f"checks for a {scheme} bundle") for n in ev["notes"])
    ops = [s["nonzero_mults"] for s in sorted(ev["sets"][1:], key=lambda s: -s["freq_khz"])]
    assert ev["checks"]["cost_never_rises_as_frequency_drops"] == (ops == sorted(ops)[::-1])


def test_an_rt3_bundle_keeps_rt3s_checks(wiki_dir, tmp_path):
    out = build_bundle(wiki_dir, tmp_path / "b", true_figures=True)
    outcome = rt3lab("evaluate", "--bundle", str(out), "--json")
    assert outcome.code == 0, outcome.stderr
    ev = json.loads(outcome.stdout)
    assert ev["scheme"] == "rt3"
    assert {"at_least_3_sets", "sparsity_increases_as_frequency_drops"} <= set(ev["checks"])
    assert "cost_never_rises_as_frequency_drops" not in ev["checks"]
    assert not any(n.startswith("checks for a") for n in ev["notes"])
