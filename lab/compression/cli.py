"""``rt3lab compress`` and ``rt3lab evaluate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.progress import Progress

    from lab.compression.evaluation import Evaluation

app = typer.Typer()


class RichReporter:
    """Progress bars with ETA, one per pipeline stage."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: Any = None

    def stage(self, name: str, total: int) -> None:
        """Start a bar for a new stage (the previous one is completed)."""
        if self.task is not None:
            t = self.progress.tasks[self.task]
            self.progress.update(self.task, completed=t.total)
        self.task = self.progress.add_task(name, total=max(total, 1), note="")

    def advance(self, n: int = 1, note: str = "") -> None:
        """Advance the current bar."""
        if self.task is not None:
            self.progress.update(self.task, advance=n, note=note)


def _progress(enabled: bool) -> Progress:
    """Bars on a terminal; one line per step (at most one a second) with elapsed time if not."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    import termout

    return termout.progress(
        TextColumn("{task.description:<42}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[note]}"),
        disable=not enabled,
    )


@app.command()
def compress(
    out: Path = typer.Option(..., "--out", help="Bundle directory to write."),
    model: str = typer.Option(
        "rt3-transformer",
        "--model",
        help="rt3-transformer (RT3's LM) or hf:DIR (a local Hugging Face BERT-family checkpoint).",
    ),
    data: str = typer.Option(
        "builtin", "--data", help="builtin or wikitext2:DIR (LM); glue:TASK:DIR (with hf:DIR)."
    ),
    profile: str = typer.Option("rt3-paper", "--profile", help="Device profile name or path."),
    episodes: int | None = typer.Option(
        None, "--episodes", help="RL episodes (default: the budget's, 100 quick, 300 default)."
    ),
    quick: bool = typer.Option(False, "--quick", help="The demo budget (about 3 minutes)."),
    seed: int = typer.Option(0, "--seed"),
    bp_config: Path | None = typer.Option(
        None, "--bp-config", help="BP YAML (default: RT3's per-layer sparsities)."
    ),
    block: int | None = typer.Option(None, "--block", help="Block size (rows = columns)."),
    family: str = typer.Option(
        "block-column", "--family", help="block-column (compacts) or elementwise (does not)."
    ),
    candidates: str = typer.Option(
        "fitted",
        "--candidates",
        help="fitted (Lloyd-fitted to the BP weights) or rt3 (RT3's shrunken search space).",
    ),
    exclusive: float = typer.Option(
        1.0,
        "--exclusive",
        help="Discount in [0, 1] of the weights a denser set keeps when a sparser set's "
        "patterns are fitted and assigned (0: plain nearest patterns).",
    ),
    estimator: str = typer.Option(
        "measured",
        "--estimator",
        help="measured (a latency table measured here on the runtime), op-count (RT3's "
        "model) or profile (the profile's variant latencies).",
    ),
    deadlines: str = typer.Option(
        "auto",
        "--deadlines",
        help="auto (dense-top with measured, scaled otherwise), dense-top (dense meets the "
        "top level exactly), scaled (BP does, as in RT3), profile (raw), or one deadline in "
        "ms per governor level, highest frequency first (e.g. 0.9,0.8,0.7).",
    ),
    reward_norm: str = typer.Option("auto", "--reward-norm", help="auto or rt3."),
    size: str | None = typer.Option(None, "--size", help="Model size: tiny, small or rt3."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Retrain the dense model."),
    threads: int | None = typer.Option(
        None, "--threads", help="Torch threads (default: every core; 1 is faster when shared)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print only the evaluation as JSON."),
    device: str = typer.Option(
        "auto",
        "--device",
        metavar="cpu|cuda|auto",
        help="Where training, the search's fine-tuning and scoring run (auto: CUDA if present).",
    ),
) -> None:
    """Compress a Transformer: BP, then RL-searched pattern sets, one per DVFS level."""
    from dataclasses import replace

    from device_profiles import load_profile
    from lab.compression.budget import DEFAULT, QUICK
    from lab.compression.evaluation import evaluate_bundle
    from lab.compression.pipeline import CompressOptions
    from lab.compression.pipeline import compress as run
    from lab.compression.sparsifier import CompressionError
    from lab.compression.tasks import MODEL_SPECS, load_task
    from lab.host.compute import compute_device, resolve_device

    if model != "rt3-transformer" and not model.startswith("hf:"):
        raise CompressionError(f"--model {model}: expected one of {list(MODEL_SPECS)}")
    dev = resolve_device(device)  # an unusable device fails before any data is read
    budget = QUICK if quick else DEFAULT
    if size is not None:
        budget = replace(budget, size=size)
        budget.model_config()  # validates the size name
    prof = load_profile(profile)
    # Validate cheap inputs before loading data or training anything.
    from lab.compression.block_pruning import load_bp_config
    from lab.compression.pattern_pruning import check_candidates
    from lab.compression.reward import governor_levels

    governor_levels(prof)
    check_candidates(candidates)
    load_bp_config(bp_config, block_rows=block, block_cols=block)
    opts = CompressOptions(
        profile=prof.name,
        out=out,
        budget=budget,
        seed=seed,
        episodes=episodes,
        bp_config=bp_config,
        block_rows=block,
        block_cols=block,
        family=family,
        candidates=candidates,
        exclusive=exclusive,
        estimator=estimator,
        deadlines=deadlines,
        reward_norm=reward_norm,
        use_cache=not no_cache,
        threads=threads,
    )
    task = load_task(model, data, budget)
    with _progress(not as_json) as progress, compute_device(dev):
        run(task, prof, opts, RichReporter(progress))
    with compute_device(dev):
        result = evaluate_bundle(out)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        _print_evaluation(result)


@app.command()
def evaluate(
    bundle: Path = typer.Option(..., "--bundle", help="Bundle directory."),
    data: str | None = typer.Option(
        None, "--data", help="Data to re-score on (default: the bundle's provenance.data)."
    ),
    threads: int | None = typer.Option(None, "--threads", help="torch threads."),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
    device: str = typer.Option(
        "auto", "--device", metavar="cpu|cuda|auto", help="Where scoring runs."
    ),
) -> None:
    """Re-score every pattern set on the test split: sparsity, accuracy, perplexity, delta
    to dense; then the baselines (as recorded by compress)."""
    from lab.compression.evaluation import evaluate_bundle
    from lab.host.compute import compute_device

    with compute_device(device):
        result = evaluate_bundle(bundle, data=data, threads=threads)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        _print_evaluation(result)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _print_evaluation(ev: Evaluation) -> None:
    from rich.console import Console
    from rich.table import Table

    from termout import console as make_console
    from termout import is_terminal

    console = make_console() if not is_terminal() else Console(width=max(Console().width, 120))
    t = Table(title=f"rt3lab evaluate: {ev.bundle} (re-scored on {ev.scored_on}, test split)")
    for col in (
        "set",
        "MHz",
        "family",
        "compacts",
        "sparsity %",
        "acc %",
        "ppl",
        "Δacc pt",
        "mults",
        "est ms",
        "meas ms",
    ):
        t.add_column(col, justify="left" if col in ("set", "family") else "right", no_wrap=True)
    for r in ev.rows:
        t.add_row(
            r.name,
            "-" if r.freq_khz is None else f"{r.freq_khz / 1000:.0f}",
            r.family,
            "-" if r.family == "dense" else ("yes" if r.compacts else "no"),
            _pct(r.sparsity),
            _pct(r.accuracy),
            "-" if r.perplexity is None else f"{r.perplexity:.1f}",
            "-" if r.delta_accuracy is None else f"{100 * r.delta_accuracy:+.2f}",
            f"{r.nonzero_mults:,}",
            "-" if r.latency_estimate_ms is None else f"{r.latency_estimate_ms:.3f}",
            "-" if r.latency_measured_ms is None else f"{r.latency_measured_ms:.3f}",
        )
    console.print(t)
    if ev.comparisons:
        c = Table(title="baselines at equal sparsity (baseline figures as recorded by compress)")
        for col in (
            "method",
            "sparsity %",
            "accuracy %",
            "baseline",
            "sparsity %",
            "accuracy %",
            "wins",
        ):
            c.add_column(col, justify="right" if "%" in col else "left")
        for cmp in ev.comparisons:
            c.add_row(
                cmp.method,
                _pct(cmp.sparsity),
                _pct(cmp.accuracy),
                cmp.baseline,
                _pct(cmp.baseline_sparsity),
                _pct(cmp.baseline_accuracy),
                "yes" if cmp.wins else "NO",
            )
        console.print(c)
    for name, ok in ev.checks.items():
        console.print(f"{'PASS' if ok else 'FAIL'}  {name.replace('_', ' ')}")
    for line in ev.mismatches:
        console.print(f"[yellow]warning[/]: not what bundle.json records: {line}")
    if any(r.family == "elementwise" for r in ev.rows):
        console.print(
            "note: elementwise sets (RT3's free patterns) do not compact; the runtime executes "
            "them as masked dense layers, no faster than dense"
        )
