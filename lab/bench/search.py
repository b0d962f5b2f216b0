"""``rt3lab bench search``: does the RL controller learn? RL against random search and an
evolutionary search (as HAT uses), at an equal number of child evaluations.

One preparation (dense, BP, candidates, the measured latency table, calibration, the
supernet; seed 0) serves every method and seed, so all of them score children on the same
models with the same evaluator (:meth:`lab.compression.pipeline.Prepared.evaluate`); the
methods are :mod:`lab.compression.search.methods`. Per method and seed: the best reward,
the best child's weighted accuracy (RT3's loss weights) and whether it meets every
deadline, and the mean reward in each quarter of the evaluations (the learning curve); then
means with a 95 % t-interval over the seeds.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer

from contracts import strict_json

if TYPE_CHECKING:
    from lab.compression.search.controller import Child, SearchSpace
    from lab.compression.search.reinforce import Outcome

app = typer.Typer()

_LABELS = {"rl": "RL"}  # how the progress log names a method
# two-sided 95 % Student t quantiles by degrees of freedom
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def mean_ci95(values: list[float]) -> tuple[float, list[float]]:
    """Mean and 95 % t-interval (a zero-width interval for one value).

    >>> mean_ci95([1.0, 2.0, 3.0])
    (2.0, [-0.484338, 4.484338])
    """
    n = len(values)
    m = sum(values) / n
    if n < 2:
        return m, [m, m]
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    h = _T95.get(n - 1, 1.96) * sd / math.sqrt(n)
    return m, [round(m - h, 6), round(m + h, 6)]


def quartiles(rewards: list[float]) -> list[float]:
    """Mean reward in each quarter of the evaluations, in order.

    >>> quartiles([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    [0.5, 2.5, 4.5, 6.5]
    """
    n = len(rewards)
    out = []
    for q in range(4):
        part = rewards[q * n // 4 : (q + 1) * n // 4] or rewards[-1:]
        out.append(sum(part) / len(part))
    return out


def _summary(runs: list[tuple[Child, Outcome]], weights: tuple[float, ...]) -> dict[str, Any]:
    rewards = [o.reward for _, o in runs]
    best = max(range(len(runs)), key=lambda i: rewards[i])
    o = runs[best][1]
    accs = o.detail.get("accuracy")
    met = not o.detail.get("reward_parts", {}).get("violated", True)
    return {
        "best_reward": rewards[best],
        "best_weighted_accuracy": None
        if accs is None
        else sum(w * a for w, a in zip(weights, accs, strict=True)),
        "all_deadlines_met": met,
        "reward_by_quartile": quartiles(rewards),
        "evaluations": len(runs),
    }


def run_search_bench(
    budget_name: str = "quick",
    seeds: int = 3,
    threads: int | None = 1,
    data: str = "builtin",
    profile: str = "rt3-paper",
    deadlines: str = "auto",
    estimator: str = "measured",
    progress: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """Prepare once, run every method with ``seeds`` seeds; the bench's JSON document."""
    import tempfile
    from pathlib import Path

    from device_profiles import load_profile
    from lab.compression.budget import BUDGETS
    from lab.compression.compressor import Compressor
    from lab.compression.options import CompressOptions, SilentReporter
    from lab.compression.pipeline import prepare_search
    from lab.compression.tasks import load_task
    from lab.model.training import torch_threads

    if budget_name not in BUDGETS:
        raise ValueError(f"--budget {budget_name!r}: expected one of {sorted(BUDGETS)}")
    if seeds < 1:
        raise ValueError(f"--seeds {seeds}: expected at least 1")
    budget = BUDGETS[budget_name]
    t0 = time.monotonic()
    prof = load_profile(profile)
    with tempfile.TemporaryDirectory() as tmp, torch_threads(threads):
        opts = CompressOptions(
            prof.name,
            Path(tmp),
            budget,
            seed=0,
            threads=threads,
            deadlines=deadlines,
            estimator=estimator,
        )
        task = load_task("rt3-transformer", data, budget)
        c = Compressor(task, prof, opts, SilentReporter())
        progress("preparing: dense, BP, candidates, latency table, supernet")
        p = prepare_search(c, opts, SilentReporter(), with_rbp=False)
        prep_s = time.monotonic() - t0
        memo: dict[str, Outcome] = {}

        def evaluate(child: Child, episode: int) -> Outcome:
            key = json.dumps(child.to_dict())
            if key not in memo:
                memo[key] = p.evaluate(child, episode)
            return memo[key]

        n = budget.episodes
        per_seed = _per_seed(p.space, evaluate, n, seeds, c.loss_weights, progress)
    return {
        "bench": "search",
        "budget": budget_name,
        "seeds": seeds,
        "evaluations_per_method": n,
        "threads": threads,
        "deadlines": deadlines,
        "estimator": estimator,
        "allowed_level_combinations": len(p.space.allowed or ()),
        "scoring": "masked evaluation of the supernet",
        "supernet_steps": budget.supernet_steps,
        "child_tokens": budget.child_tokens,
        "distinct_children_scored": len(memo),
        "prepare_s": round(prep_s, 1),
        "wall_s": round(time.monotonic() - t0, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "methods": {m: _across_seeds(rows, n) for m, rows in per_seed.items()},
    }


def _per_seed(
    space: SearchSpace,
    evaluate: Callable[[Child, int], Outcome],
    n: int,
    seeds: int,
    weights: tuple[float, ...],
    progress: Callable[[str], None],
) -> dict[str, list[dict[str, Any]]]:
    """Every search method's summary (:data:`lab.compression.search.methods.SEARCH_METHODS`)
    for each seed, the methods in turn within a seed."""
    from lab.compression.search.methods import SEARCH_METHODS

    per_seed: dict[str, list[dict[str, Any]]] = {m: [] for m in SEARCH_METHODS}
    for seed in range(seeds):
        for m, method in SEARCH_METHODS.items():
            progress(f"seed {seed}: {_LABELS.get(m, m)}")
            calls: list[int] = []
            row = _summary(method(space, _counting(evaluate, calls), n, seed), weights)
            # What the method spent, counted at the evaluator, not what it returned.
            row["evaluations"] = len(calls)
            per_seed[m].append(row)
    return per_seed


def _counting(
    evaluate: Callable[[Child, int], Outcome], calls: list[int]
) -> Callable[[Child, int], Outcome]:
    """``evaluate``, appending each episode it is called for to ``calls``."""

    def counted(child: Child, episode: int) -> Outcome:
        calls.append(episode)
        return evaluate(child, episode)

    return counted


def _across_seeds(rows: list[dict[str, Any]], n: int) -> dict[str, Any]:
    """One method's per-seed summaries as means with 95 % intervals.

    Every seed must have spent exactly ``n`` evaluations (the bench compares methods at an
    equal number): a method that spent another number is a RuntimeError, not a row.
    """
    spent = [r["evaluations"] for r in rows]
    if any(k != n for k in spent):
        raise RuntimeError(f"a search method spent {spent} evaluations per seed; expected {n}")
    best, best_ci = mean_ci95([r["best_reward"] for r in rows])
    accs = [r["best_weighted_accuracy"] for r in rows if r["best_weighted_accuracy"] is not None]
    acc, acc_ci = mean_ci95(accs) if accs else (None, None)
    met, met_ci = mean_ci95([1.0 if r["all_deadlines_met"] else 0.0 for r in rows])
    return {
        "best_reward": best,
        "best_reward_ci95": best_ci,
        "best_weighted_accuracy": acc,
        "best_weighted_accuracy_ci95": acc_ci,
        "all_deadlines_met": met,
        "all_deadlines_met_ci95": met_ci,
        "reward_by_quartile": [
            sum(r["reward_by_quartile"][q] for r in rows) / len(rows) for q in range(4)
        ],
        "evaluations": spent[0],
        "per_seed": rows,
    }


def markdown_table(doc: dict[str, Any]) -> str:
    """The README's table of a ``bench search --json`` document (tests compare the two)."""
    lines = [
        "| method | best reward [95% CI] | best weighted acc. % | deadlines met | "
        "mean reward by quartile of evaluations | evaluations |",
        "|---|---|---|---|---|---|",
    ]
    for m, r in doc["methods"].items():
        acc = r["best_weighted_accuracy"]
        lines.append(
            "| {} | {:.3f} [{:.3f}, {:.3f}] | {} | {:.2f} | {} | {} |".format(
                m,
                r["best_reward"],
                *r["best_reward_ci95"],
                "-" if acc is None else f"{100 * acc:.2f}",
                r["all_deadlines_met"],
                " / ".join(f"{q:.2f}" for q in r["reward_by_quartile"]),
                r["evaluations"],
            )
        )
    return "\n".join(lines)


@app.command()
def search(
    budget: str = typer.Option("quick", "--budget", help="quick or default (compress's)."),
    seeds: int = typer.Option(3, "--seeds", help="Seeds per method."),
    threads: int = typer.Option(1, "--threads", help="Torch threads."),
    data: str = typer.Option("builtin", "--data", help="builtin or wikitext2:DIR."),
    deadlines: str = typer.Option("auto", "--deadlines", help="As compress's --deadlines."),
    estimator: str = typer.Option(
        "measured", "--estimator", help="As compress's --estimator (op-count: load-independent)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """RL vs random vs evolutionary search at equal child evaluations (same models)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    doc = run_search_bench(
        budget,
        seeds,
        threads,
        data,
        deadlines=deadlines,
        estimator=estimator,
        progress=(lambda m: None) if as_json else console.log,
    )
    if as_json:
        typer.echo(strict_json.dumps(doc, indent=2))
        return
    t = Table(
        title=f"search, {budget} budget: {doc['evaluations_per_method']} evaluations per "
        f"method, {seeds} seeds (mean [95% CI]); load {doc['load_average']}"
    )
    for col in (
        "method",
        "best reward",
        "best weighted acc.",
        "deadlines met",
        "reward by quartile",
    ):
        t.add_column(col)
    for m, r in doc["methods"].items():
        acc = r["best_weighted_accuracy"]
        t.add_row(
            m,
            "{:.3f} [{:.3f}, {:.3f}]".format(r["best_reward"], *r["best_reward_ci95"]),
            "-" if acc is None else f"{100 * acc:.2f} %",
            f"{r['all_deadlines_met']:.2f}",
            " / ".join(f"{q:.2f}" for q in r["reward_by_quartile"]),
        )
    Console().print(t)
