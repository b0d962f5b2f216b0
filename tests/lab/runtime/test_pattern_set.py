"""Pattern sets: masks round-trip through the compact forms and through files."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lab.runtime.pattern_set import LayerPattern, PatternSet, PatternSetError


def block_column_mask(rows, cols, block_rows, density, seed=0):
    g = torch.Generator().manual_seed(seed)
    n_br = math.ceil(rows / block_rows)
    per_block = torch.rand(n_br, cols, generator=g) < density
    return per_block.repeat_interleave(block_rows, dim=0)[:rows]


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 40),
    cols=st.integers(1, 40),
    block_rows=st.integers(1, 12),
    density=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_block_column_mask_round_trips(rows, cols, block_rows, density, seed):
    mask = block_column_mask(rows, cols, block_rows, density, seed)
    p = LayerPattern.from_mask("l", mask, block_rows, 4)
    assert p.family == "block-column"
    assert p.indices.dtype == torch.int32 and p.offsets.dtype == torch.int64
    assert p.offsets.numel() == math.ceil(rows / block_rows) + 1
    assert torch.equal(p.mask(), mask)
    assert p.nnz == int(mask.sum())
    assert p.density == pytest.approx(mask.float().mean().item())


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(2, 30), cols=st.integers(1, 30), seed=st.integers(0, 2**16))
def test_free_mask_is_elementwise_and_round_trips(rows, cols, seed):
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(rows, cols, generator=g) < 0.5
    mask[0, 0], mask[1, 0] = True, False  # rows 0 and 1 differ: not block-column for 2
    p = LayerPattern.from_mask("l", mask, 2, 2)
    assert p.family == "elementwise"
    assert p.indices.dtype == torch.uint8
    assert torch.equal(p.mask(), mask)
    assert p.nnz == int(mask.sum())


def test_forcing_block_column_on_free_mask_is_an_error():
    mask = torch.eye(4, dtype=torch.bool)
    with pytest.raises(PatternSetError, match="not block-column"):
        LayerPattern.from_mask("fc", mask, 2, 2, family="block-column")


def test_intersection_of_block_column_masks_stays_block_column():
    a = LayerPattern.from_mask("l", block_column_mask(10, 9, 4, 0.6, 1), 4, 3)
    b = LayerPattern.from_mask("l", block_column_mask(10, 9, 4, 0.6, 2), 4, 3)
    both = a & b
    assert both.family == "block-column"
    assert torch.equal(both.mask(), a.mask() & b.mask())


@pytest.mark.parametrize(
    ("indices", "offsets", "match"),
    [
        ([0, 1], [0, 1], "offsets has"),
        ([0, 9], [0, 1, 2], r"indices must lie in \[0, 4\)"),
        ([2, 1], [0, 2, 2], "strictly ascending"),
        ([1, 1], [0, 2, 2], "strictly ascending"),
        ([0, 1], [1, 1, 2], "start at 0"),
    ],
)
def test_malformed_block_column_is_rejected(indices, offsets, match):
    with pytest.raises(PatternSetError, match=match):
        LayerPattern(
            "fc",
            (4, 4),
            "block-column",
            2,
            2,
            torch.tensor(indices, dtype=torch.int32),
            torch.tensor(offsets, dtype=torch.int64),
        )


def test_ascending_across_block_row_boundary_is_allowed():
    p = LayerPattern(
        "fc",
        (4, 4),
        "block-column",
        2,
        2,
        torch.tensor([2, 3, 0, 1], dtype=torch.int32),
        torch.tensor([0, 2, 4]),
    )
    assert p.nnz == 8


def test_wrong_dtype_and_family_are_rejected():
    with pytest.raises(PatternSetError, match="int32"):
        LayerPattern("fc", (2, 2), "block-column", 2, 2, torch.tensor([0]), torch.tensor([0, 1]))
    with pytest.raises(PatternSetError, match="family"):
        LayerPattern(
            "fc", (2, 2), "dense", 2, 2, torch.tensor([0], dtype=torch.int32), torch.tensor([0, 1])
        )


def make_set(name="s"):
    masks = {
        "layers.0.linear1": block_column_mask(200, 80, 16, 0.3, 3),
        "layers.0.linear2": block_column_mask(80, 200, 16, 0.5, 4),
        "embedding": torch.rand(50, 80, generator=torch.Generator().manual_seed(5)) < 0.4,
    }
    return PatternSet.from_masks(name, masks, 16, 8, meta={"level": 1, "note": "x"})


def test_set_saves_and_loads_equal(tmp_path):
    ps = make_set()
    assert ps.family == "mixed"
    ps.save(tmp_path / "s.safetensors")
    again = PatternSet.load(tmp_path / "s.safetensors")
    assert again == ps
    assert again.meta == {"level": 1, "note": "x"}
    for layer, m in ps.masks().items():
        assert torch.equal(again.layers[layer].mask(), m)


def test_sets_with_one_position_changed_differ():
    a, b = make_set(), make_set()
    assert a == b
    m = b.layers["embedding"].mask()
    m[0, 0] = ~m[0, 0]
    b.layers["embedding"] = LayerPattern.from_mask("embedding", m, 16, 8)
    assert a != b


def test_load_names_the_file_for_garbage(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(PatternSetError, match=r"bad\.safetensors"):
        PatternSet.load(bad)
    with pytest.raises(PatternSetError, match="not found"):
        PatternSet.load(tmp_path / "missing.safetensors")


def test_load_rejects_foreign_safetensors(tmp_path):
    from safetensors.torch import save_file

    f = tmp_path / "w.safetensors"
    save_file({"w": torch.zeros(2)}, str(f))
    with pytest.raises(PatternSetError, match="format"):
        PatternSet.load(f)
