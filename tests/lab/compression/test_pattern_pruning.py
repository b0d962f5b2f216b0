"""PP: nearest-pattern assignment, stacking on BP, candidate families, compaction."""

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lab.compression.block_pruning import block_column_of
from lab.compression.pattern_pruning import (
    RT3_LEVELS,
    PatternPruner,
    assign_patterns,
    candidate_patterns,
    exclusive_weights,
    fitted_patterns,
    random_patterns,
    stack_patterns,
)
from lab.compression.sparsifier import CompressionError
from lab.runtime.pattern_set import LayerPattern


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 13),
    st.integers(1, 13),
    st.integers(1, 5),
    st.integers(1, 5),
    st.integers(1, 4),
    st.integers(0, 2**16),
)
def test_each_block_takes_its_nearest_pattern(rows, cols, br, bc, k, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, cols, generator=g)
    patterns = torch.rand(k, br, bc, generator=g) > 0.5
    choice, mask = assign_patterns(w, patterns)
    # brute force over every block and every pattern, on the unpadded weight
    for i, j in itertools.product(range(choice.shape[0]), range(choice.shape[1])):
        block = w[i * br : (i + 1) * br, j * bc : (j + 1) * bc]
        dists = []
        for p in patterns:
            p = p[: block.shape[0], : block.shape[1]]
            dists.append(float((block - block * p).norm()))
        best = min(dists)
        assert dists[int(choice[i, j])] == pytest.approx(best, rel=1e-5, abs=1e-6)
        got = mask[i * br : (i + 1) * br, j * bc : (j + 1) * bc]
        want = patterns[int(choice[i, j])][: block.shape[0], : block.shape[1]]
        assert torch.equal(got, want)


def test_candidates_follow_levels_and_compact():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(64, 96, generator=g)
    cands = candidate_patterns(w, 16, 16, RT3_LEVELS, "block-column", g)
    assert cands.shape == (10, 10, 16, 16)
    for li, level in enumerate(RT3_LEVELS):
        zero_cols = min(max(round(level * 16), 1), 15)  # 1% -> one column
        kept = cands[li].all(dim=1).sum(dim=1)  # whole kept columns per candidate
        assert bool((kept == 16 - zero_cols).all())
        # kept positions are whole columns: every row of the pattern is identical
        assert bool((cands[li] == cands[li][:, :1, :]).all())
    elem = candidate_patterns(w, 16, 16, [0.5], "elementwise", g)
    assert int((~elem[0, 0]).sum()) == 128


def test_candidates_prefer_heavy_columns():
    w = torch.zeros(32, 32)
    w[:, 5] = 10.0  # column 5 of every block is heavy
    cands = candidate_patterns(w, 8, 8, [0.87], "block-column", torch.Generator().manual_seed(0))
    assert bool(cands[0][:, :, 5].all())


def test_patterns_stack_on_bp_and_stay_block_column():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(40, 48, generator=g)
    bp = torch.ones(40, 48, dtype=torch.bool)
    bp[:8, 3] = False
    bp[8:16, 10:20] = False
    pats = candidate_patterns(w * bp, 8, 8, [0.5], "block-column", g)[0, :4]
    masks = stack_patterns({"fc": w}, {"fc": bp}, {"fc": pats})
    m = masks["fc"]
    assert not bool((m & ~bp).any())
    assert block_column_of(m, 8)
    assert LayerPattern.from_mask("fc", m, 8, 8).family == "block-column"
    elem = candidate_patterns(w * bp, 8, 8, [0.5], "elementwise", g)[0, :4]
    m2 = stack_patterns({"fc": w}, {"fc": bp}, {"fc": elem})["fc"]
    assert LayerPattern.from_mask("fc", m2, 8, 8).family == "elementwise"


def test_pattern_pruner_lifecycle_matches_functional_form():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(24, 16))
    bp = torch.rand(16, 24) > 0.2
    bp = bp[::8].repeat_interleave(8, 0)
    w = model[0].weight.detach().clone()
    pats = random_patterns(8, 8, [0.5], 4, "block-column", torch.Generator().manual_seed(0))[0]
    want = stack_patterns({"0": w}, {"0": bp}, {"0": pats})["0"]
    pp = PatternPruner({"0": pats})
    pp.prepare(model, {"0": 0.0}, masks={"0": bp})
    pp.step()
    assert torch.equal(pp.squash_mask()["0"], want)
    assert bool((model[0].weight[~want] == 0).all())


def test_random_patterns_have_the_levels_zero_counts():
    g = torch.Generator().manual_seed(3)
    r = random_patterns(8, 8, [0.25, 0.5], 10, "block-column", g)
    assert bool(((~r[0]).all(dim=1).sum(dim=1) == 2).all())
    assert bool(((~r[1]).all(dim=1).sum(dim=1) == 4).all())


def test_every_level_above_zero_prunes_at_least_one_column():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(64, 64, generator=g)
    for make in (candidate_patterns, fitted_patterns):
        cands = make(w, 32, 32, [0.0, 0.01], "block-column", g)
        assert bool((cands[0].all(dim=1).sum(dim=1) == 32).all())  # level 0: nothing
        assert bool((cands[1].all(dim=1).sum(dim=1) == 31).all())  # 0.32 of a column: one
    r = random_patterns(32, 32, [0.01], 4, "block-column", g)
    assert bool(((~r[0]).all(dim=1).sum(dim=1) == 1).all())


