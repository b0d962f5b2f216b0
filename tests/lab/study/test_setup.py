"""Where a study's points start: BP run again from the bundle's dense model and checked
against compress's digest (so a point at the bundle's deadlines is another compress), the
dense model teaching; the backbone, saying why, where the digest cannot match."""

import json
import shutil

from lab.compression.reproducible import state_digest
from lab.study.setup import load_base


def test_points_start_from_bp_run_again_with_the_recorded_digest(tiny_bundle):
    base = load_base(str(tiny_bundle / "bundle"), 1)
    prov = base.bundle.provenance
    assert base.start == "BP re-run (digest matches)"
    assert state_digest(base.start_state) == prov["reproducibility"]["bp_weights_sha256"]
    model = base.model()  # each point's model holds BP's weights, not the backbone
    assert state_digest(model.state_dict()) == prov["reproducibility"]["bp_weights_sha256"]
    assert base.compressor().teacher is not None  # the dense model teaches, as in compress


def test_a_digest_that_cannot_match_starts_from_the_backbone_and_says_why(tiny_bundle, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle / "bundle", copy)
    doc = json.loads((copy / "bundle.json").read_text())
    doc["provenance"]["reproducibility"]["bp_weights_sha256"] = "0" * 64
    (copy / "bundle.json").write_text(json.dumps(doc))
    base = load_base(str(copy), 1)
    assert base.start.startswith("backbone: BP run again gave another model")
    assert base.start_state is None and base.compressor().teacher is None
    other = load_base(str(tiny_bundle / "bundle"), 2)  # another thread count than compress's
    assert other.start == "backbone: compress ran BP at 1 thread(s), the study runs 2"
