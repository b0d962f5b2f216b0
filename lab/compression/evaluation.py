"""``rt3lab evaluate``: a bundle's sets against the dense model and the baselines.

The dense model and every set are re-scored on the data's test split (the data the bundle
records in ``provenance.data``, or ``--data``), with the budget's test-token limit, exactly
as ``compress`` scored them: the figures printed are measured now, never read from
``bundle.json``. When the data cannot be loaded, or the bundle records no data or budget,
evaluate refuses (``EvaluationError``) and says why. A recorded figure that the re-score
does not reproduce (beyond float noise) is refused too (``EvaluationMismatch``: one line
naming the field and both values); with ``allow_mismatch`` each is listed in
``mismatches`` and the evaluation goes on.

Each row: the set, its DVFS level, family and whether the runtime can compact it (execute
it faster than dense), sparsity, accuracy, perplexity and the accuracy delta to dense;
then the baselines at equal sparsity: BP (the bundle's ``bp`` set, re-scored: BP's mask on
the shared backbone) vs rBP, and each RL set (re-scored) vs BP+rPP. rBP and BP+rPP are
re-scored from the masks and weights the bundle keeps (:mod:`lab.compression.
kept_baselines`); a bundle written before they were kept shows the figures ``compress``
recorded, marked so, and leaves those comparisons out of the checks (``notes`` says so).
A bundle made with ``compress --distill-ablation`` keeps each set fine-tuned without
distillation too: re-scored, it is the row's ``accuracy_no_distill`` and a "distilled"
comparison (not a check).

The checks are RT3's for an ``rt3`` bundle. A width, depth or early-exit bundle's variants
are not pattern sets (depth and early exit have no masks at all), so it gets other checks,
on each variant's op count (``nonzero_mults``) where RT3's are on sparsity
(:data:`VARIANT_CHECKS_NOTE`, which ``notes`` repeats).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.compression.latency.check import bundle_latencies
from lab.compression.pattern_pruning import COMPACTS

if TYPE_CHECKING:
    from lab.compression.tasks import SequenceScores


@dataclass(frozen=True)
class SetRow:
    """One row of the evaluation table."""

    name: str
    freq_khz: int | None
    family: str
    compacts: bool
    sparsity: float
    accuracy: float | None
    perplexity: float | None
    delta_accuracy: float | None
    nonzero_mults: int
    latency_estimate_ms: float | None = None  # the bundle's latency table, at this host's clock
    latency_measured_ms: float | None = None  # end to end by lab.runtime, same threads
    latency_measured_median_ms: float | None = None  # the same runs' median (as the benches)
    latency_bound_median_ms: float | None = None  # the engine's bound call, the same rounds
    latency_over_bound_ci95: list[float] | None = None  # measured / bound medians, 95 % CI
    # the same set fine-tuned without distillation (compress --distill-ablation), re-scored
    accuracy_no_distill: float | None = None


@dataclass(frozen=True)
class Comparison:
    """A method against its baseline at (nearly) equal sparsity."""

    method: str
    baseline: str
    sparsity: float
    baseline_sparsity: float
    accuracy: float
    baseline_accuracy: float
    baseline_rescored: bool = True  # False: the baseline's figure is what compress recorded

    @property
    def wins(self) -> bool:
        """The method is more accurate than the baseline."""
        return self.accuracy > self.baseline_accuracy


@dataclass(frozen=True)
class Evaluation:
    """Everything ``rt3lab evaluate`` prints."""

    bundle: str
    dense_accuracy: float | None
    dense_perplexity: float | None
    rows: list[SetRow]
    comparisons: list[Comparison]
    checks: dict[str, bool]
    scored_on: str = ""
    mismatches: list[str] = field(default_factory=list)
    per_sequence: dict[str, list[float]] = field(default_factory=dict)
    """Each test sequence's accuracy, for ``dense`` and each set (the same sequences, in
    the same order, for all); weighted by ``sequence_tokens`` they average to the row's
    accuracy exactly. Empty where the score is not a mean over sequences."""
    sequence_tokens: list[int] = field(default_factory=list)
    """Predictions scored in each sequence (an LM's window; the last may be shorter)."""

    notes: list[str] = field(default_factory=list)
    scheme: str = "rt3"
    """The bundle's reconfiguration scheme (``contracts.schemes.SCHEMES``)."""

    def to_dict(self, per_sequence: bool = False) -> dict[str, Any]:
        """JSON form (``--json``): strict JSON, a figure that is not a finite number is null,
        and ``notes`` says which and why; ``per_sequence`` adds ``per_sequence``: each
        sequence's ``tokens`` and, by set, its ``correct`` predictions (integers: exact and
        short; the accuracy is correct / tokens) (``--per-sequence``)."""
        notes = list(self.notes)
        doc = {
            "bundle": self.bundle,
            "scheme": self.scheme,
            "scored_on": self.scored_on,
            "mismatches": self.mismatches,
            "dense": {"accuracy": self.dense_accuracy, "perplexity": self.dense_perplexity},
            "sets": [asdict(r) for r in self.rows],
            "comparisons": [{**asdict(c), "wins": c.wins} for c in self.comparisons],
            "checks": self.checks,
        }
        doc = _finite(doc, "", notes)
        if per_sequence:
            tokens = self.sequence_tokens
            doc["per_sequence"] = {
                "tokens": tokens,
                "correct": {
                    n: [round(a * t) for a, t in zip(s, tokens, strict=True)]
                    for n, s in self.per_sequence.items()
                },
            }
        return {**doc, "notes": notes}


def _finite(value: Any, where: str, notes: list[str]) -> Any:
    """``value`` with every NaN or infinity replaced by None, each noted with its path."""
    if isinstance(value, float) and not math.isfinite(value):
        notes.append(f"{where}: {value} is not a finite number (the score diverged): null")
        return None
    if isinstance(value, dict):
        return {k: _finite(v, f"{where}.{k}" if where else str(k), notes) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v, f"{where}[{i}]", notes) for i, v in enumerate(value)]
    return value


