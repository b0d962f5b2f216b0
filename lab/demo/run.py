"""``rt3lab demo``: the main job, end to end on built-in defaults.

Steps: build the built-in corpus; train and compress the RT3 Transformer (``--quick``);
score every pattern set (``rt3lab evaluate``); benchmark the runtime on this host
(``rt3lab bench runtime``); write the host-calibrated profile of the chosen board
(``rt3lab profile --power none``); simulate every policy; write the run directory and the
report. Each step calls the owning package's command in-process, exactly as a user would
type it, and the command lines are recorded in the run's ``commands.json``.

Expensive steps are cached under ``$RT3LAB_CACHE`` (default ``~/.cache/rt3lab``) in
``demo/<key>/``, keyed by the budget, the host and the code that made them (a fingerprint
of the ``lab`` and ``device_profiles`` sources), so a second run only simulates and
writes the report, and a run on changed code never reuses figures the old code measured.
Two demos sharing a cache take turns: each holds ``demo/<key>/demo.lock`` while it runs, so
the second waits (and says so) and then finds the first one's artefacts cached.
A piece of rt3lab the demo needs that is not there fails with a message naming it;
nothing is faked.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import typer

from contracts.cache import cache_root

app = typer.Typer()

STEPS = (
    "corpus",
    "compress",
    "evaluate",
    "bench runtime",
    "host profile",
    "simulate",
    "report",
)
DEMO_VERSION = 1  # bump when the demo's cached artefacts change meaning


class DemoUnavailable(RuntimeError):
    """A piece of rt3lab the demo needs is not available; the message names it."""


class DemoStepFailed(RuntimeError):
    """A step's command failed; the message names the step and the command line."""


@dataclass(frozen=True)
class DemoPlan:
    """Where the demo writes and caches, and what it runs."""

    out: Path
    board: str
    reduced: bool
    cache: Path
    seed: int = 0
    workload: str = "periodic"

    @property
    def bundle(self) -> Path:
        """The cached bundle directory."""
        return self.cache / "bundle"

    @property
    def run_dir(self) -> Path:
        """The run directory the demo writes."""
        return self.out / "run"

    @property
    def report_dir(self) -> Path:
        """Where the report goes."""
        return self.out / "report"


