"""The search's winner timed end to end before it is kept (lab.compression.search.verify):
recorded with the measurement it was made on, replayed from the table by a rerun, a
planted slow winner replaced by a re-pick from the search's log, the decision rules."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device_profiles import load_profile
from lab.compression.budget import TEST
from lab.compression.latency.table import TABLE_FILE, LatencyTable, LatencyTableError
from lab.compression.options import CompressOptions
from lab.compression.pipeline import compress, load_lm_data
from lab.compression.search.reward import LevelSpec, RewardConfig, reward
from lab.compression.search.verify import (
    VERIFY_MARGIN,
    SetTiming,
    child_key,
    repick,
    tightened,
)
from lab.runtime.bundle import Bundle


class Lines:
    """A progress sink keeping every stage's name (warnings are stages)."""

    def __init__(self):
        self.stages = []

    def stage(self, name, total):
        self.stages.append(name)

    def advance(self, n=1, note=""):
        pass


def _compress(wiki_dir, out, reporter=None, **kw):
    data = load_lm_data(f"wikitext2:{wiki_dir}", TEST)
    opts = CompressOptions("rt3-paper", out, TEST, seed=1, threads=1, **kw)  # measured
    compress(data, load_profile("rt3-paper"), opts, reporter)
    return Bundle.load(out)


def test_the_winner_is_timed_as_the_profile_times_it_and_recorded(wiki_dir, tmp_path):
    b = _compress(wiki_dir, tmp_path / "a")
    p = b.provenance
    rounds = p["search"]["verification"]
    table = LatencyTable.load(tmp_path / "a" / TABLE_FILE)
    levels = [1400000, 1000000, 800000]
    constraints = p["deadlines"]["constraint_ms"]
    assert rounds and not any(r["passed"] for r in rounds[:-1])  # the first that passes ends
    for r in rounds:
        ms = r["measured_host_ms"]
        assert set(ms) == {"level-0", "level-1", "level-2", "dense"}  # dense-top: dense anchors
        host = table.host_freq_khz
        assert r["at_level_ms"] == pytest.approx([ms[f"level-{i}"] * host / f
                                                  for i, f in enumerate(levels)])  # fmt: skip
        top = ms["dense"] * host / levels[0]  # the rule, on the measured anchor
        assert r["deadline_ms"] == pytest.approx([c * top / constraints[0] for c in constraints])
        ok = all(
            t <= VERIFY_MARGIN * d for t, d in zip(r["at_level_ms"], r["deadline_ms"], strict=True)
        )
        assert r["passed"] == ok
        # the measurement is kept with the table it was made beside (a rerun replays it)
        entry = next(e for e in _log(tmp_path / "a") if e["episode"] == r["episode"])
        assert table.winners_ms[child_key(entry["child"])] == ms
    kept = next((r for r in rounds if r["passed"]), None) or min(
        rounds,
        key=lambda r: max(
            t / (VERIFY_MARGIN * d) for t, d in zip(r["at_level_ms"], r["deadline_ms"], strict=True)
        ),
    )
    assert p["search"]["best_episode"] == kept["episode"]
    assert p["latency_table"]["winners_ms"] == table.winners_ms  # the bundle records them


def _log(out):
    return json.loads((out / "search" / "search.json").read_text())["log"]


def test_a_rerun_on_the_table_replays_and_a_planted_slow_winner_is_replaced(wiki_dir, tmp_path):
    a = _compress(wiki_dir, tmp_path / "a", episodes=16)  # a log with children to re-pick
    first = a.provenance["search"]["verification"][0]
    # the table given back: the same search, the same timings replayed (nothing re-timed)
    again = _compress(wiki_dir, tmp_path / "b", latency_table=tmp_path / "a", episodes=16)
    assert again.provenance["search"]["verification"] == a.provenance["search"]["verification"]
    assert again.provenance["search"]["best_child"] == a.provenance["search"]["best_child"]
    # planted: the RL winner's lowest level timed 8 % over the margin of its deadline
    c, rounds, _ = _planted(wiki_dir, tmp_path, "c", first, 1.08)
    assert len(rounds) > 1  # re-picked from the log under a tighter deadline at that level
    assert rounds[1]["episode"] != rounds[0]["episode"]
    assert rounds[1]["search_deadline_ms"][2] < rounds[0]["search_deadline_ms"][2]
    assert rounds[1]["search_deadline_ms"][:2] == rounds[0]["search_deadline_ms"][:2]
    assert c.provenance["search"]["best_episode"] != first["episode"]
    # three times its deadline: no child of the log is fast enough; kept, with a warning
    d, rounds, stages = _planted(wiki_dir, tmp_path, "d", first, 3.0)
    assert len(rounds) == 1 and d.provenance["search"]["best_episode"] == first["episode"]
    assert any(s.startswith("warning: the search's sets timed end to end") for s in stages)