def _delta(acc: float | None, dense: float | None) -> float | None:
    return None if acc is None or dense is None else acc - dense


class EvaluationError(ValueError):
    """A bundle that cannot be re-scored; the message says why and what to give."""


class EvaluationMismatch(EvaluationError):
    """A figure ``bundle.json`` records that the re-score does not reproduce."""


@dataclass(frozen=True)
class Scores:
    """Test-split (accuracy, perplexity) measured now: the dense model's, each set's and
    each kept baseline set's (``rbp``, BP+rPP's by name)."""

    scored_on: str
    dense: tuple[float, float | None]
    sets: dict[str, tuple[float, float | None]]
    baselines: dict[str, tuple[float, float | None]] = field(default_factory=dict)
    sequences: dict[str, SequenceScores] = field(default_factory=dict)  # "dense" and each set


_VOCAB_NOTE = re.compile(r" \(vocabulary \d+\)$")


def bundle_task(bundle: Any, data: str | None = None) -> tuple[Any, Any, str]:
    """The task a bundle's sets are scored on, the budget ``compress`` recorded and the
    data's spec: ``data`` (default: the bundle's ``provenance.data``); ``EvaluationError``
    when the bundle records no data or budget, or the data cannot be loaded or is not the
    model's."""
    from lab.compression.tasks import LMTask, load_task

    where = f"{bundle.path}/bundle.json" if bundle.path else "bundle"
    prov = bundle.provenance
    recorded = prov.get("data")
    spec = data or (_VOCAB_NOTE.sub("", recorded) if isinstance(recorded, str) else None)
    if not spec:
        raise EvaluationError(
            f"{where}: provenance.data records no data to re-score the sets on: give --data"
        )
    budget = _budget(prov.get("budget"), where)
    kind, config = bundle.model["kind"], bundle.model["config"]
    model_spec = "rt3-transformer" if kind == "rt3-transformer" else f"hf:{config['path']}"
    try:
        task = load_task(model_spec, spec, budget)
    except (ValueError, OSError) as exc:
        source = "--data" if data else "provenance.data"
        raise EvaluationError(
            f"{where}: cannot re-score on data {spec!r} (from {source}): {exc}; give --data SPEC"
        ) from None
    if isinstance(task, LMTask) and task.data.vocab_size != config.get("vocab_size"):
        raise EvaluationError(
            f"{where}: data {spec!r} has a vocabulary of {task.data.vocab_size} tokens but the "
            f"model was built for {config.get('vocab_size')}: not the data it was trained on"
        )
    return task, budget, spec


