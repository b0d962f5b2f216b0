"""The search's winner timed end to end before it is kept (``--estimator measured``).

The search chooses sets on the latency table's estimate, which sums one-layer savings and
is off from the whole set's time by a few percent either way (``rt3lab evaluate`` reports
by how much). The host profile then times every set end to end and derives its deadlines
by the bundle's rule from its own measurement of the anchor (dense or BP), so a set the
estimate put just under its deadline may miss every inference at that level: a demo's
rt3 lost 30 % of its inferences that way (pp-800 at 0.533 ms against 0.527 ms).

So the winner is timed as the profile will time it: its sets and the anchor in
interleaved rounds on the table's runtime, each the median of its runs, projected to its
level by the table's ``a + b/f`` rule; the deadlines derived from the measured anchor by
the run's rule (an explicit or a profile's deadline stays as it is). A set is kept when it
is within :data:`VERIFY_MARGIN` of its deadline: the profile's own repeat-to-repeat
spread on this host is 2-3 % (its medians' 95 % intervals). A set over it tightens its
level's deadline by the measured-over-estimated ratio, and the search's log is re-scored
under the tightened deadlines (:func:`repick`: every child the search evaluated keeps its
accuracies and estimates; one that met the old deadlines and meets the new ones is
re-ranked by RT3's reward) for the next round, up to :data:`VERIFY_ROUNDS`. Each round's
measurement is recorded in the bundle (``provenance.search.verification``).

>>> from lab.compression.search.reward import LevelSpec
>>> levels = [LevelSpec(1400000, 1.0, 1.0, 0.5), LevelSpec(800000, 1.0, 1.0, 0.5)]
>>> t = SetTiming(3, {"dense": 0.3}, [0.40, 0.55], [0.5, 0.5], [0.40, 0.48],
...               [0.5, 0.5])
>>> t.passed, [round(x, 3) for x in t.overshoot]
(False, [0.825, 1.134])
>>> [round(lv.deadline_ms, 4) for lv in tightened(levels, t)]
[0.5, 0.4233]
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lab.compression.search.calibration import Deadlines
    from lab.compression.search.reward import LevelSpec, RewardConfig

# A set is kept when its measured latency at its level is at most this share of the
# deadline: the host profile's medians move 2-3 % between repeats on this 2-core host.
VERIFY_MARGIN = 0.97
# Rounds of (time the winner, tighten, re-pick from the search's log) before giving up.
VERIFY_ROUNDS = 4


@dataclass(frozen=True)
class SetTiming:
    """One round: the child of ``episode`` timed end to end (``measured_ms``: host-clock
    medians of its sets ``level-i``, ``dense`` and the anchor), each set projected to its
    level (``at_level_ms``) against the deadline derived from the measured anchor
    (``deadline_ms``), beside the table's estimates and the deadlines the child was
    picked under (``search_deadline_ms``), all per level, highest first."""

    episode: int
    measured_ms: dict[str, float]
    at_level_ms: list[float]
    deadline_ms: list[float]
    estimate_ms: list[float]
    search_deadline_ms: list[float]

    @property
    def overshoot(self) -> list[float]:
        """Per level: the measured latency over :data:`VERIFY_MARGIN` x the deadline (a
        set is kept at 1.0 or under)."""
        return [
            t / (VERIFY_MARGIN * d) for t, d in zip(self.at_level_ms, self.deadline_ms, strict=True)
        ]

    @property
    def passed(self) -> bool:
        """Whether every set is within the margin of its deadline."""
        return all(x <= 1.0 for x in self.overshoot)

    def record(self) -> dict[str, Any]:
        """JSON form (one entry of ``provenance.search.verification``)."""
        return {
            "episode": self.episode,
            "passed": self.passed,
            "margin": VERIFY_MARGIN,
            "measured_host_ms": self.measured_ms,
            "at_level_ms": self.at_level_ms,
            "deadline_ms": self.deadline_ms,
            "estimate_ms": self.estimate_ms,
            "search_deadline_ms": self.search_deadline_ms,
        }


def measured_deadlines(
    deadlines: Deadlines, levels: Sequence[LevelSpec], anchor_at_top_ms: float | None
) -> list[float]:
    """The levels' deadlines by the run's rule on the anchor's measured latency at the
    highest level (``dense-top``, ``scaled``); the run's own where the rule has no anchor
    (explicit or a profile's).

    >>> from lab.compression.search.calibration import Deadlines
    >>> from lab.compression.search.reward import LevelSpec
    >>> d = Deadlines("dense-top", 0.01, (100.0, 50.0), "dense", 1.0)
    >>> lv = [LevelSpec(1400000, 1.0, 1.0, 1.0), LevelSpec(800000, 0.5, 1.0, 1.0)]
    >>> measured_deadlines(d, lv, 1.1)
    [1.1, 0.55]
    """
    if deadlines.anchor is None or anchor_at_top_ms is None:
        return [lv.deadline_ms for lv in levels]
    scale = anchor_at_top_ms / deadlines.constraints_ms[0]
    return [c * scale for c in deadlines.constraints_ms]


def tightened(levels: Sequence[LevelSpec], timing: SetTiming) -> list[LevelSpec]:
    """``levels`` with each level whose set missed the margin given the estimate-side
    deadline that the measured-over-estimated ratio says its set needs."""
    out = []
    for lv, over, est, at in zip(
        levels, timing.overshoot, timing.estimate_ms, timing.at_level_ms, strict=True
    ):
        if over <= 1.0 or est <= 0:
            out.append(lv)
            continue
        ratio = at / est  # measured over estimated, for sets like this one at this level
        need = VERIFY_MARGIN * timing.deadline_ms[len(out)] / ratio
        out.append(replace(lv, deadline_ms=min(lv.deadline_ms, need)))
    return out


def repick(
    log: Sequence[Mapping[str, Any]],
    levels: Sequence[LevelSpec],
    config: RewardConfig,
    exclude: set[int],
) -> Mapping[str, Any] | None:
    """The search log's entry with the best reward re-scored under ``levels`` among the
    children within every deadline (they were scored with accuracies), but those of the
    episodes in ``exclude``; None if there is none."""
    from lab.compression.search.reward import reward

    best: tuple[float, Mapping[str, Any]] | None = None
    for e in log:
        if e["episode"] in exclude or e.get("accuracy") is None:
            continue
        lats = e["latency_ms"]
        if any(lat > lv.deadline_ms for lat, lv in zip(lats, levels, strict=True)):
            continue
        r = reward(e["accuracy"], lats, levels, config).total
        if best is None or r > best[0]:
            best = (r, e)
    return None if best is None else best[1]


def median_ms(raw: Mapping[str, list[float]]) -> dict[str, float]:
    """Per variant, the median of its runs (seconds) in ms: the statistic the host profile
    reports.

    >>> median_ms({"a": [0.003, 0.001, 0.002]})
    {'a': 2.0}
    """
    return {k: 1e3 * statistics.median(v) for k, v in raw.items()}


def time_child(
    model: Any,
    sets: Sequence[Mapping[str, Any]],
    anchor: Mapping[str, Any] | None,
    table: Any,
    setup: Any,
) -> dict[str, float]:
    """Host-clock medians (ms) of ``sets`` (``level-i``), the model dense (``dense``) and
    the ``anchor`` masks (``anchor``, if given), timed end to end in interleaved rounds on
    the table's runtime (:func:`lab.compression.latency.check.measure_end_to_end`)."""
    from lab.compression.latency.check import measure_end_to_end

    named = {f"level-{i}": dict(m) for i, m in enumerate(sets)}
    if anchor is not None:
        named["anchor"] = dict(anchor)
    raw: dict[str, list[float]] = {}
    measure_end_to_end(model, named, setup, runtime=table.runtime, raw=raw)
    return median_ms(raw)


def verify_winner(
    p: Any, log: Sequence[Mapping[str, Any]], best_episode: int
) -> tuple[Mapping[str, Any], list[SetTiming]]:
    """The entry of ``log`` (the search's episodes: ``episode``, ``reward``, ``child``,
    ``latency_ms`` and, within the deadlines, ``accuracy``) to keep, starting from
    ``best_episode``'s, and every round's timing: the first child whose sets pass, else
    the one that missed by least. ``p`` is the run's
    :class:`lab.compression.pipeline.Prepared` (its table, deadlines, reward and masks)."""
    from lab.compression.latency.timing import TimingSetup
    from lab.compression.search.controller import Child

    c, table = p.c, p.table
    cfg = c.bp_config
    setup = TimingSetup(cfg.block_rows, cfg.block_cols, table.threads, c.task.seq_len)
    anchor = p.bp.masks if p.deadlines.anchor == "bp" else None
    given = list(c.levels_spec)
    levels = given
    by_episode = {e["episode"]: e for e in log}
    entry = by_episode[best_episode]
    timings: list[SetTiming] = []
    rep = c.reporter
    rep.stage("the search's winner timed end to end", VERIFY_ROUNDS)
    for _ in range(VERIFY_ROUNDS):
        key = child_key(entry["child"])
        ms = table.winners_ms.get(key)  # timed by the run that measured the table: replayed
        if ms is None or not _covers(ms, len(given), anchor is not None):
            child = Child.from_dict(entry["child"])
            sets = c.patterns.set_masks(p.bp.weights, p.bp.masks, p.cands, child)
            ms = time_child(p.model, sets, anchor, table, setup)
            table.winners_ms[key] = ms
        host = table.host_freq_khz
        at = [ms[f"level-{i}"] * host / lv.freq_khz for i, lv in enumerate(given)]
        top = ms["anchor" if anchor is not None else "dense"] * host / given[0].freq_khz
        timing = SetTiming(
            int(entry["episode"]),
            ms,
            at,
            measured_deadlines(p.deadlines, given, top),
            [float(x) for x in entry["latency_ms"]],
            [lv.deadline_ms for lv in levels],
        )
        timings.append(timing)
        rep.advance(1, f"episode {timing.episode}: worst {max(timing.overshoot):.3f} of margin")
        if timing.passed:
            break
        levels = tightened(levels, timing)
        nxt = repick(log, levels, p.rcfg, {t.episode for t in timings})
        if nxt is None:
            break
        entry = nxt
    keep = next((t for t in timings if t.passed), None) or min(
        timings, key=lambda t: max(t.overshoot)
    )
    return by_episode[keep.episode], timings


def child_key(child: Mapping[str, Any]) -> str:
    """A child's key in the table's ``winners_ms``: a digest of its decisions.

    >>> child_key({"levels": [0, 1], "patterns": [[2]]}) == child_key({"patterns": [[2]],
    ...                                                                 "levels": [0, 1]})
    True
    """
    import hashlib
    import json

    return hashlib.sha256(json.dumps(child, sort_keys=True).encode()).hexdigest()[:16]


def _covers(ms: Mapping[str, float], n_levels: int, anchor: bool) -> bool:
    """Whether a recorded timing has every set, the model dense and the anchor if needed."""
    need = [f"level-{i}" for i in range(n_levels)] + ["dense"] + (["anchor"] if anchor else [])
    return all(k in ms for k in need)


def verification_warning(timings: Sequence[SetTiming]) -> str | None:
    """The warning compress prints when no child it timed passed (None when one did)."""
    if not timings or any(t.passed for t in timings):
        return None
    kept = min(timings, key=lambda t: max(t.overshoot))
    worst = max(range(len(kept.overshoot)), key=lambda i: kept.overshoot[i])
    return (
        f"warning: the search's sets timed end to end miss their deadlines: after "
        f"{len(timings)} round(s) the kept set of level {worst} takes "
        f"{kept.at_level_ms[worst]:.4f} ms against {kept.deadline_ms[worst]:.4f} ms "
        f"(margin {VERIFY_MARGIN}); the host profile may count every inference there late"
    )
