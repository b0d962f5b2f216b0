"""``rt3lab compress`` and ``rt3lab evaluate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lab.compression.distill import Distillation

if TYPE_CHECKING:
    from rich.progress import Progress

    from lab.compression.evaluation import Evaluation, SetRow

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


def progress_bars(enabled: bool = True) -> Progress:
    """Bars on a terminal, else one line per step (at most one a second) with elapsed time;
    on standard error."""
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


# The options, declared once; the commands' signatures name them.
Out = Annotated[Path, typer.Option("--out", help="Bundle directory to write.")]
Model = Annotated[
    str,
    typer.Option(
        "--model",
        help="rt3-transformer (RT3's LM) or hf:DIR (a local Hugging Face BERT-family checkpoint).",
    ),
]
Data = Annotated[
    str,
    typer.Option("--data", help="builtin or wikitext2:DIR (LM); glue:TASK:DIR (with hf:DIR)."),
]
Profile = Annotated[str, typer.Option("--profile", help="Device profile name or path.")]
Episodes = Annotated[
    int | None,
    typer.Option("--episodes", help="RL episodes (default: the budget's, 100 quick, 300 default)."),
]
Quick = Annotated[bool, typer.Option("--quick", help="The demo budget (about 3 minutes).")]
Seed = Annotated[int, typer.Option("--seed")]
BPConfigFile = Annotated[
    Path | None,
    typer.Option("--bp-config", help="BP YAML (default: RT3's per-layer sparsities)."),
]
Block = Annotated[int | None, typer.Option("--block", help="Block size (rows = columns).")]
Family = Annotated[
    str,
    typer.Option("--family", help="block-column (compacts) or elementwise (does not)."),
]
Candidates = Annotated[
    str,
    typer.Option(
        "--candidates",
        help="fitted (Lloyd-fitted to the BP weights) or rt3 (RT3's shrunken search space).",
    ),
]
Exclusive = Annotated[
    float,
    typer.Option(
        "--exclusive",
        help="Discount in [0, 1] of the weights a denser set keeps when a sparser set's "
        "patterns are fitted and assigned (0: plain nearest patterns).",
    ),
]
Estimator = Annotated[
    str,
    typer.Option(
        "--estimator",
        help="measured (a latency table measured here on the runtime), op-count (RT3's "
        "model) or profile (the profile's variant latencies).",
    ),
]
Deadlines = Annotated[
    str,
    typer.Option(
        "--deadlines",
        help="auto (dense-top with measured, scaled otherwise), dense-top (dense meets the "
        "top level exactly), scaled (BP does, as in RT3), profile (raw), or one deadline in "
        "ms per governor level, highest frequency first (e.g. 0.9,0.8,0.7).",
    ),
]
RewardNorm = Annotated[str, typer.Option("--reward-norm", help="auto or rt3.")]
Size = Annotated[str | None, typer.Option("--size", help="Model size: tiny, small or rt3.")]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Retrain the dense model.")]
Threads = Annotated[
    int | None,
    typer.Option("--threads", help="Torch threads (default: every core; 1 is faster when shared)."),
]
LatencyTableFile = Annotated[
    Path | None,
    typer.Option(
        "--latency-table",
        help="Choose deadlines, level combinations and rewards on this recorded latency table "
        "(a latency_table.json, or a bundle directory holding one) instead of measuring one: "
        "the same table and seed give the same bundle.",
    ),
]
SchemeName = Annotated[
    str,
    typer.Option(
        "--scheme",
        metavar="rt3|width|depth|early-exit",
        help="What the run-time-switchable variants are: rt3 (BP + pattern sets, searched), "
        "width (DynaBERT: nested heads and FFN neurons), depth or early-exit; one variant per "
        "DVFS level, chosen for its deadline on the measured latency table.",
    ),
]
Thresholds = Annotated[
    str | None,
    typer.Option(
        "--thresholds",
        metavar="T,T,T",
        help="--scheme early-exit: the confidence threshold of each governor level, highest "
        "frequency first, in [0, 1] and never rising as the frequency drops (default: chosen "
        "per level for its deadline).",
    ),
]
NoDistill = Annotated[
    bool,
    typer.Option(
        "--no-distill",
        help="Train BP, the supernet and the sets on the labels alone (default: the dense "
        "model teaches them, KL on the logits at --distill-temperature plus MSE on the "
        "hidden states).",
    ),
]
DistillTemperature = Annotated[
    float, typer.Option("--distill-temperature", help="Temperature T of the soft logits (> 0).")
]
DistillAlpha = Annotated[
    float,
    typer.Option("--distill-alpha", help="Weight in [0, 1] of the hard-label loss; 1 - it, KL's."),
]
DistillHidden = Annotated[
    float,
    typer.Option("--distill-hidden-weight", help="Weight (>= 0) of the hidden-state MSE."),
]
DistillAblation = Annotated[
    bool,
    typer.Option(
        "--distill-ablation",
        help="Also fine-tune the chosen sets without distillation from the same BP model and "
        "keep them, so evaluate shows each set with and without.",
    ),
]
CompressJson = Annotated[bool, typer.Option("--json", help="Print only the evaluation as JSON.")]
CompressDevice = Annotated[
    str,
    typer.Option(
        "--device",
        metavar="cpu|cuda|auto",
        help="Where training, the search's fine-tuning and scoring run (auto: CUDA if present).",
    ),
]


@app.command()
def compress(
    out: Out,
    model: Model = "rt3-transformer",
    data: Data = "builtin",
    profile: Profile = "rt3-paper",
    episodes: Episodes = None,
    quick: Quick = False,
    seed: Seed = 0,
    bp_config: BPConfigFile = None,
    block: Block = None,
    family: Family = "block-column",
    candidates: Candidates = "fitted",
    exclusive: Exclusive = 1.0,
    estimator: Estimator = "measured",
    deadlines: Deadlines = "auto",
    reward_norm: RewardNorm = "auto",
    size: Size = None,
    no_cache: NoCache = False,
    threads: Threads = None,
    as_json: CompressJson = False,
    device: CompressDevice = "auto",
    latency_table: LatencyTableFile = None,
    scheme: SchemeName = "rt3",
    thresholds: Thresholds = None,
    no_distill: NoDistill = False,
    distill_temperature: DistillTemperature = Distillation.temperature,
    distill_alpha: DistillAlpha = Distillation.alpha,
    distill_hidden_weight: DistillHidden = Distillation.hidden_weight,
    distill_ablation: DistillAblation = False,
) -> None:
    """Compress a Transformer into one bundle of run-time-switchable variants, one per DVFS
    level: RT3's BP and RL-searched pattern sets (default), or another --scheme."""
    from lab.compression.evaluation import evaluate_bundle
    from lab.compression.options import CompressRequest
    from lab.compression.pipeline import compress_request

    request = CompressRequest(
        out, model, data, profile, episodes, quick, seed, bp_config, block, family,
        candidates, exclusive, estimator, deadlines, reward_norm, size, no_cache, threads,
        device, latency_table, scheme, thresholds, not no_distill, distill_temperature,
        distill_alpha, distill_hidden_weight, distill_ablation,
    )  # fmt: skip
    with progress_bars(not as_json) as progress:
        compress_request(request, RichReporter(progress))
    _show(evaluate_bundle(out, device=device, scheme=scheme), as_json)