def plan(
    out: Path, board: str, reduced: bool, seed: int = 0, workload: str = "periodic"
) -> DemoPlan:
    """The demo's plan; the cache key covers everything the cached artefacts depend on.

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
    return DemoPlan(out, board, reduced, cache_root() / "demo" / key, seed, workload)


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


# --- running other packages' commands in-process -----------------------------------------


def _root_command() -> Any:
    from lab.cli import build_app

    return typer.main.get_command(build_app())


def _lookup(root: Any, path: list[str]) -> Any | None:
    cmd = root
    for name in path:
        # typer vendors its own click: look for a group by its shape, not its class.
        if not isinstance(getattr(cmd, "commands", None), dict):
            return None
        cmd = cmd.commands.get(name)
        if cmd is None:
            return None
    return cmd


def _options(cmd: Any) -> set[str]:
    return {
        opt
        for p in cmd.params
        for opt in [*getattr(p, "opts", []), *getattr(p, "secondary_opts", [])]
    }


def require(root: Any, path: list[str], options: tuple[str, ...], owner: str) -> Any:
    """The command at ``path``, or ``DemoUnavailable`` naming what is missing."""
    cmd = _lookup(root, path)
    line = "rt3lab " + " ".join(path)
    if cmd is None:
        raise DemoUnavailable(
            f"`{line}` is not available in this rt3lab yet ({owner}); the demo cannot "
            "continue without it"
        )
    missing = [o for o in options if o not in _options(cmd)]
    if missing:
        raise DemoUnavailable(
            f"`{line}` has no option {', '.join(missing)} ({owner}); the demo needs it"
        )
    return cmd


def run_command(root: Any, args: list[str], capture: bool = False) -> str:
    """Run ``rt3lab ARGS`` in this process; returns stdout when ``capture``."""
    line = "rt3lab " + " ".join(args)
    buf = io.StringIO()
    redirect = contextlib.redirect_stdout(buf) if capture else contextlib.nullcontext()
    try:
        with redirect:
            code = root.main(args=args, prog_name="rt3lab", standalone_mode=False)
    except Exception as exc:
        # typer's vendored click: Exit carries a status, usage errors a message.
        if type(exc).__name__ == "Exit" and hasattr(exc, "exit_code"):
            code = exc.exit_code
        elif hasattr(exc, "format_message"):
            raise DemoStepFailed(f"`{line}`: {exc.format_message()}") from None
        else:
            raise
    if isinstance(code, int) and code != 0:
        raise DemoStepFailed(f"`{line}` exited with status {code}")
    return buf.getvalue()


def _json_out(text: str, line: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        start = text.find("{")
        try:
            return json.loads(text[start:]) if start >= 0 else None
        except json.JSONDecodeError:
            raise DemoStepFailed(f"`{line}` did not print JSON") from None


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# --- the steps ---------------------------------------------------------------------------


@dataclass
class DemoState:
    """What the steps hand to each other."""

    plan: DemoPlan
    root: Any
    commands: dict[str, str]
    cached: dict[str, bool]
    results: list[Any] | None = None
    report_html: Path | None = None
    workload: str | None = None


def step_corpus(st: DemoState) -> str:
    """Build (or load the cached) built-in corpus."""
    try:
        from lab.model.data import load_lm_corpus
    except ImportError as exc:
        raise DemoUnavailable(f"lab.model.data.load_lm_corpus is not available ({exc})") from None
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


def _compress_args(st: DemoState, cmd: Any) -> list[str]:
    p = st.plan
    args = [
        "compress",
        "--model",
        "rt3-transformer",
        "--data",
        "builtin",
        "--profile",
        p.board,
        "--out",
        str(p.bundle),
        "--seed",
        str(p.seed),
    ]
    if "--seed" not in _options(cmd):
        args = args[:-2]
    if p.reduced and "--budget" in _options(cmd):
        args += ["--budget", "test"]
    else:
        args += ["--quick"]
        if p.reduced:
            args += ["--episodes", "2"]
    return args


def step_compress(st: DemoState) -> str:
    """Train and compress the RT3 Transformer into a bundle (cached)."""
    cmd = require(
        st.root,
        ["compress"],
        ("--model", "--data", "--profile", "--out", "--quick", "--episodes"),
        "the compression package",
    )
    args = _compress_args(st, cmd)
    st.commands["bundle"] = "rt3lab " + " ".join(args)
    if (st.plan.bundle / "bundle.json").is_file():
        st.cached["compress"] = True
        return f"cached bundle {st.plan.bundle}"
    if st.plan.bundle.exists():
        shutil.rmtree(st.plan.bundle)  # an interrupted earlier run: start it again
    partial = st.plan.bundle.with_name("bundle.partial")
    args[args.index("--out") + 1] = str(partial)
    run_command(st.root, args)
    os.replace(partial, st.plan.bundle)
    return f"bundle {st.plan.bundle}"


def _cached_json(st: DemoState, name: str, artifact: str, args: list[str]) -> Any:
    path = st.plan.cache / artifact
    st.commands[artifact] = "rt3lab " + " ".join(args)
    if path.is_file():
        st.cached[name] = True
        return json.loads(path.read_text(encoding="utf-8"))
    data = _json_out(run_command(st.root, args, capture=True), st.commands[artifact])
    _write_json(path, data)
    return data


def step_evaluate(st: DemoState) -> str:
    """Score every pattern set of the bundle (``rt3lab evaluate --json``)."""
    require(st.root, ["evaluate"], ("--bundle", "--json"), "the compression package")
    data = _cached_json(
        st, "evaluate", "evaluate.json", ["evaluate", "--bundle", str(st.plan.bundle), "--json"]
    )
    n = len(data.get("sets", [])) if isinstance(data, dict) else len(data or [])
    return f"{n} pattern sets scored"


def step_bench(st: DemoState) -> str:
    """Benchmark the reconfigurable runtime on this host (``rt3lab bench runtime``)."""
    cmd = require(st.root, ["bench", "runtime"], ("--bundle", "--json"), "the runtime package")
    args = ["bench", "runtime", "--bundle", str(st.plan.bundle)]
    if st.plan.reduced:
        # Fewer repetitions; the full bench (anchors, per-layer times) is for the full demo.
        short = (("--rounds", "3"), ("--per-round", "2"), ("--switch-reps", "200"))
        args += [x for opt, v in short if opt in _options(cmd) for x in (opt, v)]
        args += [o for o in ("--no-anchors", "--no-layers") if o in _options(cmd)]
    data = _cached_json(st, "bench runtime", "runtime_bench.json", [*args, "--json"])
    sw = data.get("switch_ms_median") if isinstance(data, dict) else None
    return "switch median " + (f"{sw:.3f} ms" if isinstance(sw, int | float) else "n/a")


def step_profile(st: DemoState) -> str:
    """Write the host-calibrated profile of the chosen board (``rt3lab profile``)."""
    cmd = require(
        st.root,
        ["profile"],
        ("--bundle", "--board", "--power", "--out"),
        "the profiling package",
    )
    path = st.plan.cache / f"profile-{st.plan.board}.yaml"
    args = [
        "profile",
        "--bundle",
        str(st.plan.bundle),
        "--board",
        st.plan.board,
        "--power",
        "none",
        "--out",
        str(path),
    ]
    # Bounded timing so the demo stays within its few minutes; the CI stop still applies.
    bounds = (
        (("--min-runs", "5"), ("--max-runs", "200"), ("--time-cap", "2"))
        if st.plan.reduced
        else (("--time-cap", "3"),)
    )
    extra = [x for opt, v in bounds if opt in _options(cmd) for x in (opt, v)]
    args = args[:-2] + extra + args[-2:]
    st.commands["profile.yaml"] = "rt3lab " + " ".join(args)
    if path.is_file():
        st.cached["host profile"] = True
        return f"cached profile {path.name}"
    partial = path.with_name(f".{path.name}.partial.yaml")
    args[-1] = str(partial)
    run_command(st.root, args, capture=True)
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
    from simulator import headline_workload, simulate, variants_from_bundle, write_run

    p = st.plan
    profile_path = p.cache / f"profile-{p.board}.yaml"
    profile = load_profile(profile_path)
    variants = variants_from_bundle(p.bundle)
    workload = headline_workload(profile, p.workload)
    policies = demo_policies([v.name for v in variants])
    results = [
        simulate(profile, policy=pol, variants=variants, workload=workload) for pol in policies
    ]
    if p.run_dir.exists():
        shutil.rmtree(p.run_dir)
    write_run(p.run_dir, results)
    shutil.copy(profile_path, p.run_dir / "profile.yaml")
    for artifact in ("evaluate.json", "runtime_bench.json"):
        shutil.copy(p.cache / artifact, p.run_dir / artifact)
    sim = (
        f"simulator.simulate(load_profile('{profile_path}'), policy=P, "
        f"variants=variants_from_bundle('{p.bundle}'), workload='{workload}') for P in "
        f"{policies} (as `rt3lab simulate --profile {profile_path} --bundle {p.bundle} "
        f"--workload {workload} --compare`)"
    )
    st.commands["results.json"] = sim
    _write_json(p.run_dir / "commands.json", st.commands)
    from lab.demo.docs import host_info

    load = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    _write_json(p.run_dir / "host.json", {**host_info(), "load_average": load})
    link = p.out / "bundle"  # a stable path to the demo's bundle (the README's tour)
    if link.is_symlink():
        link.unlink()
    if not link.exists():
        link.symlink_to(p.bundle.resolve(), target_is_directory=True)
    st.results = results
    st.workload = workload
    return f"{len(results)} policies simulated ({workload})"


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
    "report": step_report,
}


def run_demo(p: DemoPlan, echo: Callable[[str], None] = print) -> DemoState:
    """Run every step in order; ``echo`` receives one line per step."""
    p.out.mkdir(parents=True, exist_ok=True)
    p.cache.mkdir(parents=True, exist_ok=True)
    with cache_lock(p.cache, echo):
        st = DemoState(p, _root_command(), {}, {})
        for i, name in enumerate(STEPS, 1):
            echo(f"[{i}/{len(STEPS)}] {name} ...")
            t0 = time.perf_counter()
            detail = STEP_FUNCS[name](st)
            tag = " (cached)" if st.cached.get(name) else ""
            dt = time.perf_counter() - t0
            echo(f"[{i}/{len(STEPS)}] {name}: {detail}{tag} in {dt:.1f} s")
    return st


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
        help="periodic (one request per top-level deadline), periodic:HZ, continuous "
        "(back to back), poisson:HZ or trace:FILE.",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print only the headline JSON (progress goes to stderr)."
    ),
    docs: Path = typer.Option(
        None,
        "--docs",
        help="Also copy the headline JSON and battery-life figure here "
        "(demo-headline.json, demo-battery-life.png) for the README.",
    ),
) -> None:
    """Run the lab end to end on built-in defaults and print the headline table."""
    from rich.table import Table

    from device_profiles import load_profile
    from lab.demo.docs import headline
    from simulator import BASELINES, headline_workload
    from simulator.workload import parse_workload
    from termout import console as termout_console

    prof = load_profile(board)  # a bad board name is bad input: fail before any work
    parse_workload(headline_workload(prof, workload))  # so is a bad workload
    console = termout_console(stderr=as_json)
    t0 = time.perf_counter()
    st = run_demo(
        plan(out, board, reduced, workload=workload),
        echo=lambda s: console.print(s, highlight=False),
    )
    results = st.results or []
    data = headline(results, board, st.workload or workload, time.perf_counter() - t0)
    _write_json(out / "headline.json", data)
    if docs is not None:
        docs.mkdir(parents=True, exist_ok=True)
        _write_json(docs / "demo-headline.json", data)
        fig = st.plan.report_dir / "figures" / "battery_life.png"
        if fig.is_file():
            shutil.copy(fig, docs / "demo-battery-life.png")
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
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
    from reports.verdict import Gain

    for g in data["gains"]:
        console.print("rt3 " + Gain(**g).sentence(), highlight=False)
    console.print(f"report: {st.report_html}")
    console.print(f"summary: {st.plan.report_dir / 'report.md'}")
    console.print(f"headline JSON: {out / 'headline.json'}")
    console.print(f"run directory: {st.plan.run_dir}; done in {time.perf_counter() - t0:.1f} s")
