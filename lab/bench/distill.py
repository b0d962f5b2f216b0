"""``rt3lab bench distill``: what distillation buys each pattern set, on one seed.

Two ``compress`` runs of one budget and seed, on the same dense model (cached), with RT3's
op-count latency by default (``--estimator op-count``: no timing noise, so the two runs
differ by distillation alone; a measured table could not be shared, its buckets being the
densities of each run's own BP model):

- **distilled**, with ``--distill-ablation``: the dense model teaches BP, the supernet and
  the final joint fine-tuning (:mod:`lab.compression.distill`); the chosen sets are then
  fine-tuned again from the same BP model without a teacher. That pair isolates the final
  fine-tuning's distillation on identical masks (``same_sets``).
- **--no-distill**, end to end: BP, the supernet, the search and the fine-tuning on the
  labels alone; its search may choose other sets (``end_to_end``).

Every figure is ``rt3lab evaluate``'s re-score of the bundle (test split). The document
ends with the sparsest set's gap to dense under each and the issue's target (1 point on
the quick budget, 2 on the default one).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from lab.compression.evaluation import Evaluation

app = typer.Typer()

# the target: the sparsest set within this many points of dense, by budget
TARGET_POINTS = {"quick": 1.0, "default": 2.0, "test": 100.0}


def run_distill_bench(
    budget_name: str = "quick",
    seed: int = 0,
    threads: int | None = 1,
    data: str = "builtin",
    estimator: str = "op-count",
    out: Path | None = None,
    deadlines: str = "auto",
    progress: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """Compress with and without distillation (same budget, seed, dense model and latency
    estimator; bundles under ``out``, else a temporary folder), evaluate both; the bench's
    JSON document."""
    import tempfile

    from lab.compression.budget import BUDGETS
    from lab.compression.evaluation import evaluate_bundle

    if budget_name not in BUDGETS:
        raise ValueError(f"--budget {budget_name!r}: expected one of {sorted(BUDGETS)}")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(out) if out is not None else Path(tmp)
        progress("compress: distilled, with the no-distillation ablation of its sets")
        run = {"budget_name": budget_name, "seed": seed, "threads": threads, "data": data}
        run["deadlines"] = deadlines
        taught = _compress(root / "distill", estimator, True, **run)
        progress("compress --no-distill")
        plain = _compress(root / "no-distill", estimator, False, **run)
        progress("evaluate both")
        a, b = evaluate_bundle(taught, threads=threads), evaluate_bundle(plain, threads=threads)
        distill = _provenance(taught)["distill"]
    return {
        "bench": "distill",
        "budget": budget_name,
        "seed": seed,
        "threads": threads,
        "data": data,
        "estimator": estimator,
        "deadlines": deadlines,
        "distill": distill,
        **figures(a, b, TARGET_POINTS.get(budget_name, 2.0)),
        "wall_s": round(time.monotonic() - t0, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "uptime": _uptime(),
    }


def _compress(
    out: Path,
    estimator: str,
    distilled: bool,
    budget_name: str,
    seed: int,
    threads: int | None,
    data: str,
    deadlines: str,
) -> Path:
    """One ``compress`` run into ``out``: ``distilled`` with the ablation, else
    ``--no-distill``."""
    from device_profiles import load_profile
    from lab.compression.budget import BUDGETS
    from lab.compression.options import CompressOptions
    from lab.compression.pipeline import compress
    from lab.compression.tasks import load_task

    budget = BUDGETS[budget_name]
    prof = load_profile("rt3-paper")
    kw: dict[str, Any] = {"distill_ablation": True} if distilled else {"distill": None}
    opts = CompressOptions(
        prof.name, out, budget, seed=seed, threads=threads, estimator=estimator,
        deadlines=deadlines, **kw,
    )  # fmt: skip
    return compress(load_task("rt3-transformer", data, budget), prof, opts)


def _provenance(bundle: Path) -> dict[str, Any]:
    return json.loads((bundle / "bundle.json").read_text())["provenance"]


def _set(row: Any, dense: float | None) -> dict[str, Any]:
    gap = None if row.accuracy is None or dense is None else round(100 * (dense - row.accuracy), 4)
    return {
        "set": row.name,
        "freq_mhz": None if row.freq_khz is None else row.freq_khz // 1000,
        "sparsity": row.sparsity,
        "accuracy": row.accuracy,
        "gap_to_dense_points": gap,
    }


def figures(taught: Evaluation, plain: Evaluation, target: float) -> dict[str, Any]:
    """The bench's figures from the two evaluations: dense, each set distilled and without
    (same sets; and end to end), and the sparsest set's gap to dense under each."""
    dense = taught.dense_accuracy
    rows = [r for r in taught.rows if r.name != "dense"]
    same = [
        {**_set(r, dense), "no_distill_accuracy": r.accuracy_no_distill}
        for r in rows
    ]  # fmt: skip
    plain_rows = [_set(r, plain.dense_accuracy) for r in plain.rows if r.name != "dense"]
    pp = [s for s in same if s["set"] != "bp"]
    sparsest = max(pp, key=lambda s: s["sparsity"])
    plain_sparsest = max((s for s in plain_rows if s["set"] != "bp"), key=lambda s: s["sparsity"])
    nd = sparsest["no_distill_accuracy"]
    same_gap = None if nd is None or dense is None else round(100 * (dense - nd), 4)
    return {
        "dense_accuracy": dense,
        "dense_accuracy_no_distill_run": plain.dense_accuracy,
        "same_sets": same,
        "end_to_end_no_distill": plain_rows,
        "sparsest": {
            "distilled": sparsest,
            "same_set_no_distill_gap_points": same_gap,
            "end_to_end_no_distill": plain_sparsest,
        },
        "target_gap_points": target,
        "meets_target": sparsest["gap_to_dense_points"] is not None
        and sparsest["gap_to_dense_points"] <= target,
    }


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def markdown_table(doc: dict[str, Any]) -> str:
    """The README's table of a recorded bench document: dense, then each set distilled,
    the same set fine-tuned without distillation, and the ``--no-distill`` run's set at the
    same level (its own sparsity).

    >>> doc = {"dense_accuracy": 0.2, "same_sets": [{"set": "pp-1400mhz", "freq_mhz": 1400,
    ...        "sparsity": 0.5, "accuracy": 0.19, "no_distill_accuracy": 0.18}],
    ...        "end_to_end_no_distill": [{"set": "pp-1400mhz", "sparsity": 0.6,
    ...        "accuracy": 0.17}]}
    >>> print(markdown_table(doc).splitlines()[-1])
    | pp-1400mhz | 1400 | 50.0 | 19.00 | 18.00 | +1.00 | 60.0 | 17.00 |
    """
    plain = {s["set"]: s for s in doc["end_to_end_no_distill"]}
    lines = [
        "| set | MHz | sparsity % | distilled % | same set, no distillation % | gain pt "
        "| --no-distill run: sparsity % | --no-distill run: acc. % |",
        "|---|---|---|---|---|---|---|---|",
        f"| dense | - | 0.0 | {_pct(doc['dense_accuracy'])} | - | - | 0.0 "
        f"| {_pct(doc.get('dense_accuracy_no_distill_run', doc['dense_accuracy']))} |",
    ]
    for s in doc["same_sets"]:
        nd, other = s["no_distill_accuracy"], plain.get(s["set"], {})
        gain = "-" if nd is None else f"{100 * (s['accuracy'] - nd):+.2f}"
        o_sp = other.get("sparsity")
        lines.append(
            f"| {s['set']} | {s['freq_mhz'] or '-'} | {100 * s['sparsity']:.1f} "
            f"| {_pct(s['accuracy'])} | {_pct(nd)} | {gain} "
            f"| {'-' if o_sp is None else f'{100 * o_sp:.1f}'} | {_pct(other.get('accuracy'))} |"
        )
    return "\n".join(lines)


