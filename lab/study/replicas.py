"""Bundle replicas: the bundle compressed again from a latency table measured anew, so that
the demo's intervals include the spread from one bundle to the next (issue 29).

Training is deterministic per seed; the latency table ``compress`` measures is the one
source of run-to-run variation (see the compression README, "Reproducibility"): another
table gives other deadlines (under ``dense-top`` and ``scaled`` they anchor on its
estimate) and the search, chaotic in it, other sets. A replica is a deadline-study point
whose table was re-measured:

1. a fresh table on the bundle's model (``Compressor.measure_latency``, written to
   ``replica-K/latency_table.json``), its buckets made as ``compress`` made the bundle's
   (``buckets`` in the record says where a layer's differ: the candidates are fitted
   again on the study's start, BP run again or the backbone, :mod:`lab.study.setup`);
2. the deadlines by the bundle's rule (``provenance.deadlines.mode``) on that table
   (``calibrate_deadlines``);
3. the search re-run at those deadlines with the bundle's seed, the sets fine-tuned and
   scored (:func:`lab.study.point_search.search_point`, on dask as the study's points);
4. every replica's sets re-timed with BP and the dense model in one session on this host
   (:func:`lab.study.timing.time_sets`) and simulated on a host-calibrated profile whose
   top-level deadline follows the same rule on those times
   (:mod:`lab.study.point_sim`).

Each replica keeps what the pooled intervals (``lab.study.intervals.pooled_intervals``)
resample: its profile, its timed runs and its test sequences.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.study.grid import StudyError

if TYPE_CHECKING:
    from lab.compression.latency.table import LatencyTable
    from lab.study.intervals import PoolMember
    from lab.study.point_search import PointSets, PointSpec
    from lab.study.setup import StudyBase

REPLICAS_FILE = "replicas.json"
ANCHOR = {"dense-top": "dense", "scaled": "bp"}  # the model each rule anchors on


def _rule(base: StudyBase) -> tuple[str, tuple[float, ...] | None]:
    """The bundle's deadline rule, and its deadlines where they were given explicitly."""
    rec = base.bundle.provenance.get("deadlines") or {}
    mode = str(rec.get("mode") or "dense-top")
    if mode != "explicit":
        return mode, None
    ms = rec.get("deadline_ms") or {}
    return mode, tuple(float(ms[k]) for k in sorted(ms, key=int, reverse=True))


def replica_spec(base: StudyBase, k: int, work: Path, episodes: int) -> tuple[PointSpec, dict]:
    """Replica ``k``'s search task: a fresh table measured into ``work/replica-K`` and the
    deadlines by the bundle's rule on it; with its record (the table's file and dense
    estimate, its buckets against the bundle table's, the deadlines' record)."""
    from lab.compression.latency.table import TABLE_FILE, LatencyTable
    from lab.compression.search.calibration import calibrate_deadlines
    from lab.model.training import torch_threads
    from lab.study.point_search import PointSpec

    mode, explicit = _rule(base)
    out = work / f"replica-{k}"
    own = LatencyTable.load(base.path / TABLE_FILE, threads=base.threads)
    c = base.compressor(explicit, None, rule=mode)
    model = base.model()
    with torch_threads(base.threads):
        table = c.measure_latency(model, base.bp.weights, base.bp.masks, base.cands, out)
        deadlines = calibrate_deadlines(c, model, base.bp.masks)
    at = [lv.deadline_ms for lv in c.levels_spec]
    by_level = {str(lv.freq_khz): lv.deadline_ms for lv in c.levels_spec}
    record = {
        "index": k,
        "latency_table": {"file": str(out / TABLE_FILE), "date": table.date,
                          "dense_ms": table.dense_ms},
        "bundle_table": {"file": str(base.path / TABLE_FILE), "date": own.date,
                         "dense_ms": own.dense_ms},
        "buckets": _buckets_note(table, own),
        "deadlines": deadlines.record(mode, by_level),
    }  # fmt: skip
    return PointSpec(k, str(base.path), tuple(at), table, episodes, base.threads), record


def _buckets_note(table: LatencyTable, own: LatencyTable) -> str:
    """Whether ``table`` was measured at ``own``'s buckets (layer densities), and where
    not: the buckets are made as ``compress`` makes them, from the candidates, which a
    study fits again on its start (BP run again: the same; the backbone, where BP's digest
    does not match: a layer's densities can move by a block or two)."""
    mine, theirs = table.buckets(), own.buckets()
    differ = sorted(n for n in theirs if mine.get(n) != theirs[n])
    if not differ:
        return "the bundle's"
    return (
        f"the bundle's except at {', '.join(differ)} (candidates fitted again on the "
        "study's start; the table interpolates between its densities)"
    )


