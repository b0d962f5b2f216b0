"""``rt3lab study schemes``: which reconfiguration scheme buys the most battery, on one map.

For each scheme (``contracts.schemes.SCHEMES``: RT3's pattern sets, width, depth, early
exit), with the same budget, board and seed (:mod:`lab.study.scheme_runs`):

1. its bundle: ``compress --scheme`` (reused when a complete one of the scheme is already
   in ``DIR/bundles/SCHEME``; one of another scheme there is refused), under ``auto``
   deadlines, derived from the model's own timing: a level that none of the scheme's
   variants meets runs its fastest, and the entry's ``unmet_deadlines`` names it
   (:mod:`lab.compression.schemes.unmet_deadline`; the simulation counts the misses);
   a refusal by ``compress`` stops the study in one line (exit 2);
2. a host-calibrated profile of the bundle (``profile --power none``; an early-exit set's
   latency is its exits' distribution) and ``evaluate``'s per-sequence accuracies;
3. every policy simulated on the headline workload, rt3 (switching among the scheme's
   variants: "the scheme switching") and the baselines dense-max, dvfs-only:X for every
   variant, static-sparse and oracle, with 95 % intervals from ``simulator.bootstrap`` over
   the profile's timed runs and the test sequences (:mod:`lab.study.intervals`, as the demo).

Equal accuracy: per scheme, its longest-lasting policy whose mean accuracy is within
``--max-accuracy-loss`` points of the dense model (`best_within`); the scheme whose best
lasts longest buys the most battery at that accuracy, a clear winner only when its hours'
interval lies above every other scheme's (`compare_schemes`). The frontier plot
(``reports.schemes_map``): battery life against mean accuracy, one curve per scheme.

A small deadline map (:mod:`lab.study.scheme_deadlines`): every scheme's policies again at
a few top-level deadlines around ``dense-top``, on the variants as compressed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.study.grid import StudyError

STUDY_FILE = "schemes.json"
FIGURE_FILE = "schemes-frontier.png"
BUDGET_NAMES = ("quick", "default", "test")
FIGURES = ("battery_life_h", "on_time_inferences", "mean_accuracy")


def parse_schemes(text: str | Sequence[str]) -> tuple[str, ...]:
    """The schemes named in ``--schemes`` (comma-separated), in order, each once; an
    unknown one is a ``SchemeError`` naming the option.

    >>> parse_schemes("rt3, width,rt3")
    ('rt3', 'width')
    """
    from contracts.schemes import check_scheme

    names = text.split(",") if isinstance(text, str) else list(text)
    picked = [check_scheme(n.strip(), "--schemes") for n in names if n.strip()]
    if not picked:
        raise StudyError("--schemes: expected at least one scheme")
    return tuple(dict.fromkeys(picked))


@dataclass(frozen=True)
class SchemeStudyOptions:
    """``rt3lab study schemes``'s options: ``schemes`` (comma-separated text or names),
    the compression ``budget`` (quick, default or test), the ``board``, the study directory
    ``out``, the ``data`` compress reads, bootstrap ``resamples``, the equal-accuracy bound
    ``max_accuracy_loss`` (points below dense), one ``seed`` for all, torch ``threads``."""

    schemes: str | Sequence[str] = "rt3,width,depth,early-exit"
    budget: str = "quick"
    board: str = "rt3-paper"
    out: Path = Path("schemes-study")
    data: str = "builtin"
    resamples: int = 200
    max_accuracy_loss: float = 1.0
    seed: int = 0
    threads: int | None = None
    picked: tuple[str, ...] = field(default=(), init=False)

    def check(self) -> None:
        """Bad input, one line each, before anything trains: an unknown scheme or one not
        built yet, budget, board, resamples, bound or threads."""
        from device_profiles import load_profile
        from lab.study.scheme_runs import check_builders
        from simulator.accuracy_bound import check_accuracy_loss

        object.__setattr__(self, "picked", parse_schemes(self.schemes))
        if self.budget not in BUDGET_NAMES:
            raise StudyError(f"--budget {self.budget}: expected one of {list(BUDGET_NAMES)}")
        if self.resamples < 1:
            raise StudyError(f"--resamples {self.resamples}: expected at least 1")
        if self.threads is not None:
            from lab.host.threads import check_threads

            check_threads(self.threads)
        check_accuracy_loss(self.max_accuracy_loss)
        load_profile(self.board)
        check_builders(self.picked)


def study_policies(variant_names: Sequence[str]) -> list[str]:
    """rt3 and the headline baselines, then every variant held fixed under the governor.

    >>> study_policies(["dense", "w-0.5"])
    ['rt3', 'dense-max', 'dvfs-only:dense', 'static-sparse', 'oracle', 'dvfs-only:w-0.5']
    """
    from simulator import headline_policies

    head = headline_policies(list(variant_names))
    return [*head, *(f"dvfs-only:{n}" for n in variant_names if f"dvfs-only:{n}" not in head)]


def policy_figures(spread: dict[str, Any], dense: float | None, bound: float) -> dict[str, Any]:
    """One policy's figures from its bootstrap spread: hours, on-time inferences and mean
    accuracy with their 95 % intervals, the table it ran, its accuracy loss in points
    against ``dense`` and whether that is within ``bound``.

    >>> f = policy_figures({"battery_life_h": 5.0, "mean_accuracy": 0.295}, 0.3, 1.0)
    >>> round(f["accuracy_loss_points"], 6), f["within_accuracy"]
    (0.5, True)
    """
    out = {k: spread.get(k) for k in (*FIGURES, *(f"{k}_ci95" for k in FIGURES))}
    out["table"] = spread.get("table")
    acc = spread.get("mean_accuracy")
    loss = None if acc is None or dense is None else (dense - acc) * 100.0
    out["accuracy_loss_points"] = loss
    out["within_accuracy"] = loss is not None and loss <= bound + 1e-9
    return out


def best_within(policies: dict[str, dict[str, Any]], bound: float) -> dict[str, Any] | None:
    """The longest-lasting policy whose mean accuracy is within ``bound`` points of dense
    (the first such in order on a tie), with its hours, their interval and its accuracy;
    None when no policy is.

    >>> pols = {"a": {"battery_life_h": 9.0, "within_accuracy": False},
    ...         "b": {"battery_life_h": 4.0, "battery_life_h_ci95": [3.5, 4.5],
    ...               "within_accuracy": True, "mean_accuracy": 0.3}}
    >>> best_within(pols, 1.0)["policy"]
    'b'
    """
    within = [
        (name, f)
        for name, f in policies.items()
        if f.get("within_accuracy") and f.get("battery_life_h") is not None
    ]
    if not within:
        return None
    name, f = max(within, key=lambda item: item[1]["battery_life_h"])
    return {
        "policy": name,
        "battery_life_h": f["battery_life_h"],
        "ci95": f.get("battery_life_h_ci95"),
        "mean_accuracy": f.get("mean_accuracy"),
        "mean_accuracy_ci95": f.get("mean_accuracy_ci95"),
        "accuracy_loss_points": f.get("accuracy_loss_points"),
        "max_accuracy_loss": bound,
    }


def _overlaps(a: Sequence[float] | None, b: Sequence[float] | None) -> bool:
    return a is None or b is None or (a[0] <= b[1] and b[0] <= a[1])


def compare_schemes(best: dict[str, dict[str, Any] | None], bound: float) -> dict[str, Any]:
    """Which scheme's best policy within ``bound`` lasts longest: ``winner`` (None when no
    scheme has one), ``clear`` (its interval overlaps no other's), ``overlapping`` (the
    schemes whose intervals overlap the winner's) and ``sentences``.

    >>> c = compare_schemes({"rt3": {"policy": "rt3", "battery_life_h": 5.0, "ci95": [4, 6]},
    ...                      "width": {"policy": "oracle", "battery_life_h": 4.5,
    ...                                "ci95": [4.4, 4.6]}}, 1.0)
    >>> c["winner"], c["clear"], c["overlapping"]
    ('rt3', False, ['width'])
    """
    having = {s: b for s, b in best.items() if b is not None}
    sentences = [_scheme_sentence(s, b, bound) for s, b in best.items()]
    if not having:
        sentences.append(f"No scheme has a policy within {bound:g} point(s) of dense.")
        return {"winner": None, "clear": False, "overlapping": [], "sentences": sentences}
    winner = max(having, key=lambda s: having[s]["battery_life_h"])
    w = having[winner]
    overlapping = [
        s for s, b in having.items() if s != winner and _overlaps(w.get("ci95"), b.get("ci95"))
    ]
    lead = (
        f"Within {bound:g} point(s) of dense, {winner} buys the most battery: "
        f"{hours_text(w)} with {w['policy']}"
    )
    if len(having) == 1:
        sentences.append(f"{lead}; no other scheme has a policy within the bound.")
    elif overlapping:
        sentences.append(
            f"{lead}, but its interval overlaps {', '.join(overlapping)}'s: no clear winner."
        )
    else:
        sentences.append(f"{lead}; its interval lies above every other scheme's.")
    return {
        "winner": winner,
        "clear": not overlapping,
        "overlapping": overlapping,
        "sentences": sentences,
    }


def hours_text(b: dict[str, Any]) -> str:
    """A best policy's hours with their interval.

    >>> hours_text({"battery_life_h": 5.0, "ci95": [4.5, 5.5]})
    '5.00 h [4.50, 5.50]'
    """
    ci = b.get("ci95")
    return f"{b['battery_life_h']:.2f} h" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def _scheme_sentence(scheme: str, b: dict[str, Any] | None, bound: float) -> str:
    if b is None:
        return f"{scheme}: no policy within {bound:g} point(s) of dense."
    loss = b.get("accuracy_loss_points")
    side = "below" if loss is None or loss >= 0 else "above"
    below = "" if loss is None else f", {abs(loss):.2f} points {side} dense"
    acc = b.get("mean_accuracy")
    at = "" if acc is None else f" at accuracy {acc:.4f}{below}"
    within = f"its longest within {bound:g} point(s)"
    return f"{scheme}: {b['policy']} lasts {hours_text(b)}{at}, {within}."


def deadline_sentence(entries: dict[str, dict[str, Any]]) -> str:
    """What the schemes' deadlines were: each profile's own timing of the same dense model
    sets them (``dense-top``), so they differ by that timing's noise alone.

    >>> print(deadline_sentence({"rt3": {"deadlines_ms": {"8": 90.0, "14": 100.0}},
    ...                          "width": {"deadlines_ms": {"8": 93.0, "14": 103.0}}}))
    Top-level deadlines (the dense model at full clock, in each scheme's profile): 100 to 103 ms.
    """
    tops = [
        max(e["deadlines_ms"].items(), key=lambda kv: int(kv[0]))[1]
        for e in entries.values()
        if e.get("deadlines_ms")
    ]
    if not tops:
        return "No scheme's profile has deadlines."
    return (
        "Top-level deadlines (the dense model at full clock, in each scheme's profile): "
        f"{min(tops):.4g} to {max(tops):.4g} ms."
    )


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by None (strict JSON).

    >>> finite({"a": [1.0, float("nan")]})
    {'a': [1.0, None]}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def scheme_study(o: SchemeStudyOptions, say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the study (see the module's docstring); write ``schemes.json`` and the frontier
    figure to ``o.out`` and return the JSON document."""
    from lab.study.deadlines import host_name
    from lab.study.scheme_deadlines import NOTE, map_sentences
    from lab.study.scheme_map import frontier, scheme_entry
    from lab.study.scheme_runs import RunSettings, measure_scheme

    say = say or (lambda _m: None)
    if not o.picked:
        o.check()
    o.out.mkdir(parents=True, exist_ok=True)
    settings = RunSettings(o.data, o.board, o.budget, o.seed, o.threads)
    entries: dict[str, dict[str, Any]] = {}
    for scheme in o.picked:
        run = measure_scheme(o.out, scheme, settings, say)
        say(f"{scheme}: simulating every policy, {o.resamples} resamples")
        entries[scheme] = scheme_entry(run, o, study_policies)
    summary = compare_schemes(
        {s: e["best_within_accuracy"] for s, e in entries.items()}, o.max_accuracy_loss
    )
    summary["sentences"].append(deadline_sentence(entries))
    summary["deadline_map_sentences"] = map_sentences(entries, o.max_accuracy_loss)
    doc = finite(
        {
            "study": "schemes",
            "board": o.board,
            "budget": o.budget,
            "seed": o.seed,
            "data": o.data,
            "host": host_name(),
            "max_accuracy_loss": o.max_accuracy_loss,
            "resamples": o.resamples,
            "schemes": entries,
            "summary": summary,
            "deadline_map": NOTE,
        }
    )
    doc["figures"] = [str(frontier(doc, o.out / FIGURE_FILE))]
    (o.out / STUDY_FILE).write_text(
        json.dumps(doc, indent=1, allow_nan=False) + "\n", encoding="utf-8"
    )
    return doc
