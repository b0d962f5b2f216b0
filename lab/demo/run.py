"""``rt3lab demo``: the main job, end to end on built-in defaults.

Steps: build the built-in corpus; train and compress the RT3 Transformer (the quick
budget); score every pattern set; benchmark the runtime on this host; write the
host-calibrated profile of the chosen board (host mode, no power meter); simulate every
policy; carry what was measured into the answer (``lab.study.intervals.pooled_intervals``:
a bootstrap over the profile's timed runs and the test sequences, pooled with the bundle's
replicas, ``lab.study.replicas``, each compressed again from a latency table measured
anew, and each policy's life within 1 point of dense); write the run directory and the
report. Each step calls its package's function with an options object
(``compress_request(CompressRequest)``, ``evaluate_bundle``,
``bench_runtime(RuntimeBenchOptions)``, ``run_session(ProfileOptions)``,
``simulator.simulate``, ``reports.build_report``), and the run's ``commands.json`` records,
for each artefact, the ``rt3lab ...`` command line that makes it (``lab.demo.commands``).

The bundle's ``bundle.json`` is read once, by ``simulator.variants_from_bundle`` (the
torch-free reader of ``contracts.bundle_manifest``). ``evaluate_bundle``, ``bench_runtime``
and ``run_session`` take the bundle's path and load its weights themselves.

Expensive steps are cached under ``$RT3LAB_CACHE`` (default ``~/.cache/rt3lab``) in
``demo/<key>/``, keyed by the budget, the host and the code that made them (a fingerprint
of the ``lab`` and ``device_profiles`` sources), so a second run only simulates and
writes the report, and a run on changed code never reuses figures the old code measured.
Two demos sharing a cache take turns: each holds ``demo/<key>/demo.lock`` while it runs, so
the second waits (and says so) and then finds the first one's artefacts cached.
``--fresh`` runs on a new temporary cache root, removed afterwards (the bundle is copied to
``OUT/bundle``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from contracts import strict_json
from contracts.cache import cache_root
from contracts.workloads import spec_forms
from lab.demo.commands import command_line

if TYPE_CHECKING:
    from lab.bench.runtime import RuntimeBenchOptions
    from lab.compression.options import CompressRequest
    from lab.profiling.options import ProfileOptions

app = typer.Typer()

STEPS = (
    "corpus",
    "compress",
    "evaluate",
    "bench runtime",
    "host profile",
    "simulate",
    "replicas",
    "intervals",
    "deadline map",
    "report",
)
DEMO_VERSION = 1  # bump when the demo's cached artefacts change meaning


@dataclass(frozen=True)
class DemoPlan:
    """Where the demo writes and caches, and what it runs (``fresh``: the cache is this
    run's own and is removed after it, so what the run keeps is copied to ``out``)."""

    out: Path
    board: str
    reduced: bool
    cache: Path
    seed: int = 0
    workload: str = "periodic"
    fresh: bool = False

    @property
    def bundle(self) -> Path:
        """The cached bundle directory."""
        return self.cache / "bundle"

    @property
    def profile_path(self) -> Path:
        """The cached host-calibrated profile."""
        return self.cache / f"profile-{self.board}.yaml"

    @property
    def shown_bundle(self) -> Path:
        """The bundle's path after the run (``out/bundle`` with ``fresh``): the one the
        recorded command lines name."""
        return self.out / "bundle" if self.fresh else self.bundle

    @property
    def shown_profile(self) -> Path:
        """The profile's path after the run (the run directory's copy with ``fresh``)."""
        return self.run_dir / "profile.yaml" if self.fresh else self.profile_path

    @property
    def run_dir(self) -> Path:
        """The run directory the demo writes."""
        return self.out / "run"

    @property
    def report_dir(self) -> Path:
        """Where the report goes."""
        return self.out / "report"


def plan(
    out: Path,
    board: str,
    reduced: bool,
    seed: int = 0,
    workload: str = "periodic",
    fresh: bool = False,
) -> DemoPlan:
    """The demo's plan; the cache key covers everything the cached artefacts depend on
    (under ``cache_root()``: with ``fresh``, call it inside ``fresh_cache()``).

    >>> p = plan(Path("o"), "rt3-paper", True)
    >>> p.cache.parent.name, p.run_dir.as_posix()
    ('demo', 'o/run')
    """
    spec = {
        "v": DEMO_VERSION,
        "reduced": reduced,
        "seed": seed,
        "host": _host(),
        "code": code_fingerprint(),
    }
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    return DemoPlan(out, board, reduced, cache_root() / "demo" / key, seed, workload, fresh)


def _host() -> str:
    return f"{platform.node()}-{platform.machine()}-{os.cpu_count()}"


def code_fingerprint(roots: list[Path] | None = None) -> str:
    """A hash of the sources the cached steps run (default the ``lab`` and
    ``device_profiles`` packages; see ``lab.compression.cache.source_fingerprint``).

    >>> len(code_fingerprint())
    16
    """
    from lab.compression.cache import source_fingerprint

    if roots is None:
        import device_profiles
        import lab

        roots = [Path(lab.__file__).parent, Path(device_profiles.__file__).parent]
    return source_fingerprint(roots)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


@contextlib.contextmanager
def fresh_cache() -> Iterator[Path]:
    """``--fresh``: a new, empty cache root for this run (``$RT3LAB_CACHE`` points at it,
    so no cache of any step is reused: dense models, corpora, native builds, the demo's
    artefacts), removed afterwards with everything in it; the variable is put back."""
    import tempfile

    from contracts.cache import CACHE_ENV

    root = Path(tempfile.mkdtemp(prefix="rt3lab-fresh-cache-"))
    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(root)
    try:
        yield root
    finally:
        if before is None:
            os.environ.pop(CACHE_ENV, None)
        else:
            os.environ[CACHE_ENV] = before
        shutil.rmtree(root, ignore_errors=True)


# --- the steps: each calls its package's function with an options object ------------------


@dataclass
class DemoState:
    """What the steps hand to each other."""

    plan: DemoPlan
    echo: Callable[[str], None] = print
    progress: Callable[[str], None] = print  # the functions' progress lines
    commands: dict[str, str] = field(default_factory=dict)
    cached: dict[str, bool] = field(default_factory=dict)
    variants: list[Any] | None = None  # the bundle's sets, read once from bundle.json
    results: list[Any] | None = None
    report_html: Path | None = None
    workload: str | None = None
    intervals: dict[str, Any] | None = None  # pooled_intervals' result
    replicas: dict[str, Any] | None = None  # the bundle replicas' JSON
    deadline_map: dict[str, Any] | None = None  # the small deadline study's JSON


def step_corpus(st: DemoState) -> str:
    """Build (or load the cached) built-in corpus."""
    from lab.model.data import load_lm_corpus

    corpus = load_lm_corpus("builtin")
    # Everything cached downstream depends on the corpus: key the cache by its content.
    h = hashlib.sha256()
    for part in (corpus.train, corpus.valid, corpus.test):
        h.update(str(tuple(part.shape)).encode())
        h.update(part[:20000].numpy().tobytes())
    h.update(str(len(corpus.vocab)).encode())
    st.plan = replace(st.plan, cache=st.plan.cache / f"corpus-{h.hexdigest()[:12]}")
    st.plan.cache.mkdir(parents=True, exist_ok=True)
    return f"{len(corpus.train):,} train tokens, vocabulary {len(corpus.vocab):,}"


def compress_request_for(p: DemoPlan, out: Path) -> CompressRequest:
    """The demo's ``CompressRequest``: the quick budget; ``--reduced`` 2 RL episodes."""
    from lab.compression.options import CompressRequest

    return CompressRequest(
        out=out, profile=p.board, seed=p.seed, quick=True, episodes=2 if p.reduced else None
    )


def _read_bundle(st: DemoState) -> bool:
    """Read the cached bundle's sets (``bundle.json``, its one reader); False when there is
    none or it cannot be read (then it is made again)."""
    from simulator import variants_from_bundle

    if not (st.plan.bundle / "bundle.json").is_file():
        return False
    try:
        st.variants = variants_from_bundle(st.plan.bundle)
    except ValueError as exc:
        st.echo(f"the cached bundle cannot be read ({exc}): compressing again")
        return False
    return True


def step_compress(st: DemoState) -> str:
    """Train and compress the RT3 Transformer into a bundle (cached); an interrupted run's
    ``bundle.partial`` is resumed by compress (its search restarts from the last episode)."""
    from lab.compression.cli import RichReporter, progress_bars
    from lab.compression.pipeline import compress_request
    from simulator import variants_from_bundle

    p = st.plan
    request = compress_request_for(p, p.bundle)
    shown = replace(request, out=p.shown_bundle)
    st.commands["bundle"] = command_line("rt3lab compress", shown, always=COMPRESS_ALWAYS)
    if _read_bundle(st):
        st.cached["compress"] = True
        return f"cached bundle {p.bundle} ({len(st.variants or [])} variants)"
    if p.bundle.exists():
        shutil.rmtree(p.bundle)  # a bundle that cannot be read: make it again
    for made_from_it in ("evaluate.json", "runtime_bench.json", p.profile_path.name):
        (p.cache / made_from_it).unlink(missing_ok=True)
    partial = p.bundle.with_name("bundle.partial")
    with progress_bars() as bars:  # on standard error
        compress_request(replace(request, out=partial), RichReporter(bars))
    os.replace(partial, p.bundle)
    st.variants = variants_from_bundle(p.bundle)
    return f"bundle {p.bundle} ({len(st.variants)} variants)"


COMPRESS_ALWAYS = ("out", "model", "data", "profile", "seed")


def _cached_json(st: DemoState, step: str, artifact: str, make: Callable[[], Any]) -> Any:
    """The cached ``artifact``, or ``make()``'s data written there."""
    path = st.plan.cache / artifact
    if path.is_file():
        st.cached[step] = True
        return json.loads(path.read_text(encoding="utf-8"))
    data = make()
    _write_json(path, data)
    return data


def step_evaluate(st: DemoState) -> str:
    """Score every pattern set of the bundle (``evaluate_bundle``, cached as
    ``evaluate.json``); each check is shown, a failing one with what it means."""
    from lab.compression.evaluation import check_line, evaluate_bundle

    p = st.plan
    words = ["rt3lab", "evaluate", "--bundle", str(p.shown_bundle), "--json", "--per-sequence"]
    st.commands["evaluate.json"] = shlex.join(words)
    data = _cached_json(
        st,
        "evaluate",
        "evaluate.json",
        lambda: evaluate_bundle(p.bundle, device="auto").to_dict(per_sequence=True),
    )
    checks = data.get("checks", {})
    for name, ok in checks.items():
        st.echo("    " + check_line(name, ok))
    if not all(checks.values()):
        st.echo(
            "    (the checks are of the bundle, which the demo caches: `rt3lab demo --fresh` "
            "compresses and measures it again)"
        )
    n = sum(1 for s in data.get("sets", []) if s.get("name") != "dense")
    return f"{n} pattern sets scored"


def bench_options(p: DemoPlan) -> RuntimeBenchOptions:
    """The demo's ``RuntimeBenchOptions``: the full bench, or (``--reduced``) fewer
    repetitions and no anchors or per-layer times."""
    from lab.bench.runtime import RuntimeBenchOptions

    reduced = dict(rounds=3, per_round=2, switch_reps=200, anchors=False, layers=False)
    return RuntimeBenchOptions(bundle=p.bundle, **(reduced if p.reduced else {}))


def step_bench(st: DemoState) -> str:
    """Benchmark the reconfigurable runtime on this host (``bench_runtime``, cached as
    ``runtime_bench.json``)."""
    from lab.bench.runtime import bench_runtime

    options = bench_options(st.plan)
    shown = replace(options, bundle=st.plan.shown_bundle)
    st.commands["runtime_bench.json"] = command_line(
        "rt3lab bench runtime", shown, always=("bundle",), tail=("--json",)
    )
    data = _cached_json(
        st,
        "bench runtime",
        "runtime_bench.json",
        lambda: bench_runtime(options, st.progress).as_dict(),
    )
    sw = data.get("switch_ms_median")
    return "switch median " + (f"{sw:.3f} ms" if isinstance(sw, int | float) else "n/a")


def profile_options(p: DemoPlan, out: Path) -> ProfileOptions:
    """The demo's ``ProfileOptions``: host mode (``--power none``) for the chosen board,
    timing bounded so the demo stays within its few minutes (tighter with ``--reduced``)."""
    from lab.profiling.options import ProfileOptions
    from lab.profiling.procedure import Plan

    timing = dict(min_runs=5, max_runs=200, time_cap_s=2.0) if p.reduced else dict(time_cap_s=3.0)
    return ProfileOptions(
        bundle=p.bundle, board=p.board, out=out, power="none", plan=Plan(levels_khz=(), **timing)
    )


def step_profile(st: DemoState) -> str:
    """Write the host-calibrated profile of the chosen board (``run_session``, cached)."""
    from lab.profiling.session import run_session

    p = st.plan
    path = p.profile_path
    options = profile_options(p, path)
    shown = replace(options, bundle=p.shown_bundle, out=p.shown_profile)
    st.commands["profile.yaml"] = command_line(
        "rt3lab profile", shown, always=("bundle", "board", "power", "out")
    )
    if path.is_file():
        st.cached["host profile"] = True
        return f"cached profile {path.name}"
    partial = path.with_name(f".{path.name}.partial.yaml")
    result = run_session(replace(options, out=partial), st.progress)
    # The files beside it (every timed run, the calibration) first: the profile, moved
    # last, marks the step done.
    stem, final = partial.with_suffix("").name, path.with_suffix("").name
    for made in (result.csv_path, result.calibration_path, result.runs_path):
        if made is not None:
            os.replace(made, made.with_name(made.name.replace(stem, final, 1)))
    os.replace(partial, path)
    return f"profile {path.name}"


def demo_policies(variant_names: list[str]) -> list[str]:
    """rt3 and its baselines, then each other pattern set held fixed under the governor
    (``dvfs-only:SET``), which gives the report's accuracy-versus-life front its points.

    >>> pols = demo_policies(["pp-1", "bp", "dense"])
    >>> pols[:3], pols[-1], len(pols)
    (['rt3', 'dense-max', 'dvfs-only:bp'], 'dvfs-only:pp-1', 7)
    """
    from simulator import headline_policies

    head = headline_policies(variant_names)
    return [*head, *(f"dvfs-only:{n}" for n in variant_names if f"dvfs-only:{n}" not in head)]


def step_simulate(st: DemoState) -> str:
    """Simulate rt3 and every baseline on the host-calibrated profile; write the run."""
    from device_profiles import load_profile
    from lab.profiling.session import calibration_path, runs_csv_path
    from simulator import headline_workload, simulate, write_run

    p = st.plan
    profile = load_profile(p.profile_path)
    variants = st.variants or []
    workload = headline_workload(profile, p.workload)
    policies = demo_policies([v.name for v in variants])
    results = [
        simulate(profile, policy=pol, variants=variants, workload=workload) for pol in policies
    ]
    if p.run_dir.exists():
        shutil.rmtree(p.run_dir)
    write_run(p.run_dir, results)
    shutil.copy(p.profile_path, p.run_dir / "profile.yaml")
    for made in (runs_csv_path(p.profile_path), calibration_path(p.profile_path)):
        if made.is_file():  # beside the run's profile.yaml: its timed runs read back from there
            shutil.copy(made, p.run_dir / made.name.replace(p.profile_path.stem, "profile", 1))
    for artifact in ("evaluate.json", "runtime_bench.json"):
        shutil.copy(p.cache / artifact, p.run_dir / artifact)
    prof, bundle = p.shown_profile, p.shown_bundle
    st.commands["results.json"] = (
        f"simulator.simulate(load_profile('{prof}'), policy=P, "
        f"variants=variants_from_bundle('{bundle}'), workload='{workload}') for P in "
        f"{policies} (as `rt3lab simulate --profile {shlex.quote(str(prof))} --bundle "
        f"{shlex.quote(str(bundle))} --workload {workload} --compare`)"
    )
    _write_json(p.run_dir / "commands.json", st.commands)
    from lab.demo.docs import host_info

    load = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    _write_json(p.run_dir / "host.json", {**host_info(), "load_average": load})
    keep_bundle(p)
    st.results = results
    st.workload = workload
    return f"{len(results)} policies simulated ({workload})"


def _cached_work(st: DemoState, step: str, done: Path, make: Callable[[], Any]) -> Any:
    """The JSON ``done`` (the last file a study-like step writes in its own directory),
    or, after removing what a step cut short left there, ``make()``'s, which writes it;
    copied to the run directory either way."""
    if done.is_file():
        doc = json.loads(done.read_text(encoding="utf-8"))
        st.cached[step] = True
    else:
        if done.parent.exists():  # cut short: its partial files are not a result
            shutil.rmtree(done.parent)
        doc = make()
    shutil.copy(done, st.plan.run_dir / done.name)
    return doc


INTERVAL_RESAMPLES = 200
# Bundle replicas pooled into the intervals: the bundle compressed again from a latency
# table measured anew (the one source of run-to-run variation of compress).
REPLICAS = 2
REPLICAS_REDUCED = 1


def step_replicas(st: DemoState) -> str:
    """Replicas of the bundle (``lab.study.replicas.bundle_replicas``: a latency table
    measured anew, the deadlines by the bundle's rule on it, the search re-run, the sets
    re-scored, re-timed and simulated), cached; ``replicas.json`` goes to the run
    directory."""
    from lab.study.replicas import REPLICAS_FILE, bundle_replicas

    p = st.plan
    work = p.cache / "replicas"
    n = REPLICAS_REDUCED if p.reduced else REPLICAS
    doc = _cached_work(
        st, "replicas", work / REPLICAS_FILE,
        lambda: bundle_replicas(p.bundle, n, work, in_process=p.reduced,
                                resamples=MAP_RESAMPLES, say=st.progress),
    )  # fmt: skip
    st.commands[REPLICAS_FILE] = (
        f"lab.study.replicas.bundle_replicas('{p.shown_bundle}', {n}, DIR, "
        f"in_process={p.reduced}, resamples={MAP_RESAMPLES})"
    )
    _write_json(p.run_dir / "commands.json", st.commands)
    st.replicas = doc
    sets = [
        "/".join(s["name"] for s in sorted(r["sets"], key=lambda s: -s["freq_khz"]))
        for r in doc["replicas"]
    ]
    return f"{len(sets)} replica(s) of the bundle, sets {'; '.join(sets)}"


def step_intervals(st: DemoState) -> str:
    """The uncertainty of the headline: ``pooled_intervals`` over the demo's bundle (the
    profile's timed runs, ``profile-BOARD.runs.csv``, and the sets' per-sequence accuracies,
    ``evaluate.json``) and its replicas (``replicas.json``), every simulated policy;
    written to the run directory's ``intervals.json``."""
    from lab.profiling.samples import ProfileSamplesError, read_latency_samples
    from lab.study.intervals import demo_member, pooled_intervals
    from lab.study.replicas import replica_members

    p = st.plan
    try:
        runs = read_latency_samples(p.profile_path)
    except ProfileSamplesError as exc:
        st.echo(f"    latencies held fixed: {exc}")
        runs = {}
    evaluation = json.loads((p.cache / "evaluate.json").read_text(encoding="utf-8"))
    policies = [r.policy for r in st.results or []]
    workload = st.workload or p.workload
    own = demo_member("the demo's bundle", p.profile_path, st.variants, evaluation, runs,
                      workload)  # fmt: skip
    members = [own, *replica_members(st.replicas or {}, p.workload)]
    data = pooled_intervals(members, policies, n=INTERVAL_RESAMPLES, seed=p.seed)
    _write_json(p.run_dir / "intervals.json", data)
    st.commands["intervals.json"] = (
        f"lab.study.intervals.pooled_intervals([demo_member('the demo's bundle', "
        f"'{p.shown_profile}', variants_from_bundle(...), evaluate.json, "
        f"read_latency_samples('{p.shown_profile}'), '{st.workload}'), "
        f"*replica_members(replicas.json, '{p.workload}')], results.json's policies, "
        f"n={INTERVAL_RESAMPLES}, seed={p.seed})"
    )
    _write_json(p.run_dir / "commands.json", st.commands)
    for w in data["warnings"]:
        st.echo(f"    warning: {w}")
    st.intervals = data
    return (
        f"{data['resamples']} resamples over {data['bundles']} bundles of "
        f"{len(data['latency_resampled'])} set-level latencies and "
        f"{len(data['accuracy_resampled'])} sets' test sequences"
    )


# The demo's deadline map: a small `rt3lab study deadlines` (the full one has 8 points).
MAP_POINTS = 4
MAP_POINTS_REDUCED = 3
MAP_RESAMPLES = 100


def step_deadline_map(st: DemoState) -> str:
    """A small deadline map of the bundle (``lab.study.deadline_study``: the sets searched
    again, re-scored and re-timed at each top-level deadline, every policy simulated with
    intervals), cached; ``deadlines.json`` goes to the run directory, where the report
    reads it."""
    from lab.study.deadlines import STUDY_FILE, DeadlineStudyOptions, deadline_study

    p = st.plan
    work = p.cache / "deadlines"
    points = MAP_POINTS_REDUCED if p.reduced else MAP_POINTS
    options = DeadlineStudyOptions(
        p.bundle, points, work, in_process=p.reduced, resamples=MAP_RESAMPLES
    )
    doc = _cached_work(
        st, "deadline map", work / STUDY_FILE, lambda: deadline_study(options, say=st.progress)
    )
    st.commands[STUDY_FILE] = (
        f"rt3lab study deadlines --bundle {shlex.quote(str(p.shown_bundle))} --points "
        f"{points} --resamples {MAP_RESAMPLES} --out DIR" + (" --in-process" if p.reduced else "")
    )
    _write_json(p.run_dir / "commands.json", st.commands)
    st.deadline_map = doc
    life = doc["summary"]["battery_life_ranges_ms"]
    tops = [pt["top_deadline_ms"] for pt in doc["points"]]
    return (
        f"{len(tops)} top-level deadlines {min(tops):.3g}-{max(tops):.3g} ms; switching buys "
        f"battery life at {len(life)} range(s) of them"
    )


def keep_bundle(p: DemoPlan) -> None:
    """``OUT/bundle``, a stable path to the demo's bundle (the README's tour): a link to
    the cached bundle, or with ``fresh`` (whose cache is removed) a copy of it."""
    link = p.out / "bundle"
    if link.is_symlink():
        link.unlink()
    if p.fresh:
        if link.exists():
            shutil.rmtree(link)
        shutil.copytree(p.bundle, link)
    elif not link.exists():
        link.symlink_to(p.bundle.resolve(), target_is_directory=True)


def step_report(st: DemoState) -> str:
    """Write the HTML report and the Markdown summary."""
    from reports import build_report

    files = build_report(st.plan.run_dir, st.plan.report_dir, overwrite=True)
    st.report_html = files.html
    return f"report {files.html}"


STEP_FUNCS: dict[str, Callable[[DemoState], str]] = {
    "corpus": step_corpus,
    "compress": step_compress,
    "evaluate": step_evaluate,
    "bench runtime": step_bench,
    "host profile": step_profile,
    "simulate": step_simulate,
    "replicas": step_replicas,
    "intervals": step_intervals,
    "deadline map": step_deadline_map,
    "report": step_report,
}


def run_demo(
    p: DemoPlan,
    echo: Callable[[str], None] = print,
    progress: Callable[[str], None] | None = None,
) -> DemoState:
    """Run every step in order; ``echo`` receives one line per step (and the evaluation's
    checks), ``progress`` the steps' own progress lines (default: dim, on standard error)."""
    p.out.mkdir(parents=True, exist_ok=True)
    p.cache.mkdir(parents=True, exist_ok=True)
    with cache_lock(p.cache, echo):
        st = DemoState(p, echo, progress or _stderr_lines())
        for i, name in enumerate(STEPS, 1):
            echo(f"[{i}/{len(STEPS)}] {name} ...")
            t0 = time.perf_counter()
            detail = STEP_FUNCS[name](st)
            tag = " (cached)" if st.cached.get(name) else ""
            dt = time.perf_counter() - t0
            echo(f"[{i}/{len(STEPS)}] {name}: {detail}{tag} in {dt:.1f} s")
    return st


def _stderr_lines() -> Callable[[str], None]:
    from termout import console

    err = console(stderr=True)
    return lambda m: err.print(m, style="dim", markup=False, highlight=False)


@contextlib.contextmanager
def cache_lock(cache: Path, echo: Callable[[str], None] = print) -> Iterator[None]:
    """Hold ``cache/demo.lock`` (an OS file lock, released when the process ends, even when
    killed): another demo on the same cache waits, saying so, instead of colliding."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(cache / "demo.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        echo(f"waiting for another demo using {cache} (lock {lock.lock_file}) ...")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def headline_rows(results: list[Any]) -> list[dict[str, Any]]:
    """The headline table's rows from simulation results (on-time accounting)."""
    return [
        {
            "policy": r.policy,
            "battery_life_h": r.battery_life_h,
            "on_time_inferences": r.on_time_inferences,
            "missed_inferences": r.missed_inferences,
            "inferences": r.inferences,
            "mean_accuracy": r.mean_accuracy,
            "switches": r.switches,
        }
        for r in results
    ]


@app.command()
def demo(
    out: Path = typer.Option(Path("rt3lab-out"), "--out", help="Where the demo writes."),
    board: str = typer.Option(
        "rt3-paper", "--board", help="The board whose host-calibrated profile is simulated."
    ),
    reduced: bool = typer.Option(
        False, "--reduced", help="A much smaller compression budget (for tests and smoke runs)."
    ),
    workload: str = typer.Option(
        "periodic",
        "--workload",
        help=f"{spec_forms()}; periodic alone: one request per top-level deadline.",
    ),
    as_json: bool = typer.Option(
        False,
        "--json",
        help="Print only the headline JSON on stdout (progress and the checks go to stderr).",
    ),
    docs: Path = typer.Option(
        None,
        "--docs",
        help="Also copy the headline JSON and battery-life figure here "
        "(demo-headline.json, demo-battery-life.png) for the README.",
    ),
    fresh: bool = typer.Option(
        False,
        "--fresh",
        help="Ignore every cache: run on a new, empty temporary cache root (trained models, "
        "corpora, native builds, the demo's artefacts), removed when the demo ends, so "
        "nothing cached is reused and nothing is left behind; the bundle is copied to "
        "OUT/bundle.",
    ),
) -> None:
    """Run the lab end to end on built-in defaults and print the headline table."""
    from device_profiles import load_profile
    from lab.demo.docs import headline
    from simulator import headline_workload
    from simulator.workload import parse_workload
    from termout import console as termout_console

    prof = load_profile(board)  # a bad board name is bad input: fail before any work
    parse_workload(headline_workload(prof, workload))  # so is a bad workload
    console = termout_console(stderr=as_json)
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if fresh:
            stack.enter_context(fresh_cache())
        if as_json:  # stdout holds the JSON alone: anything a step prints goes to stderr
            stack.enter_context(contextlib.redirect_stdout(sys.stderr))
        st = run_demo(
            plan(out, board, reduced, workload=workload, fresh=fresh),
            echo=lambda s: console.print(s, highlight=False),
        )
    results = st.results or []
    elapsed = time.perf_counter() - t0
    data = headline(results, board, st.workload or workload, elapsed, st.intervals, st.deadline_map)
    _write_json(out / "headline.json", data)
    if docs is not None:
        docs.mkdir(parents=True, exist_ok=True)
        _write_json(docs / "demo-headline.json", data)
        fig = st.plan.report_dir / "figures" / "battery_life.png"
        if fig.is_file():
            shutil.copy(fig, docs / "demo-battery-life.png")
    if as_json:
        typer.echo(strict_json.dumps(data, indent=2))
        return
    _print_headline(console, data, results, board)
    console.print(f"report: {st.report_html}")
    console.print(f"summary: {st.plan.report_dir / 'report.md'}")
    console.print(f"headline JSON: {out / 'headline.json'}")
    console.print(f"run directory: {st.plan.run_dir}; done in {time.perf_counter() - t0:.1f} s")


def _print_headline(console: Any, data: dict[str, Any], results: list[Any], board: str) -> None:
    """The headline table (rt3 and its baselines) and rt3's gains."""
    from rich.table import Table

    from lab.demo.docs import gain_of, interval_lines
    from simulator import BASELINES

    table = Table(
        title=f"rt3lab demo: rt3 and its baselines on the host-calibrated {board} profile\n"
        f"{data['workload_label']}"
    )
    cols = ("policy", "battery life (h)", "on-time inferences", "missed", "accuracy")
    for col in cols:
        table.add_column(col, justify="right" if col != "policy" else "left", no_wrap=True)
    # The terminal shows rt3 and its baselines; the report also has each set held fixed.
    shown = {"rt3", *BASELINES}
    for r in headline_rows([x for x in results if x.policy in shown]):
        acc = r["mean_accuracy"]
        table.add_row(
            r["policy"],
            f"{r['battery_life_h']:.3f}",
            f"{r['on_time_inferences']:,}",
            f"{r['missed_inferences']:,}",
            "n/a" if acc is None else f"{acc:.4f}",
        )
    console.print(table)
    for g in data["gains"]:
        console.print("rt3 " + gain_of(g).sentence(), highlight=False)
    for line in interval_lines(data):
        console.print(line, highlight=False, markup=False)