def test_bad_family_and_level():
    w = torch.randn(8, 8)
    with pytest.raises(CompressionError, match="family"):
        candidate_patterns(w, 4, 4, [0.5], "diagonal")
    with pytest.raises(CompressionError, match=r"outside \[0, 1\)"):
        candidate_patterns(w, 4, 4, [1.0], "block-column")


@pytest.mark.parametrize("family", ["block-column", "elementwise"])
def test_fitted_candidates_follow_levels(family):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(64, 96, generator=g)
    w[:, 7] = 0  # a dead column, as BP leaves
    cands = fitted_patterns(w, 16, 16, RT3_LEVELS, family, g, keep=6)
    assert cands.shape == (10, 6, 16, 16)
    for li, level in enumerate(RT3_LEVELS):
        if family == "block-column":
            zero_cols = min(max(round(level * 16), 1), 15)  # 1% -> one column
            assert bool((cands[li] == cands[li][:, :1, :]).all())  # whole columns
            assert bool((cands[li][:, 0, :].sum(1) == 16 - zero_cols).all())
        else:
            zeros = min(round(level * 256), 255)
            assert bool(((~cands[li]).reshape(6, -1).sum(1) == zeros).all())


def removed_energy(weight, patterns):
    """Squared weight that nearest-pattern assignment of ``patterns`` removes."""
    _, mask = assign_patterns(weight, patterns)
    return float((weight**2 * ~mask).sum())


def _bp_like(supports, g, br=8, bc=8, nbr=6, nbc=8):
    """Blocks whose surviving columns are one of ``supports``, equal energy per column."""
    w = torch.zeros(nbr * br, nbc * bc)
    for i in range(nbr):
        for j in range(nbc):
            s = supports[int(torch.randint(len(supports), (1,), generator=g))]
            signs = torch.randint(0, 2, (br, len(s)), generator=g).float() * 2 - 1
            w[i * br : (i + 1) * br, j * bc + s] = signs
    return w


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**16), st.integers(2, 5))
def test_fitted_candidates_recover_distinct_bp_supports(seed, n_groups):
    """Blocks whose surviving columns fall in ``n_groups`` supports (as BP's dead column
    groups leave them): fitted candidates find every support and remove nothing."""
    g = torch.Generator().manual_seed(seed)
    w = _bp_like([torch.randperm(8, generator=g)[:2] for _ in range(n_groups)], g)
    fitted = fitted_patterns(w, 8, 8, [0.75], "block-column", g, keep=n_groups)[0]
    assert removed_energy(w, fitted) == 0.0


def test_rt3_sums_blur_distinct_supports():
    """The same case for RT3's candidates: each is a sum of ten random blocks, so its top
    columns mix the supports and the four candidates remove weight the fitted ones keep."""
    g = torch.Generator().manual_seed(0)
    w = _bp_like(
        [torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([4, 5]), torch.tensor([6, 7])], g
    )
    rt3 = candidate_patterns(w, 8, 8, [0.75], "block-column", g, keep=4)[0]
    fitted = fitted_patterns(w, 8, 8, [0.75], "block-column", g, keep=4)[0]
    assert removed_energy(w, fitted) == 0.0
    assert removed_energy(w, rt3) > 0.25 * float((w**2).sum())


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**16),
    st.sampled_from(["block-column", "elementwise"]),
    st.sampled_from([0.25, 0.5, 0.87]),
    st.integers(1, 6),
)
def test_fitted_refinement_never_removes_more_than_its_seeds(seed, family, level, keep):
    """Lloyd steps only lower the removed weight: iters=0 returns the k-means++ seeds."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(40, 56, generator=g) * (torch.rand(40, 56, generator=g) > 0.3)
    seeds = fitted_patterns(w, 8, 8, [level], family, torch.Generator().manual_seed(seed), keep, 0)
    fit = fitted_patterns(w, 8, 8, [level], family, torch.Generator().manual_seed(seed), keep)
    assert removed_energy(w, fit[0]) <= removed_energy(w, seeds[0]) * (1 + 1e-5) + 1e-6


def test_exclusive_weights_discount_what_a_denser_set_keeps():
    w = {"a": torch.tensor([[4.0, 3.0, 2.0, 1.0]]), "b": torch.tensor([[5.0]])}
    used = {"a": torch.tensor([[True, True, False, False]])}
    assert torch.equal(exclusive_weights(w, used, 0.0)["a"], w["a"])
    assert torch.equal(exclusive_weights(w, used, 0.75)["a"], torch.tensor([[2.0, 1.5, 2.0, 1.0]]))
    out = exclusive_weights(w, used, 1.0)
    assert torch.equal(out["a"], torch.tensor([[0.0, 0.0, 2.0, 1.0]]))
    assert torch.equal(out["b"], w["b"])  # a layer no denser set covers is unchanged
    # the plain nearest pattern keeps the denser set's columns, the exclusive one the others
    pats = torch.tensor([[[True, True, False, False]], [[False, False, True, True]]])
    assert assign_patterns(w["a"], pats)[0].tolist() == [[0]]
    assert assign_patterns(out["a"], pats)[0].tolist() == [[1]]


@pytest.mark.parametrize("discount", [-0.1, 1.5])
def test_exclusive_discount_out_of_range_is_an_error(discount):
    with pytest.raises(CompressionError, match="exclusive"):
        exclusive_weights({"a": torch.ones(1, 2)}, {}, discount)