@app.command()
def evaluate(
    bundle: Annotated[Path, typer.Option("--bundle", help="Bundle directory.")],
    data: Annotated[
        str | None,
        typer.Option("--data", help="Data to re-score on (default: the bundle's provenance.data)."),
    ] = None,
    threads: Annotated[int | None, typer.Option("--threads", help="torch threads.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only JSON.")] = False,
    device: Annotated[
        str, typer.Option("--device", metavar="cpu|cuda|auto", help="Where scoring runs.")
    ] = "auto",
    per_sequence: Annotated[
        bool,
        typer.Option(
            "--per-sequence",
            help="With --json: also each test sequence's accuracy per set (for a bootstrap).",
        ),
    ] = False,
    allow_mismatch: Annotated[
        bool,
        typer.Option(
            "--allow-mismatch",
            help="Report figures bundle.json records that the re-score does not reproduce, "
            "and go on (default: refuse, exit 2).",
        ),
    ] = False,
    scheme: Annotated[
        str | None,
        typer.Option(
            "--scheme",
            metavar="rt3|width|depth|early-exit",
            help="Refuse the bundle unless it is of this scheme (default: any).",
        ),
    ] = None,
) -> None:
    """Re-score every pattern set on the test split: sparsity, accuracy, perplexity, delta
    to dense; then the baselines, re-scored where the bundle keeps them."""
    from lab.compression.evaluation import evaluate_bundle

    ev = evaluate_bundle(
        bundle,
        data=data,
        threads=threads,
        device=device,
        allow_mismatch=allow_mismatch,
        scheme=scheme,
    )
    _show(ev, as_json, per_sequence)