def rescore(bundle: Any, data: str | None = None, threads: int | None = None) -> Scores:
    """Score the bundle's dense weights and each set (its masks on the backbone) on the test
    split of ``data`` (default: the bundle's ``provenance.data``), as ``compress`` did."""
    import torch

    from lab.compression.finetune import applied_masks
    from lab.compression.tasks import LMTask
    from lab.model import build_model

    task, budget, spec = bundle_task(bundle, data)
    kind, config = bundle.model["kind"], bundle.model["config"]
    limit = budget.report_tokens if isinstance(task, LMTask) else None
    torch.manual_seed(0)
    model = build_model(kind, config)
    model.eval()
    model.load_state_dict(bundle.dense)
    each = {"dense": task.score_sequences(model, "test", limit, threads)}
    model.load_state_dict(bundle.backbone)
    for name, ps in bundle.sets.items():
        if "exits" in ps.meta:  # a depth or early-exit variant: its exits, as compress scored
            from lab.compression.schemes.exit_training import plan_scores

            each[name] = plan_scores(model, ps.meta, task.data.test, budget.seq_len, limit)
            continue
        with applied_masks(model, ps.masks()):
            each[name] = task.score_sequences(model, "test", limit, threads)
    sets = {n: (s.accuracy, s.perplexity) for n, s in each.items()}
    dense = sets.pop("dense")
    baselines = _rescore_kept(bundle, model, lambda m: task.score(m, "test", limit, threads))
    return Scores(spec, dense, sets, baselines, each)


def _rescore_kept(bundle: Any, model: Any, score: Any) -> dict[str, tuple[float, float | None]]:
    """The kept baselines (rBP, BP+rPP) scored on their own weights; {} if none kept."""
    from lab.compression.kept_baselines import KeptBaselineError, read_kept, score_kept

    where = f"{bundle.path}/bundle.json" if bundle.path else "bundle"
    try:
        kept = read_kept(Path(bundle.path or "."), bundle.baselines)
        return score_kept(model, kept, score)
    except KeptBaselineError as exc:
        raise EvaluationError(f"{where}: {exc}") from None


# What scoring is sized by: a sequence of a million tokens would never finish scoring.
_BUDGET_BOUNDS = {"seq_len": 4096, "batch_size": 4096}