def _top_ms(base: StudyBase, runs: dict[str, list[float]], host_khz: int, spec: PointSpec) -> float:
    """The simulation's top-level deadline by the bundle's rule on the timed medians (the
    searched one, in the table's units, under a rule without an anchor)."""
    from lab.study.grid import timing_constraints
    from lab.study.timing import at_level, median_ms

    anchor = ANCHOR.get(_rule(base)[0])
    if anchor is None:
        return spec.deadlines_ms[0]
    return at_level(median_ms(runs[anchor]), host_khz, max(timing_constraints(base.profile)))


def _record(rec: dict, f: PointSets, sim: Any) -> dict[str, Any]:
    """A replica's JSON: its table and deadlines, its sets, BP, its search, its simulation
    (as a study point's) and what its pool member holds (profile, runs, sequences)."""
    from lab.study.point_sim import point_profile, point_samples, simulate_point

    profile = point_profile(sim)
    keys = ("name", "freq_khz", "level", "sparsity", "accuracy", "perplexity",
            "latency_estimate_ms")  # fmt: skip
    search = {k: f.search.get(k) for k in ("best_reward", "level_combinations", "note")}
    return {
        **rec,
        "sets": [{k: s.get(k) for k in keys} for s in f.sets],
        "bp": f.bp,
        "search": {**search, "wall_s": round(f.wall_s, 2)},
        "top_deadline_ms": sim.top_ms,
        "simulation": simulate_point(sim),
        "member": {
            "profile": profile.model_dump(mode="json", exclude_none=True),
            "latency_samples_ms": {
                n: {str(k): v for k, v in by.items()}
                for n, by in point_samples(sim, profile.levels_khz).items()
            },
            "accuracy_samples": sim.sequences,
        },
    }


def bundle_replicas(
    bundle: Path,
    n: int,
    work: Path,
    *,
    in_process: bool = False,
    scheduler: str = "local",
    resamples: int = 100,
    say: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """``n`` replicas of ``bundle`` (see the module's docstring), their files under
    ``work``; the JSON document (also written to ``work/replicas.json``)."""
    from lab.study.deadlines import DeadlineStudyOptions, _client, _close, _on_dask
    from lab.study.plan import point_variants
    from lab.study.point_search import dense_scores, search_point
    from lab.study.point_sim import SimSpec
    from lab.study.setup import load_base
    from lab.study.timing import bundle_table, time_sets

    say = say or (lambda _m: None)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise StudyError(f"replicas {n!r}: expected an integer >= 1")
    t0 = time.perf_counter()
    table, why = bundle_table(bundle, None)
    if table is None:
        raise StudyError(f"{bundle}: no measured latency table to replicate: {why}")
    base = load_base(str(Path(bundle).resolve()), table.threads)
    episodes = int(base.bundle.provenance.get("episodes") or base.budget.episodes)
    work.mkdir(parents=True, exist_ok=True)
    made = []
    for k in range(1, n + 1):
        say(f"  replica {k}: measuring a latency table anew")
        made.append(replica_spec(base, k, work, episodes))
    options = DeadlineStudyOptions(Path(bundle), in_process=in_process, scheduler=scheduler)
    client = _client(options)
    try:
        found = _on_dask(client, search_point, [s for s, _ in made], say, "searched (replica)")
    finally:
        _close(client)
    say("timing every replica's sets with BP and the dense model on this host")
    sets = {f"p{f.index}-{name}": masks for f in found for name, masks in f.masks.items()}
    runs = time_sets(base, table, {"bp": base.bp.masks, **sets})
    acc, _, dense_seqs = dense_scores(base)
    profile = base.profile.model_dump(mode="json", exclude_none=True)
    seed, host_khz = base.opts.seed, table.host_freq_khz
    records = []
    for (spec, rec), f in zip(made, found, strict=True):
        seqs = {"dense": dense_seqs, **f.sequences} if dense_seqs and f.sequences else {}
        top = _top_ms(base, runs, host_khz, spec)
        variants = point_variants(base, acc, runs, f)
        sim = SimSpec(f.index, profile, top, host_khz, _host(), variants, seqs, resamples, seed)
        records.append(_record(rec, f, sim))
    doc = {"bundle": str(base.path), "rule": _rule(base)[0], "replicas": records,
           "wall_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
    (work / REPLICAS_FILE).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return doc


def _host() -> str:
    from lab.study.deadlines import host_name

    return host_name()


def replica_members(doc: dict[str, Any], workload: str = "periodic") -> list[PoolMember]:
    """The pool members of a replicas document (``bundle_replicas``'s), each simulated
    under ``workload`` on its own profile."""
    from device_profiles.loader import profile_from_dict
    from lab.study.intervals import PoolMember

    out = []
    for r in doc.get("replicas", []):
        m = r["member"]
        name = f"replica {r['index']}"
        out.append(
            PoolMember(
                name,
                profile_from_dict(m["profile"], source=f"{REPLICAS_FILE} {name}"),
                None,
                workload,
                {n: {int(k): list(v) for k, v in by.items()}
                 for n, by in m["latency_samples_ms"].items()},
                {n: list(s) for n, s in (m.get("accuracy_samples") or {}).items()},
            )
        )  # fmt: skip
    return out