def _planted(wiki_dir, tmp_path, name, first, over):
    """compress on run a's table with its winner's lowest level timed ``over`` times the
    margin of its deadline: the bundle, its verification rounds and the stages printed."""
    doc = json.loads((tmp_path / "a" / TABLE_FILE).read_text())
    winner = next(e for e in _log(tmp_path / "a") if e["episode"] == first["episode"])
    key = child_key(winner["child"])
    slow = dict(doc["winners_ms"][key])
    at_level = over * VERIFY_MARGIN * first["deadline_ms"][2]
    slow["level-2"] = at_level * 800000 / doc["host_freq_khz"]  # back to the host's clock
    doc["winners_ms"] = {key: slow}
    planted = tmp_path / f"{name}.json"
    planted.write_text(json.dumps(doc))
    lines = Lines()
    b = _compress(wiki_dir, tmp_path / name, lines, latency_table=planted, episodes=16)
    rounds = b.provenance["search"]["verification"]
    assert rounds[0]["episode"] == first["episode"] and not rounds[0]["passed"]
    assert rounds[0]["measured_host_ms"]["level-2"] == pytest.approx(slow["level-2"])
    return b, rounds, lines.stages


def test_a_table_with_malformed_winners_is_refused_by_field(tmp_path):
    t = LatencyTable({"hostname": "h", "cpu": "c"}, 1, "2026-01-01T00:00:00Z", 2_000_000, 35,
                     0.9, {"fc": [(0.5, 0.7), (1.0, 0.9)]})  # fmt: skip
    path = t.save(tmp_path / TABLE_FILE)
    doc = json.loads(path.read_text())
    for bad, field in (
        ({"k": {"level-0": -1.0}}, "winners_ms.k.level-0"),
        ({"k": {"level-0": True}}, "winners_ms.k.level-0"),
        ({"k": []}, "winners_ms"),
        ([1], "winners_ms"),
        ({str(i): {"dense": 1.0} for i in range(65)}, "winners_ms"),
    ):
        path.write_text(json.dumps({**doc, "winners_ms": bad}))
        with pytest.raises(LatencyTableError, match=f"{path}: field {field}"):
            LatencyTable.load(path, host={"hostname": "h", "cpu": "c"})
    del doc["winners_ms"]
    path.write_text(json.dumps(doc))
    assert LatencyTable.load(path, host={"hostname": "h", "cpu": "c"}).winners_ms == {}


LEVELS = [LevelSpec(1400000, 3.0, 1.0, 1.0), LevelSpec(1000000, 3.0, 1.0, 1.2),
          LevelSpec(800000, 3.0, 1.0, 1.4)]  # fmt: skip
ms = st.floats(0.2, 2.0)


@settings(max_examples=200, deadline=None)
@given(at=st.lists(ms, min_size=3, max_size=3), est=st.lists(ms, min_size=3, max_size=3))
def test_tightening_never_loosens_and_leaves_passing_levels(at, est):
    deadlines = [lv.deadline_ms for lv in LEVELS]
    t = SetTiming(0, {}, at, deadlines, est, deadlines)
    out = tightened(LEVELS, t)
    for lv, new, over, a, e in zip(LEVELS, out, t.overshoot, at, est, strict=True):
        assert new.deadline_ms <= lv.deadline_ms
        if over <= 1.0:
            assert new == lv
        else:  # a set like it (same measured/estimated ratio) would now pass at the margin
            assert new.deadline_ms * a / e <= VERIFY_MARGIN * lv.deadline_ms * (1 + 1e-9)


entries = st.lists(
    st.tuples(
        st.lists(ms, min_size=3, max_size=3),
        st.one_of(st.none(), st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3)),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(rows=entries, exclude=st.sets(st.integers(0, 11), max_size=4))
def test_repick_is_the_best_rescored_child_within_the_new_deadlines(rows, exclude):
    cfg = RewardConfig(acc_lo=0.0, runs_lo=0.0, runs_hi=1e6)
    log = [{"episode": i, "latency_ms": lat, "accuracy": acc, "child": {"i": i}}
           for i, (lat, acc) in enumerate(rows)]  # fmt: skip
    got = repick(log, LEVELS, cfg, exclude)

    def eligible(e):
        within = all(x <= lv.deadline_ms for x, lv in zip(e["latency_ms"], LEVELS, strict=True))
        return e["episode"] not in exclude and e["accuracy"] is not None and within

    ok = [e for e in log if eligible(e)]
    if not ok:
        assert got is None
    else:
        best = max(reward(e["accuracy"], e["latency_ms"], LEVELS, cfg).total for e in ok)
        assert reward(got["accuracy"], got["latency_ms"], LEVELS, cfg).total == best
