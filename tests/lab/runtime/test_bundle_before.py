"""A bundle written before the lab was restructured (issue 28) still loads, through the lab's
reader with its weights and checksums, and through the simulator's torch-free reader."""

from __future__ import annotations

import shutil
from pathlib import Path

from lab.runtime.bundle import Bundle
from simulator.bundle import variants_from_bundle

BEFORE = Path(__file__).resolve().parents[2] / "data" / "bundle_before"


def test_old_bundle_loads_with_weights(tmp_path):
    root = shutil.copytree(BEFORE, tmp_path / "b")
    bundle = Bundle.load(root)
    assert sorted(bundle.sets) == ["bp", "pp-1400mhz"]
    assert bundle.dense.keys() == bundle.backbone.keys() != set()
    assert bundle.entries["pp-1400mhz"].freq_khz == 1400000


def test_old_bundle_gives_simulator_variants():
    variants = {v.name: v for v in variants_from_bundle(BEFORE)}
    assert list(variants) == ["bp", "pp-1400mhz", "dense"]
    assert variants["pp-1400mhz"].accuracy == 0.999
