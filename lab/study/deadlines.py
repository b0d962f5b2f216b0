"""``rt3lab study deadlines``: the deadline map of a bundle.

The top level's deadline is swept from RT3's BP anchor (``scaled``: BP meets it exactly) to
``dense-top`` (the dense model does) and past it (:mod:`lab.study.grid`). At each point:

1. the per-level deadlines, RT3's ratios between levels scaled to the point's;
2. the search re-run at those deadlines and the chosen sets fine-tuned and re-scored on the
   test split (:mod:`lab.study.point_search`, on a dask worker);
3. the sets re-timed end to end on the engine with BP and the dense model, on this host
   (:mod:`lab.study.timing`), and the point's deadlines laid on those times
   (:mod:`lab.study.plan`: the search went by the latency table's units);
4. every policy simulated on a host-calibrated profile with the point's deadlines, with
   95 % intervals (:mod:`lab.study.point_sim`, on a dask worker).

The points run on dask as ``rt3lab sweep``'s cells do (``simulator.sweep.start_client``: a
local cluster by default, ``--scheduler ADDRESS`` for a real one, whose workers need
rt3lab, the bundle's path and its data). Timing stays on this host, one session after the
searches, so no point is timed beside another point's training.
"""

from __future__ import annotations

import contextlib
import json
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.study.grid import DEFAULT_POINTS, StudyError, check_points

STUDY_FILE = "deadlines.json"
REUSED = [
    "BP's weights: BP run again from the bundle's dense model and checked against the digest "
    "compress recorded; where it cannot match (start), the backbone (BP-masked, jointly "
    "fine-tuned) instead: each point's supernet and final fine-tuning start from it, the "
    "dense model teaching as in compress",
    "the dense weights, BP's mask, the options, BP config, seed and episodes compress recorded",
    "the measured latency table (the search's estimate), or one measured now where the "
    "bundle has none for this host",
    "pattern candidates fitted again on those weights (same options and seed)",
]
RERUN = [
    "the level combinations worth sampling, the reward's normalisation, the supernet "
    "(joint training on random children), RT3's REINFORCE search and the joint fine-tuning "
    "of the best child's sets, at each point's deadlines",
    "the test-split scoring of the dense model, BP's mask and each point's sets (as evaluate "
    "scores)",
    "the timing of every set, BP and the dense model end to end on the engine, on this "
    "host, in one session after the searches",
    "every policy's discharge on a host-calibrated profile with the point's deadlines, and "
    "its bootstrap",
]


@dataclass(frozen=True)
class DeadlineStudyOptions:
    """``rt3lab study deadlines``'s options (``in_process``: local dask workers as threads
    in this process; ``threads``: torch and engine threads when the bundle's latency table
    is not used, which fixes them)."""

    bundle: Path
    points: int = DEFAULT_POINTS
    out: Path | None = None
    scheduler: str = "local"
    workers: int | None = None
    in_process: bool = False
    threads: int | None = None
    episodes: int | None = None
    resamples: int = 200

    def check(self) -> None:
        """Bad options, refused before anything is loaded (``StudyError``)."""
        check_points(self.points)
        for name in ("episodes", "workers", "threads"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or value < 1):
                raise StudyError(f"--{name} {value}: expected an integer >= 1")
        if self.resamples < 1:
            raise StudyError(f"--resamples {self.resamples}: expected an integer >= 1")
        if not (Path(self.bundle) / "bundle.json").is_file():
            raise StudyError(f"--bundle {self.bundle}: no bundle.json there")


@contextlib.contextmanager
def _work_dir(out: Path | None) -> Iterator[Path]:
    """``out`` (created), or a temporary directory removed afterwards."""
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        yield out
        return
    with tempfile.TemporaryDirectory(prefix="rt3lab-study-") as d:
        yield Path(d)


def _on_dask(client: Any, fn: Callable, specs: list, say: Callable[[str], None], verb: str) -> list:
    """``fn`` over ``specs`` on the cluster, in spec order; a line as each finishes."""
    from dask.distributed import as_completed

    futures = client.map(fn, specs, pure=False)
    order = {f.key: i for i, f in enumerate(futures)}
    out: list[Any] = [None] * len(specs)
    for n, (fut, res) in enumerate(as_completed(futures, with_results=True), 1):
        out[order[fut.key]] = res
        say(f"  point {order[fut.key] + 1} {verb} ({n}/{len(specs)})")
    return out


def _client(o: DeadlineStudyOptions) -> Any:
    from simulator.sweep import start_client

    return start_client(o.scheduler, o.workers, processes=not o.in_process)


def _close(client: Any) -> None:
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


def deadline_study(
    o: DeadlineStudyOptions, say: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Run the study (see the module's docstring) and return its JSON document; with
    ``o.out``, also write it (``deadlines.json``) and the two figures there."""
    from lab.study.document import assemble
    from lab.study.plan import Plan, plan_points, sim_specs

    say = say or (lambda _m: None)
    o.check()
    t0 = time.perf_counter()
    with _work_dir(o.out) as work:
        plan: Plan = plan_points(o, work, say)
        client = _client(o)
        try:
            say(f"searching {len(plan.specs)} points on dask ({o.scheduler})")
            found = _on_dask(client, _search_point(), plan.specs, say, "searched")
            say("timing every point's sets with BP and the dense model on this host")
            plan.time_points(found, o.points)
            sims = _on_dask(client, _simulate_point(), sim_specs(plan, found, o), say,
                            "simulated")  # fmt: skip
        finally:
            _close(client)
    doc = assemble(plan, found, sims, time.perf_counter() - t0)
    if o.out is not None:
        from lab.study.plots import write_figures

        doc["figures"] = [str(p) for p in write_figures(doc, o.out)]
        (o.out / STUDY_FILE).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return doc


def _search_point() -> Callable:
    from lab.study.point_search import search_point

    return search_point


def _simulate_point() -> Callable:
    from lab.study.point_sim import simulate_point

    return simulate_point


def host_name() -> str:
    """This host in words: name, machine and processor."""
    cpu = platform.processor() or "cpu"
    return f"host {platform.node() or 'unknown'} ({platform.machine()}, {cpu})"
