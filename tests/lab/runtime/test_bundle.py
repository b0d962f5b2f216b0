"""Bundles: save/load round trip, and every malformed part named in a BundleError."""

import json

import pytest
import torch

from lab.runtime.bundle import Bundle, BundleError, file_sha256
from lab.runtime.pattern_set import LayerPattern, PatternSet

FC1, EMB = "layers.0.linear1", "embedding"  # a (24, 10) Linear and a (30, 10) Embedding
CONFIG = {"vocab_size": 30, "emb": 10, "ff": 24, "heads": 2, "layers": 1}


def small_bundle():
    from lab.model import build_model

    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    dense = build_model("rt3-transformer", CONFIG).state_dict()
    bp_mask = torch.ones(24, 10, dtype=torch.bool)
    bp_mask[:8, :5] = False
    backbone = dict(dense, **{f"{FC1}.weight": dense[f"{FC1}.weight"] * bp_mask})
    b = Bundle.create(
        "rt3-transformer",
        CONFIG,
        backbone,
        dense,
        reference={"dense": {"nonzero_mults": 240, "nonzero_adds": 240, "accuracy": 0.5}},
        provenance={"data": "random", "seed": 0, "episodes": 0},
    )
    b.add_set(PatternSet.from_masks("bp", {FC1: bp_mask}, 8, 5), 200, 200)
    sparse = bp_mask.clone()
    sparse[8:, 7:] = False
    b.add_set(
        PatternSet.from_masks(
            "s1", {FC1: sparse, EMB: torch.rand(30, 10, generator=g) > 0.5}, 8, 5
        ),
        150,
        150,
        accuracy=0.4,
        perplexity=300.0,
        freq_khz=1_000_000,
    )
    return b


def test_round_trip(tmp_path):
    b = small_bundle()
    b.save(tmp_path / "b")
    again = Bundle.load(tmp_path / "b")
    assert again.set_names == ["bp", "s1"]
    assert again.sets["s1"] == b.sets["s1"]
    assert again.entries == b.entries
    assert again.entries["s1"].freq_khz == 1_000_000
    assert again.entries["s1"].family == "mixed"
    assert again.entries["bp"].nnz == 200
    assert again.reference["dense"]["accuracy"] == 0.5
    assert again.reference["bp"]["perplexity"] is None
    assert set(again.provenance) >= {"data", "seed", "episodes", "created", "versions"}
    for k, v in b.backbone.items():
        assert torch.equal(again.backbone[k], v)
        assert torch.equal(again.dense[k], b.dense[k])
    doc = json.loads((tmp_path / "b" / "bundle.json").read_text())
    assert doc["format"] == "rt3lab-bundle" and doc["version"] == 1
    assert (tmp_path / "b" / "sets" / "s1.safetensors").is_file()


def test_tied_weights_save(tmp_path):
    b = small_bundle()
    b.backbone["decoder.weight"] = b.backbone["embedding.weight"]  # tied, shared storage
    b.dense["decoder.weight"] = b.dense["embedding.weight"]
    b.save(tmp_path / "b")
    assert torch.equal(
        Bundle.load(tmp_path / "b").backbone["decoder.weight"], b.backbone["embedding.weight"]
    )


def test_set_referencing_a_missing_layer_is_a_clear_error(tmp_path):
    b = small_bundle()
    b.save(tmp_path / "b")
    ghost = PatternSet.from_masks(
        "s1", {"layers.9.linear1": torch.ones(24, 10, dtype=torch.bool)}, 8, 5
    )
    ghost.save(tmp_path / "b" / "sets" / "s1.safetensors")
    doc = json.loads((tmp_path / "b" / "bundle.json").read_text())
    doc["sets"][1].update(nnz=240, density=1.0, sparsity=0.0, family="block-column")
    doc["checksums"]["sets/s1.safetensors"] = file_sha256(tmp_path / "b" / "sets/s1.safetensors")
    (tmp_path / "b" / "bundle.json").write_text(json.dumps(doc))
    with pytest.raises(BundleError, match=r"set 's1': layer 'layers\.9\.linear1' has no weight"):
        Bundle.load(tmp_path / "b")


def test_add_set_with_missing_layer_fails_at_once():
    b = small_bundle()
    with pytest.raises(BundleError, match="'nope'"):
        b.add_set(
            PatternSet.from_masks("x", {"nope": torch.ones(2, 2, dtype=torch.bool)}, 2, 2), 1, 1
        )


def test_shape_mismatch_is_named():
    b = small_bundle()
    with pytest.raises(BundleError, match=r"mask shape \(10, 24\)"):
        b.add_set(
            PatternSet.from_masks("x", {FC1: torch.ones(10, 24, dtype=torch.bool)}, 2, 2), 1, 1
        )


def _corrupt(tmp_path, edit):
    b = small_bundle()
    root = b.save(tmp_path / "b")
    doc = json.loads((root / "bundle.json").read_text())
    edit(doc)
    (root / "bundle.json").write_text(json.dumps(doc))
    return root


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d.update(format="other"), "field format"),
        (lambda d: d.update(version=2), "field version"),
        (lambda d: d.pop("reference"), "field reference"),
        (lambda d: d["reference"]["bp"].pop("nonzero_adds"), r"reference\.bp\.nonzero_adds"),
        (lambda d: d["provenance"].pop("seed"), r"provenance\.seed"),
        (
            lambda d: d["sets"][1].pop("nonzero_mults"),
            r"sets\[1\]: missing fields \['nonzero_mults'\]",
        ),
        (lambda d: d["sets"][1].update(nnz=3), r"set 's1': nnz 3"),
        (lambda d: d["sets"][1].update(nonzero_adds=-1), r"sets\[1\]\.nonzero_adds is -1"),
        (lambda d: d["sets"][1].update(accuracy="high"), r"sets\[1\]\.accuracy"),
        (lambda d: d["sets"][1].update(family="dense"), r"sets\[1\]\.family"),
        (lambda d: d["sets"][1].update(file="../x.safetensors"), "inside"),
        (
            lambda d: d["sets"][1].update(file="sets/none.safetensors"),
            "none.safetensors: pattern-set file not found",
        ),
        (lambda d: d["sets"].append(d["sets"][0]), "appears twice"),
        (lambda d: d["sets"][0].update(name="other"), "holds a set named 'bp'"),
        (lambda d: d["model"].pop("kind"), "field model"),
    ],
)
def test_malformed_bundle_json_is_named(tmp_path, edit, match):
    root = _corrupt(tmp_path, edit)
    with pytest.raises(BundleError, match=match):
        Bundle.load(root)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(BundleError, match=r"bundle\.json: not found"):
        Bundle.load(tmp_path)
    root = small_bundle().save(tmp_path / "b")
    (root / "dense.safetensors").unlink()
    with pytest.raises(BundleError, match=r"dense\.safetensors: not found"):
        Bundle.load(root)


def test_backbone_and_dense_must_agree(tmp_path):
    b = small_bundle()
    b.dense[f"{FC1}.weight"] = torch.zeros(3, 3)
    with pytest.raises(BundleError, match=r"'layers\.0\.linear1\.weight' is"):
        b.validate()


def test_elementwise_set_is_recorded_as_such():
    b = small_bundle()
    m = torch.eye(24, 10, dtype=torch.bool)
    entry = b.add_set(
        PatternSet("el", {FC1: LayerPattern.from_mask(FC1, m, 8, 5)}),
        10,
        10,
    )
    assert entry.family == "elementwise" and entry.nnz == 10