@app.command("distill")
def distill_command(
    budget: Annotated[
        str, typer.Option("--budget", help="quick (the demo's), default, or test (seconds).")
    ] = "quick",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    threads: Annotated[int, typer.Option("--threads", help="Torch threads.")] = 1,
    data: Annotated[str, typer.Option("--data", help="builtin or wikitext2:DIR.")] = "builtin",
    estimator: Annotated[
        str,
        typer.Option(
            "--estimator",
            help="op-count (default: RT3's model, no timing noise) or measured (each run "
            "measures its own table).",
        ),
    ] = "op-count",
    out: Annotated[
        Path | None, typer.Option("--out", help="Keep both bundles under this folder.")
    ] = None,
    deadlines: Annotated[
        str, typer.Option("--deadlines", help="As compress's --deadlines (default auto).")
    ] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print only JSON.")] = False,
) -> None:
    """Compress with and without distillation (same seed); each set's accuracy under both."""
    import sys

    def say(msg: str) -> None:
        print(f"[bench distill] {msg}", file=sys.stderr, flush=True)

    doc = run_distill_bench(budget, seed, threads, data, estimator, out, deadlines, say)
    if as_json:
        typer.echo(json.dumps(doc, indent=2, allow_nan=False))
    else:
        typer.echo(markdown_table(doc))
        s = doc["sparsest"]["distilled"]
        met = "met" if doc["meets_target"] else "not met"
        typer.echo(
            f"sparsest set {s['set']}: {s['gap_to_dense_points']:.2f} points below dense "
            f"(target {doc['target_gap_points']:.0f}: {met})"
        )
