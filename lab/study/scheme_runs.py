"""One scheme's measurements for ``rt3lab study schemes``: its bundle (compressed, or reused
when a complete one of the same scheme is already there), the host-calibrated profile of
that bundle (``rt3lab profile --power none``, as the demo's), and its evaluation with each
test sequence's accuracy (``evaluate --json --per-sequence``).

Every file lives under the study's directory: ``bundles/SCHEME`` (the bundle),
``profiles/SCHEME.yaml`` (with the timed runs and the calibration beside it) and
``profiles/SCHEME.evaluate.json``. A profile or evaluation is reused only beside a reused
bundle; a bundle compressed again makes both again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

Say = Callable[[str], None]

# timing of the host profile per budget: the test budget's tiny model in a blink
TIMING: dict[str, dict[str, Any]] = {
    "test": dict(min_runs=3, max_runs=15, time_cap_s=0.3, warmup=1),
    "quick": dict(time_cap_s=3.0),
    "default": dict(time_cap_s=3.0),
}


@dataclass(frozen=True)
class SchemeRun:
    """What one scheme's part of the study measured: the bundle, its host profile and
    ``evaluate``'s dict with per-sequence accuracies; ``reused`` names what was found
    already made (``bundle``, ``profile``, ``evaluation``)."""

    scheme: str
    bundle: Path
    profile: Path
    evaluation: dict[str, Any]
    reused: tuple[str, ...]


@dataclass(frozen=True)
class RunSettings:
    """The settings every scheme of a study shares: data, board, budget, seed, threads."""

    data: str
    board: str
    budget: str
    seed: int
    threads: int | None


def same_run(doc: dict[str, Any], s: RunSettings, where: str) -> None:
    """A bundle made on another budget, seed or board than the study's is refused
    (``StudyError`` naming them): reusing it would compare schemes on unequal terms.

    >>> doc = {"provenance": {"budget": {"name": "test"}, "seed": 0, "profile": "rt3-paper"}}
    >>> try:
    ...     same_run(doc, RunSettings("builtin", "rt3-paper", "quick", 0, None), "b")
    ... except ValueError as e:
    ...     print(str(e)[:60])
    b: compressed with budget test, seed 0, board rt3-paper; thi
    """
    from lab.study.grid import StudyError

    prov = doc.get("provenance") if isinstance(doc.get("provenance"), dict) else {}
    budget = prov.get("budget")
    made = (
        budget.get("name") if isinstance(budget, dict) else budget,
        prov.get("seed"),
        prov.get("profile"),
    )
    if made != (s.budget, s.seed, s.board):
        raise StudyError(
            f"{where}: compressed with budget {made[0]}, seed {made[1]}, board {made[2]}; "
            f"this study asks budget {s.budget}, seed {s.seed}, board {s.board} (remove it, "
            "or choose another --out)"
        )


def complete_bundle(path: Path, scheme: str, s: RunSettings | None = None) -> bool:
    """True when ``path`` holds a complete bundle of ``scheme`` (it loads, checksums and
    all); False when it holds none or a broken one. A bundle of another scheme, or (with
    ``s``) made on another budget, seed or board, is refused in one line (``SchemeError``,
    ``StudyError``): the study neither overwrites nor reuses it."""
    from contracts.schemes import expect_scheme
    from lab.runtime.bundle import Bundle

    index = path / "bundle.json"
    if not index.is_file():
        return False
    try:
        doc = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(doc, dict):
        return False
    expect_scheme(doc, scheme, str(index))
    if s is not None:
        same_run(doc, s, str(index))
    try:
        Bundle.load(path, scheme=scheme)
    except (OSError, ValueError):
        return False
    return True


def compress_scheme(path: Path, scheme: str, s: RunSettings) -> Path:
    """Compress ``scheme`` into ``path`` on the settings' budget (``compress_request``; the
    test budget, which ``compress`` has no option for, by the quick request's resolved
    inputs with the budget replaced and the task loaded again on it)."""
    from lab.compression import budget as budgets
    from lab.compression.options import CompressRequest
    from lab.compression.pipeline import compress_request

    request = CompressRequest(
        out=path, data=s.data, profile=s.board, quick=s.budget != "default", seed=s.seed,
        threads=s.threads, scheme=scheme,
    )  # fmt: skip
    if s.budget in ("quick", "default"):
        return compress_request(request)
    from lab.compression.schemes import scheme_builder
    from lab.compression.tasks import load_task
    from lab.host.compute import compute_device

    budget = budgets.BUDGETS[s.budget]
    _, profile, opts, device = request.resolve()
    task = load_task(request.model, request.data, budget)
    with compute_device(device):
        return scheme_builder(scheme)(task, profile, replace(opts, budget=budget), None)


def host_profile(bundle: Path, out: Path, s: RunSettings, say: Say) -> Path:
    """The host-calibrated profile of ``bundle`` for the settings' board at ``out``
    (``run_session`` with power none; an early-exit set's latency as its exits'
    distribution), the timed runs and calibration beside it. Its deadlines are
    ``dense-top`` whatever the bundle was compressed under: the dense model (the same for
    every scheme: same data, budget and seed) meets the top level's, RT3's ratios between
    levels kept, so every scheme serves the same requests under the same deadlines."""
    from lab.profiling.options import ProfileOptions
    from lab.profiling.procedure import Plan
    from lab.profiling.session import run_session

    out.parent.mkdir(parents=True, exist_ok=True)
    plan = Plan(levels_khz=(), **TIMING[s.budget])
    options = ProfileOptions(
        bundle=bundle,
        board=s.board,
        out=out,
        power="none",
        plan=plan,
        threads=s.threads,
        deadlines="dense-top",
    )
    run_session(options, lambda m: say(f"    {m}"))
    return out


def _cached_json(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def measure_scheme(root: Path, scheme: str, s: RunSettings, say: Say) -> SchemeRun:
    """Bundle, host profile and evaluation of ``scheme`` under the study directory ``root``
    (see the module's docstring)."""
    from lab.compression.evaluation import evaluate_bundle
    from lab.profiling.session import runs_csv_path

    bundle = root / "bundles" / scheme
    profile = root / "profiles" / f"{scheme}.yaml"
    scored = root / "profiles" / f"{scheme}.evaluate.json"
    reused: list[str] = []
    if complete_bundle(bundle, scheme, s):
        reused.append("bundle")
        say(f"{scheme}: bundle {bundle} reused")
    else:
        say(f"{scheme}: compressing ({s.budget} budget, seed {s.seed})")
        for stale in (profile, scored, runs_csv_path(profile)):
            stale.unlink(missing_ok=True)
        compress_scheme(bundle, scheme, s)
        from lab.study.scheme_map import unmet_deadlines

        for miss in unmet_deadlines(bundle):
            say(f"{scheme}: warning: {miss['note']}")
    if reused and profile.is_file() and runs_csv_path(profile).is_file():
        reused.append("profile")
    else:
        say(f"{scheme}: host profile for {s.board}")
        host_profile(bundle, profile, s, say)
    evaluation = _cached_json(scored) if "profile" in reused else None
    if evaluation is not None:
        reused.append("evaluation")
    else:
        say(f"{scheme}: evaluating (per-sequence accuracies)")
        evaluation = evaluate_bundle(bundle, scheme=scheme).to_dict(per_sequence=True)
        scored.write_text(json.dumps(evaluation, indent=1) + "\n", encoding="utf-8")
    return SchemeRun(scheme, bundle, profile, evaluation, tuple(reused))


def check_builders(schemes: tuple[str, ...]) -> None:
    """Every scheme's builder exists (``SchemeError`` naming the first that does not),
    before anything is trained."""
    from lab.compression.schemes import scheme_builder

    for scheme in schemes:
        scheme_builder(scheme)


__all__ = [
    "RunSettings",
    "SchemeRun",
    "check_builders",
    "complete_bundle",
    "compress_scheme",
    "host_profile",
    "measure_scheme",
]
