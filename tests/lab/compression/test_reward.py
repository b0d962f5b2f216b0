"""RT3's reward against hand-computed cases; governor levels from profiles."""

import math

import pytest

from device_profiles import load_profile, profile_from_dict
from device_profiles.loader import resolve_profile_path
from lab.compression.latency.estimators import OpCountEstimator, OpCounts, TableEstimator
from lab.compression.search.reward import LevelSpec, RewardConfig, governor_levels, reward
from lab.compression.sparsifier import CompressionError

LEVELS = [
    LevelSpec(1400000, 18900.0, 0.2, 115.0),
    LevelSpec(1000000, 11340.0, 0.1, 104.0),
    LevelSpec(800000, 7560.0, 0.08, 94.0),
]


def test_hand_computed_reward():
    # runs: 18900/0.2/0.1 = 945000; 11340/0.1/0.1 = 1134000; 7560/0.08/0.09 = 1050000
    r = reward([0.95, 0.93, 0.90], [100.0, 100.0, 90.0], LEVELS)
    assert r.runs == (945000, 1134000, 1050000)
    acc_w = 0.5 * 0.95 + 0.3 * 0.93 + 0.2 * 0.90  # 0.934
    a = (acc_w - 0.85) / (0.9745 - 0.85)
    n = (3129000 - 2.3e6) / (4.5e6 - 2.3e6)
    assert r.a == pytest.approx(a)
    assert r.n == pytest.approx(n)
    assert r.total == pytest.approx(a + n)
    assert r.ordered and not r.violated


def test_ordering_penalty():
    r = reward([0.90, 0.93, 0.88], [100.0, 100.0, 90.0], LEVELS)
    assert not r.ordered
    assert r.total == pytest.approx(r.a + r.n - 0.5)
    # equal accuracies are not strictly decreasing either
    assert not reward([0.9, 0.9, 0.8], [100.0, 100.0, 90.0], LEVELS).ordered


def test_timing_violation_gives_minus_one():
    r = reward(None, [116.0, 100.0, 90.0], LEVELS)
    assert r.violated and r.a == -1.0
    runs = (math.floor(18900 / 0.2 / 0.116), 1134000, 1050000)
    assert r.runs == runs
    assert r.total == pytest.approx(-1.0 + (sum(runs) - 2.3e6) / 2.2e6)


def test_n_cap_leaves_accuracy_to_decide():
    cfg = RewardConfig(runs_lo=1e6, runs_hi=2e6, n_max=1.0)
    # runs 3129000 would give N = 2.129; capped at 1
    r = reward([0.95, 0.93, 0.90], [100.0, 100.0, 90.0], LEVELS, cfg)
    assert r.n == 1.0
    a = (0.5 * 0.95 + 0.3 * 0.93 + 0.2 * 0.90 - 0.85) / (0.9745 - 0.85)
    assert r.total == pytest.approx(a + 1.0)
    # below the cap N is RT3's
    low = reward([0.95, 0.93, 0.90], [100.0, 100.0, 90.0], LEVELS, RewardConfig(n_max=5.0))
    assert low.n == pytest.approx((3129000 - 2.3e6) / 2.2e6)


def test_configurable_constants():
    cfg = RewardConfig(acc_lo=0.0, acc_hi=1.0, runs_lo=0.0, runs_hi=1e6)
    r = reward([0.3, 0.2, 0.1], [100.0, 100.0, 90.0], LEVELS, cfg)
    assert r.a == pytest.approx(0.5 * 0.3 + 0.3 * 0.2 + 0.2 * 0.1)
    assert r.n == pytest.approx(3.129)
    with pytest.raises(CompressionError, match="acc_hi"):
        RewardConfig(acc_lo=0.9, acc_hi=0.8)


def test_rt3_paper_levels_and_latency_match_rt3():
    p = load_profile("rt3-paper")
    levels = governor_levels(p)
    assert [lv.freq_khz for lv in levels] == [1400000, 1000000, 800000]
    assert [round(lv.power_w, 3) for lv in levels] == [0.215, 0.114, 0.079]
    est = OpCountEstimator.from_profile(p)
    lat = [est.latency_ms(OpCounts(18604048, 18604048), lv.freq_khz) for lv in levels]
    assert [round(x) for x in lat] == [115, 162, 202]
    dense = est.latency_ms(OpCounts(51923200, 51923200), 1400000)
    assert dense == pytest.approx(322.05, abs=0.1)


def test_measured_table_estimator_interpolates():
    p = load_profile("rt3-paper")  # its variants carry latency tables (op-count derived)
    est = TableEstimator.from_profile(p)
    bp = est.latency_ms(OpCounts(18604048, 18604048), 1400000)
    assert bp == pytest.approx(115.39, abs=0.01)
    with pytest.raises(CompressionError, match="no variant measured"):
        est.latency_ms(OpCounts(1, 1), 123)


def test_profile_without_timing_constraints_is_named():
    import yaml

    doc = yaml.safe_load(resolve_profile_path("rt3-paper").read_text())
    doc["workload"]["timing_constraints"] = []
    p = profile_from_dict(doc)
    with pytest.raises(CompressionError, match=r"no timing constraint at 1400000 kHz"):
        governor_levels(p)


@pytest.mark.slow
def test_op_count_matches_rt3s_for_rt3s_model():
    import torch

    from lab.compression.block_pruning import BlockPruner, load_bp_config
    from lab.compression.latency.estimators import op_counts
    from lab.compression.sparsifier import prunable_weights
    from lab.model.transformer import RT3TransformerLM

    torch.manual_seed(0)
    model = RT3TransformerLM(vocab_size=28782)  # RT3's WikiText-2 vocabulary, emb 800
    names = list(prunable_weights(model))
    assert op_counts(model, {}, names, 35).mults == 51_923_200  # rt3-paper.yaml, dense
    cfg = load_bp_config()
    bp = BlockPruner(cfg)
    bp.prepare(model, cfg.sparsity_for(names))
    bp.step()
    mults = op_counts(model, bp.masks, names, 35).mults
    assert mults == pytest.approx(18_604_048, rel=0.005)  # RT3's BP count, our 32x32 groups