def _budget(raw: object, where: str) -> Any:
    """The budget ``compress`` recorded, its fields checked (they size the scoring)."""
    from dataclasses import fields

    from lab.compression.budget import Budget

    if not isinstance(raw, dict):
        raise EvaluationError(
            f"{where}: provenance.budget is missing or not a budget record, so the test-token "
            "limit the sets were scored with is unknown: re-run `rt3lab compress`"
        )
    known = {f.name: f for f in fields(Budget)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise EvaluationError(f"{where}: provenance.budget: unknown field(s) {unknown}")
    for name, f in known.items():
        if name not in raw:
            continue
        value, kind = raw[name], str(f.type)
        if kind.startswith("int"):
            top = _BUDGET_BOUNDS.get(name, 10**9)
            ok = (isinstance(value, int) and not isinstance(value, bool) and 0 < value <= top) or (
                value is None and "None" in kind
            )
            expected = f"an integer in 1..{top}" + (" or null" if "None" in kind else "")
        elif kind == "float":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            ok = ok and math.isfinite(value) and value > 0
            expected = "a positive finite number"
        elif kind == "str":
            ok, expected = isinstance(value, str), "a string"
        else:
            ok, expected = isinstance(value, dict), "an object"
        if not ok:
            raise EvaluationError(
                f"{where}: provenance.budget.{name} is {value!r}, expected {expected}"
            )
    try:
        return Budget(**raw)
    except TypeError as exc:
        raise EvaluationError(f"{where}: provenance.budget: {exc}") from None


def _differs(recorded: object, measured: float | None, rel: float) -> bool:
    """Whether a recorded figure is not the re-scored one (a recorded value that is not a
    finite number never is: ``""``, ``true``, a list)."""
    if recorded is None or measured is None:
        return (recorded is None) != (measured is None)
    if not isinstance(recorded, int | float) or isinstance(recorded, bool):
        return True
    return not math.isclose(recorded, measured, rel_tol=rel, abs_tol=1e-4)


def _with_latencies(
    b: Any, rows: list[SetRow], pp_rows: list[SetRow]
) -> tuple[list[SetRow], list[SetRow]]:
    """Rows with the latency table's estimate and the runtime's measurement (if a table)."""
    lat = bundle_latencies(b)
    if not lat:
        return rows, pp_rows

    def add(r: SetRow) -> SetRow:
        est, meas, median, bound, ci = lat.get(r.name, (None,) * 5)
        return replace(
            r,
            latency_estimate_ms=est,
            latency_measured_ms=meas,
            latency_measured_median_ms=median,
            latency_bound_median_ms=bound,
            latency_over_bound_ci95=ci,
        )

    return [add(r) for r in rows], [add(r) for r in pp_rows]


def evaluate_bundle(
    path: str | Path,
    data: str | None = None,
    threads: int | None = None,
    device: str | None = None,
    allow_mismatch: bool = False,
    scheme: str | None = None,
) -> Evaluation:
    """Load and validate the bundle at ``path`` (``BundleError`` if corrupt), re-score its
    sets and kept baselines on the data (``EvaluationError`` when it cannot) and tabulate
    them; ``device`` (cpu, cuda[:N], auto) is where the scoring runs (None: the current
    compute device). A recorded figure the re-score does not reproduce is an
    ``EvaluationMismatch`` naming the field, unless ``allow_mismatch`` (then listed).
    ``scheme``: the bundle must be of that scheme (``SchemeError``, exit 2); every scheme
    whose variants are pattern sets (``lab.runtime.bundle.SET_SCHEMES``) is scored the same
    way."""
    from lab.host.compute import compute_device
    from lab.host.threads import check_threads
    from lab.runtime.bundle import Bundle, runs_as_sets

    if threads is not None:
        check_threads(threads)  # before any work: a pool of 100000 threads crashes torch
    with compute_device(device) if device is not None else contextlib.nullcontext():
        b = runs_as_sets(Bundle.load(path, scheme=scheme), "rt3lab evaluate")
        scores = rescore(b, data, threads)
        mismatches = _mismatches(b, scores)
        if mismatches and not allow_mismatch:
            more = f" (and {len(mismatches) - 1} more)" if len(mismatches) > 1 else ""
            raise EvaluationMismatch(
                f"{Path(path) / 'bundle.json'}: {mismatches[0]}{more}; the bundle was changed "
                "after compress wrote it, or scores differently here (--allow-mismatch reports "
                "the differences and goes on)"
            )
        entries = {
            n: replace(e, accuracy=scores.sets[n][0], perplexity=scores.sets[n][1])
            for n, e in b.entries.items()
        }
        dense = {
            **b.reference.get("dense", {}),
            "accuracy": scores.dense[0],
            "perplexity": scores.dense[1],
        }
        undistilled = _no_distill(b, scores.baselines)
        rows, pp_rows = _rows(dense, entries, undistilled)
        comparisons, notes = _comparisons(b, entries, scores.baselines)
        comparisons += [
            Comparison(f"distilled {n}", base, e.sparsity, e.sparsity,
                       float(e.accuracy), acc)
            for n, (base, acc) in undistilled.items()
            if (e := entries.get(n)) is not None and e.accuracy is not None
        ]  # fmt: skip
        rows, pp_rows = _with_latencies(b, rows, pp_rows)
        checks = _checks(pp_rows, comparisons) if b.scheme == "rt3" else _variant_checks(pp_rows)
        if b.scheme != "rt3":
            notes.append(VARIANT_CHECKS_NOTE.format(scheme=b.scheme))
    return Evaluation(
        str(path),
        dense.get("accuracy"),
        dense.get("perplexity"),
        rows,
        comparisons,
        checks,
        scores.scored_on,
        mismatches,
        *_per_sequence(scores),
        notes,
        b.scheme,
    )


def _per_sequence(scores: Scores) -> tuple[dict[str, list[float]], list[int]]:
    """Each sequence's accuracy by set (``dense`` first) and each sequence's predictions;
    nothing where a set was not scored per sequence."""
    each = scores.sequences
    if not each or any(not s.tokens for s in each.values()):
        return {}, []
    return {n: s.accuracies() for n, s in each.items()}, list(each["dense"].tokens)


def _listed(b: Any, section: str, key: str) -> list[Any]:
    """``baselines.SECTION.KEY`` of a bundle: a list, or empty where the section is not
    recorded; anything else there is refused naming the field."""
    held = b.baselines.get(section)
    if not isinstance(held, dict) or key not in held:
        return []
    if not isinstance(held[key], list):
        where = f"{b.path}/bundle.json" if b.path else "bundle"
        raise EvaluationError(
            f"{where}: baselines.{section}.{key} is {held[key]!r:.40}, expected a list"
        )
    return held[key]


def _mismatches(b: Any, scores: Scores) -> list[str]:
    """Every figure ``bundle.json`` records that the re-scoring does not reproduce, as
    ``FIELD: bundle.json records X, re-scored Y``."""
    recorded: list[tuple[str, dict[str, Any], tuple[float, float | None]]] = [
        ("reference.dense", b.reference.get("dense", {}), scores.dense)
    ]
    for i, (n, e) in enumerate(b.entries.items()):
        recorded.append((f"sets[{i}] ({n})", asdict(e), scores.sets[n]))
    rbp = b.baselines.get("rbp")
    if isinstance(rbp, dict) and "rbp" in scores.baselines:
        recorded.append(("baselines.rbp", rbp, scores.baselines["rbp"]))
    for section in ("bp+rpp", "no-distill"):
        for i, s in enumerate(_listed(b, section, "sets")):
            if isinstance(s, dict) and _named(s) in scores.baselines:
                where = f"baselines.{section}.sets[{i}]"
                recorded.append((where, s, scores.baselines[s["name"]]))
    out = []
    for where, rec, (acc, ppl) in recorded:
        for key, got in (("accuracy", acc), ("perplexity", ppl)):
            if _differs(rec.get(key), got, 1e-3):
                out.append(f"{where}.{key}: bundle.json records {rec.get(key)!r}, re-scored {got}")
    return out


def _no_distill(
    b: Any, kept: dict[str, tuple[float, float | None]]
) -> dict[str, tuple[str, float]]:
    """By set name, its undistilled twin's name and re-scored accuracy (``compress
    --distill-ablation``); only twins the bundle keeps, so every figure is measured now."""
    pairs = zip(
        _listed(b, "no-distill", "sets"), _listed(b, "no-distill", "compare_to"), strict=False
    )
    return {
        target: (base["name"], kept[base["name"]][0])
        for base, target in pairs
        if isinstance(base, dict) and _named(base) in kept and isinstance(target, str)
    }


def _named(entry: dict[str, Any]) -> str | None:
    """An entry's ``name`` where it is a string (None otherwise: a list or an object there
    names nothing, and cannot key a look-up)."""
    name = entry.get("name")
    return name if isinstance(name, str) else None


def _rows(
    dense: dict[str, Any], entries: dict[str, Any], undistilled: dict[str, tuple[str, float]]
) -> tuple[list[SetRow], list[SetRow]]:
    """The table's rows (dense first, then every set, with its undistilled twin's accuracy
    where the bundle keeps one) and the pattern sets' rows alone."""
    d_acc = dense.get("accuracy")
    rows = [
        SetRow(
            "dense",
            None,
            "dense",
            False,
            0.0,
            d_acc,
            dense.get("perplexity"),
            0.0 if d_acc is not None else None,
            int(dense.get("nonzero_mults") or 0),
        )
    ]
    pp_rows = []
    for e in entries.values():
        row = SetRow(
            e.name,
            e.freq_khz,
            e.family,
            COMPACTS.get(e.family, False),
            e.sparsity,
            e.accuracy,
            e.perplexity,
            _delta(e.accuracy, d_acc),
            e.nonzero_mults,
            accuracy_no_distill=undistilled[e.name][1] if e.name in undistilled else None,
        )
        rows.append(row)
        if e.name != "bp":
            pp_rows.append(row)
    return rows, pp_rows


def _comparisons(
    b: Any, entries: dict[str, Any], kept: dict[str, tuple[float, float | None]]
) -> tuple[list[Comparison], list[str]]:
    """BP (the re-scored ``bp`` set) against rBP, and each RL set (re-scored) against its
    BP+rPP twin: re-scored where the bundle keeps them (``kept``), else as compress recorded
    them, then left out of the checks; the notes say which."""
    comparisons, notes = [], []
    bp = entries.get("bp")
    rbp, rpp = _recorded_baselines(b)
    if isinstance(rbp, dict) and bp is not None and bp.accuracy is not None:
        again = "rbp" in kept
        comparisons.append(
            Comparison(
                "BP",
                "rBP",
                bp.sparsity,
                float(rbp["sparsity"]),
                float(bp.accuracy),
                float(kept["rbp"][0] if again else rbp["accuracy"]),
                again,
            )
        )
        if not again:
            notes.append(_NOT_KEPT.format(name="rBP"))
    missing = False
    for base, target in zip(rpp.get("sets", []), rpp.get("compare_to", []), strict=False):
        if target in entries and entries[target].accuracy is not None:
            e, again = entries[target], base["name"] in kept
            comparisons.append(
                Comparison(
                    f"RL {target}",
                    f"BP+rPP {base['name']}",
                    e.sparsity,
                    float(base["sparsity"]),
                    float(e.accuracy),
                    float(kept[base["name"]][0] if again else base["accuracy"]),
                    again,
                )
            )
            missing = missing or not again
    if missing:
        notes.append(_NOT_KEPT.format(name="BP+rPP"))
    return comparisons, notes


def _recorded_baselines(b: Any) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """``baselines.rbp`` and ``baselines.bp+rpp`` as compress records them, each field
    checked (``EvaluationError`` naming it): rBP a record with a numeric sparsity and
    accuracy; BP+rPP's ``sets`` such records with a name, ``compare_to`` set names."""
    where = f"{b.path}/bundle.json" if getattr(b, "path", None) else "bundle.json"

    def record(value: object, field: str, named: bool = False) -> dict[str, Any]:
        ok = isinstance(value, dict) and all(
            isinstance(value.get(k), int | float) and not isinstance(value.get(k), bool)
            and math.isfinite(value[k])
            for k in ("sparsity", "accuracy")
        )  # fmt: skip
        if not ok or (named and not isinstance(value.get("name"), str)):
            need = "a name, " if named else ""
            raise EvaluationError(
                f"{where}: {field}: expected a record with {need}a numeric sparsity and accuracy"
            )
        return value  # type: ignore[return-value]

    base = b.baselines if isinstance(b.baselines, dict) else {}
    rbp = base.get("rbp")
    rbp = None if rbp is None else record(rbp, "baselines.rbp")
    rpp = base.get("bp+rpp", {})
    if rpp is None or not isinstance(rpp, dict):
        raise EvaluationError(f"{where}: baselines.bp+rpp: expected an object")
    sets, targets = rpp.get("sets", []), rpp.get("compare_to", [])
    if not isinstance(sets, list) or not isinstance(targets, list):
        raise EvaluationError(f"{where}: baselines.bp+rpp: sets and compare_to must be lists")
    for i, s in enumerate(sets):
        record(s, f"baselines.bp+rpp.sets[{i}]", named=True)
    if not all(isinstance(t, str) for t in targets):
        raise EvaluationError(f"{where}: baselines.bp+rpp.compare_to: expected set names")
    return rbp, rpp


_NOT_KEPT = (
    "{name}: its masks and weights are not in this bundle (written before compress kept "
    "them), so its figures are the ones compress recorded and its comparison is left out "
    "of the checks; re-run `rt3lab compress` to re-score it"
)


# What each check means when it fails and what to do: its FAIL line says so.
CHECK_ADVICE: dict[str, str] = {
    "at_least_3_sets": "the bundle has fewer than 3 pattern sets (compress makes one per "
    "governor level of the profile), too few to show run-time reconfiguration; compress "
    "against a profile whose governor has at least 3 levels (--profile)",
    "sparsity_increases_as_frequency_drops": "a lower clock level's set is not sparser than "
    "the level above it, so stepping the clock down buys no latency headroom; give the search "
    "more --episodes (or compress without --quick, the default budget)",
    "least_sparse_within_1pt_of_dense": "the least sparse set loses more than 1 accuracy "
    "point to the dense model (RT3 claims under 1 % for its Transformer); train longer: "
    "compress without --quick (the default budget) or with more --episodes",
    "bp_beats_rbp": "block pruning is not more accurate than random blocks at the same "
    "sparsity (as compress recorded them), so BP's group lasso did not pay off at this "
    "budget; compress without --quick (more training steps)",
    "latency_estimate_within_10pct_median": "the latency table's estimate is off by more than "
    "10 % (median over the sets) from the end-to-end time measured now on this host; the "
    "search chose sets on those estimates, so a set may miss its deadline; re-run compress "
    "and evaluate under less load (the table is measured while compressing), or compress "
    "with --estimator op-count",
    "latency_measured_within_3pct_of_bound_call": "a set's serving call (what the latency "
    "table, evaluate and profile time) ran more than 3 % off the engine's bound call timed in "
    "the same rounds, so the figures charge the sets a cost a serving loop does not pay, or "
    "the host was too noisy to tell; re-run evaluate on a quiet machine, and if it stays, "
    "`rt3lab bench runtime` reports the wrapper's cost (`serving`)",
    "rl_beats_bp_rpp": "an RL-searched set is not more accurate than random patterns (BP+rPP) "
    "at the same sparsity, so the search did not beat its baseline at this budget; give it "
    "more --episodes (or compress without --quick)",
    "cost_never_rises_as_frequency_drops": "a lower clock level runs a variant with more "
    "multiplies (nonzero mults: the op count of what it runs, an early exit's over its test "
    "exit histogram) than the level above, so stepping the clock down buys no latency "
    "headroom; check the deadlines (provenance.deadlines) and the variants' latency",
    "costliest_within_1pt_of_dense": "the variant with the most multiplies (the top level's, "
    "as a rule) loses more than 1 accuracy point to the dense model; train longer: compress "
    "without --quick (the default budget)",
}

# Why a width, depth or early-exit bundle gets other checks than RT3's (evaluate's notes).
VARIANT_CHECKS_NOTE = (
    "checks for a {scheme} bundle: its variants are not RT3's pattern sets, so sparsity "
    "order and the BP/rBP and RL/BP+rPP baselines do not apply; the variants' op count "
    "(nonzero mults) stands in for sparsity: the cost must never rise as the frequency "
    "drops (two levels may run the same variant), and the costliest variant must stay "
    "within 1 point of dense"
)


def check_line(name: str, ok: bool) -> str:
    """One check as ``evaluate`` (and the demo) prints it: PASS, or FAIL with what the
    failure means and what to do, on the same line.

    >>> check_line("at_least_3_sets", True)
    'PASS  at least 3 sets'
    >>> check_line("bp_beats_rbp", False).split(";")[1]
    ' compress without --quick (more training steps)'
    """
    label = name.replace("_", " ")
    if ok:
        return f"PASS  {label}"
    return f"FAIL  {label}: {CHECK_ADVICE.get(name, 'not met by this bundle')}"


def _checks(pp_rows: list[SetRow], comparisons: list[Comparison]) -> dict[str, bool]:
    """The PASS/FAIL lines: what RT3's claims need of the sets and baselines."""
    ordered = sorted(pp_rows, key=lambda r: r.sparsity)
    by_freq = sorted(pp_rows, key=lambda r: -(r.freq_khz or 0))
    checks: dict[str, bool] = {
        "at_least_3_sets": len(pp_rows) >= 3,
        "sparsity_increases_as_frequency_drops": all(
            a.sparsity < b.sparsity for a, b in itertools.pairwise(by_freq)
        ),
    }
    if ordered and ordered[0].delta_accuracy is not None:
        checks["least_sparse_within_1pt_of_dense"] = ordered[0].delta_accuracy >= -0.01
    comparisons = [c for c in comparisons if c.baseline_rescored]  # only what was measured
    bp_cmp = [c for c in comparisons if c.method == "BP"]
    if bp_cmp:
        checks["bp_beats_rbp"] = all(c.wins for c in bp_cmp)
    checks.update(_latency_check(pp_rows))
    rl_cmp = [c for c in comparisons if c.method.startswith("RL")]
    if rl_cmp:
        checks["rl_beats_bp_rpp"] = all(c.wins for c in rl_cmp)
    return checks


SERVING_LIMIT = 0.03  # the serving call's median over the bound call's, every set


def _latency_check(rows: list[SetRow]) -> dict[str, bool]:
    """The latency table's estimate against the runtime's measurement (median over the
    sets), where the bundle has a table; on the engine, every set's measured median (the
    serving call) against the bound call's in the same rounds, within
    :data:`SERVING_LIMIT`."""
    gaps = sorted(
        abs(r.latency_estimate_ms / r.latency_measured_ms - 1.0)
        for r in rows
        if r.latency_estimate_ms is not None and r.latency_measured_ms
    )
    if not gaps:
        return {}
    median = gaps[len(gaps) // 2] if len(gaps) % 2 else sum(gaps[len(gaps) // 2 - 1 :][:2]) / 2
    checks = {"latency_estimate_within_10pct_median": median <= 0.10}
    served = [
        r.latency_measured_median_ms / r.latency_bound_median_ms - 1.0
        for r in rows
        if r.latency_bound_median_ms and r.latency_measured_median_ms is not None
    ]
    if served:
        checks["latency_measured_within_3pct_of_bound_call"] = all(
            abs(g) <= SERVING_LIMIT for g in served
        )
    return checks


def _variant_checks(rows: list[SetRow]) -> dict[str, bool]:
    """The PASS/FAIL lines of a width, depth or early-exit bundle (``VARIANT_CHECKS_NOTE``):
    one variant per level, the op count never rising as the clock drops, the costliest
    within a point of dense, and the latency table where there is one.

    >>> row = lambda f, ops, d: SetRow("v", f, "block-column", True, 0.0, 0.2, 9.0, d, ops)
    >>> _variant_checks([row(1400000, 90, -0.001), row(1000000, 90, -0.02), row(800000, 50, 0)])
    ... # doctest: +NORMALIZE_WHITESPACE
    {'at_least_3_sets': True, 'cost_never_rises_as_frequency_drops': True,
     'costliest_within_1pt_of_dense': True}
    >>> c = _variant_checks([row(1400000, 50, 0.0), row(800000, 90, 0.0)])
    >>> c["at_least_3_sets"], c["cost_never_rises_as_frequency_drops"]
    (False, False)
    """
    by_freq = sorted(rows, key=lambda r: -(r.freq_khz or 0))
    checks: dict[str, bool] = {
        "at_least_3_sets": len(rows) >= 3,
        "cost_never_rises_as_frequency_drops": all(
            b.nonzero_mults <= a.nonzero_mults for a, b in itertools.pairwise(by_freq)
        ),
    }
    costliest = max(by_freq, key=lambda r: r.nonzero_mults, default=None)  # the top on a tie
    if costliest is not None and costliest.delta_accuracy is not None:
        checks["costliest_within_1pt_of_dense"] = costliest.delta_accuracy >= -0.01
    checks.update(_latency_check(rows))
    return checks