def _show(ev: Evaluation, as_json: bool, per_sequence: bool = False) -> None:
    """The evaluation as JSON (``--json``: the result serialised) or as tables."""
    if as_json:
        typer.echo(json.dumps(ev.to_dict(per_sequence), indent=2, allow_nan=False))
    else:
        _print_evaluation(ev)


def _over_bound(r: SetRow) -> str:
    """The serving call's median over the bound call's, timed in the same rounds."""
    if not r.latency_bound_median_ms or r.latency_measured_median_ms is None:
        return "-"
    return f"{r.latency_measured_median_ms / r.latency_bound_median_ms:.3f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _print_evaluation(ev: Evaluation) -> None:
    from rich.console import Console
    from rich.table import Table

    from lab.compression.evaluation import check_line
    from termout import console as make_console
    from termout import is_terminal

    console = make_console() if not is_terminal() else Console(width=max(Console().width, 120))
    t = Table(title=f"rt3lab evaluate: {ev.bundle} (re-scored on {ev.scored_on}, test split)")
    ablation = any(r.accuracy_no_distill is not None for r in ev.rows)
    for col in (
        "set",
        "MHz",
        "family",
        "compacts",
        "sparsity %",
        "acc %",
        *(["acc no-distill %"] if ablation else []),
        "ppl",
        "Δacc pt",
        "mults",
        "est ms",
        "meas ms",
        "meas/bound",
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
            *([_pct(r.accuracy_no_distill)] if ablation else []),
            "-" if r.perplexity is None else f"{r.perplexity:.1f}",
            "-" if r.delta_accuracy is None else f"{100 * r.delta_accuracy:+.2f}",
            f"{r.nonzero_mults:,}",
            "-" if r.latency_estimate_ms is None else f"{r.latency_estimate_ms:.3f}",
            "-" if r.latency_measured_ms is None else f"{r.latency_measured_ms:.3f}",
            _over_bound(r),
        )
    console.print(t)
    if ev.comparisons:
        c = Table(title="baselines at equal sparsity (re-scored; * as recorded by compress)")
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
                cmp.baseline + ("" if cmp.baseline_rescored else " *"),
                _pct(cmp.baseline_sparsity),
                _pct(cmp.baseline_accuracy),
                "yes" if cmp.wins else "NO",
            )
        console.print(c)
    for name, ok in ev.checks.items():
        console.print(check_line(name, ok), highlight=False)
    for line in ev.mismatches:
        console.print(f"[yellow]warning[/]: not what bundle.json records: {line}")
    for line in ev.notes:
        console.print(f"note: {line}", highlight=False)
    if any(r.family == "elementwise" for r in ev.rows):
        console.print(
            "note: elementwise sets (RT3's free patterns) do not compact; the runtime executes "
            "them as masked dense layers, no faster than dense"
        )
