"""The deadline rules that anchor on a model (``dense-top``, ``scaled``, and the depth and
early-exit schemes' ``dense-top``) give the highest level the anchor's latency itself: the
model the rule anchors on meets that level's deadline for every timing, not only for the
timings where ``c * (a / c)`` happens to round back to ``a`` (a CI run once built a depth
bundle without its full depth at full clock, one ulp over)."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from lab.compression.schemes.exit_latency import ExitTimes, choose_depths
from lab.compression.search.calibration import anchored
from lab.compression.search.reward import LevelSpec

FREQS = (1_400_000, 1_000_000, 800_000)
ROOMY_MS = (115.0, 1000.0, 1000.0)  # every depth meets the lower levels at any timing

ms = st.floats(1e-3, 1e3, allow_nan=False, allow_infinity=False)


def _levels(constraints: tuple[float, ...]) -> list[LevelSpec]:
    return [LevelSpec(f, 1.0, 1.0, d) for f, d in zip(FREQS, constraints, strict=True)]


@settings(max_examples=300, deadline=None)
@given(anchor=ms, constraints=st.tuples(ms, ms, ms))
def test_the_top_deadline_is_the_anchor_and_the_ratios_are_kept(anchor, constraints):
    out, scale = anchored(_levels(constraints), anchor)
    assert out[0].deadline_ms == anchor
    assert scale == anchor / constraints[0]
    for lv, c, f in zip(out[1:], constraints[1:], FREQS[1:], strict=True):
        assert lv.deadline_ms == c * scale and lv.freq_khz == f


@settings(max_examples=300, deadline=None)
@given(host_ms=st.tuples(ms, ms, ms), host_khz=st.sampled_from((1_400_000, 2_208_000)))
def test_a_depth_bundle_anchored_on_its_full_depth_keeps_it_at_full_clock(host_ms, host_khz):
    full, mid, shallow = sorted(host_ms, reverse=True)
    times = ExitTimes(
        {"depth-2": [full], "depth-1": [mid], "depth-0": [shallow]}, host_khz, "engine"
    )
    levels, _ = anchored(_levels(ROOMY_MS), times.at("depth-2", FREQS[0])[0])
    chosen = choose_depths(
        SimpleNamespace(levels_spec=levels), times, {"depth-2": 2, "depth-1": 1, "depth-0": 0}
    )
    assert chosen[0].variant == "depth-2" and chosen[0].meets
