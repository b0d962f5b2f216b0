"""Issue 33: every command that has ``--json`` prints JSON alone on stdout, from a cold cache.

Each command runs as a real ``rt3lab`` process with ``RT3LAB_CACHE`` on an empty folder and
``HOME`` on another (so ``~/.cache`` is not used), on the smallest honest input: a
synthetic bundle, a bundle compressed here with the test budget, shipped profiles, a fake
powercap tree for the meter, a trace that meter wrote. Its stdout must parse as strict
JSON (no ``NaN``/``Infinity``, no duplicate key) and hold nothing else: progress and tables
go to stderr. ``test_every_json_command_is_tested`` walks the real typer app, so a new
``--json`` command without a case here fails. The demo's case is ``tests/test_demo.py``
(its module fixture runs ``demo --reduced --json`` from an empty cache).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import pytest
import yaml

from contracts.strict_json import loads

RT3LAB = str(Path(sys.executable).with_name("rt3lab"))
TESTS = Path(__file__).parent
# Commands tested elsewhere in the same way: (command, test file, test name in it).
ELSEWHERE = {
    "demo": ("test_demo.py", "test_demo_json_prints_the_headline_per_policy"),
}


class Inputs:
    """The inputs, each made once per module on first use (outside the commands' caches)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @cached_property
    def synthetic(self) -> Path:
        """A random-weight bundle with nested sets (seconds to write)."""
        from lab.runtime.synthetic import synthetic_bundle

        return synthetic_bundle(self.root / "synthetic")

    @cached_property
    def corpus(self) -> Path:
        """A tiny WikiText-2-shaped corpus."""
        sys.path.insert(0, str(TESTS / "lab" / "compression"))
        from bundle_builder import write_corpus

        return write_corpus(self.root / "wikitext2")

    @cached_property
    def compressed(self) -> Path:
        """A bundle from the real pipeline at the test budget (its own cache, not the CLI's)."""
        from device_profiles import load_profile
        from lab.compression.budget import TEST
        from lab.compression.options import CompressOptions
        from lab.compression.pipeline import compress, load_lm_data

        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("RT3LAB_CACHE", str(self.root / "build-cache"))
            data = load_lm_data(f"wikitext2:{self.corpus}", TEST)
            opts = CompressOptions("rt3-paper", self.root / "bundle", TEST, seed=1, threads=1)
            compress(data, load_profile("rt3-paper"), opts)
        return self.root / "bundle"

    @cached_property
    def sweep_config(self) -> Path:
        """Two cells of a sweep on tiny batteries."""
        path = self.root / "sweep.yaml"
        cells = {"profiles": ["rt3-paper"], "policies": ["rt3", "dense-max"]}
        path.write_text(yaml.safe_dump({**cells, "capacities_mah": [0.2]}))
        return path

    @cached_property
    def trace(self) -> Path:
        """A trace `meter record` wrote from a fake powercap tree."""
        out = self.root / "trace" / "rapl.csv"
        run_cold(rapl_record(self.root / "trace", out).split(), self.root / "trace" / "cold")
        return out


def rapl_record(root: Path, out: Path) -> str:
    """``meter record`` of 0.3 s into ``out`` from a fake powercap tree under ``root/sys``."""
    sys.path.insert(0, str(TESTS / "power_meter"))
    from sensor_fakes import rapl_tree

    rapl_tree(root / "sys")
    return f"meter record --driver rapl --port {root / 'sys'} --out {out} --poll-interval 0.05 \
--duration 0.3 --json"


def run_cold(argv: list[str], tmp: Path) -> subprocess.CompletedProcess:
    """``rt3lab ARGV`` in its own process on an empty cache and an empty HOME (a meter
    record on a fake powercap tree has a package drawing 5 W while it runs)."""
    sys.path.insert(0, str(TESTS / "power_meter"))
    from sensor_fakes import Package

    for d in ("cache", "home"):
        (tmp / d).mkdir(parents=True, exist_ok=True)
        assert not any((tmp / d).iterdir())
    env = {**os.environ, "RT3LAB_CACHE": str(tmp / "cache"), "HOME": str(tmp / "home")}
    env.pop("XDG_CACHE_HOME", None)
    # zig's own cache of its C library builds is the compiler's, not rt3lab's: kept warm
    # (make test-setup warms it), or a cross-build of musl alone takes a minute or two.
    env.setdefault("ZIG_GLOBAL_CACHE_DIR", str(Path.home() / ".cache" / "zig"))
    with contextlib.ExitStack() as stack:
        if argv[:4] == ["meter", "record", "--driver", "rapl"]:
            stack.enter_context(Package(Path(argv[5]) / "class/powercap", 5.0, start_uj=0))
        proc = subprocess.run([RT3LAB, *argv], env=env, capture_output=True, text=True,
                              timeout=1200, check=False)  # fmt: skip
    assert proc.returncode == 0, (argv, proc.stdout[-2000:], proc.stderr[-3000:])
    return proc


# Each case: the words after ``rt3lab`` (``--json`` included) for the inputs and a scratch dir
# (words split on spaces: pytest's temporary paths hold none).
Case = Callable[[Inputs, Path], str]
CASES: dict[str, Case] = {
    "profiles list": lambda i, t: "profiles list --json",
    "profiles show": lambda i, t: "profiles show rt3-paper --json",
    "simulate": lambda i, t: "simulate --capacity-mah 0.5 --compare --json",
    "sweep": lambda i, t: (
        f"sweep {i.sweep_config} --out {t / 'sweep'} --threads --workers 1 --json"
    ),
    "compress": lambda i, t: (
        f"compress --out {t / 'b'} --quick --episodes 1 --data "
        f"wikitext2:{i.corpus} --threads 1 --estimator op-count --device cpu --json"
    ),
    "evaluate": lambda i, t: f"evaluate --bundle {i.compressed} --threads 1 --device cpu --json",
    "profile": lambda i, t: (
        f"profile --bundle {i.synthetic} --board rt3-paper --out "
        f"{t / 'p.yaml'} --warmup 0 --min-runs 2 --max-runs 3 --time-cap 0.5 --threads 1 "
        "--json"
    ),
    "export": lambda i, t: f"export --bundle {i.synthetic} --out {t / 'x'} --json",
    "runner verify": lambda i, t: f"runner verify --bundle {i.synthetic} --json",
    "meter list": lambda i, t: "meter list --json",
    "meter record": lambda i, t: rapl_record(t, t / "r.csv"),
    "meter summary": lambda i, t: f"meter summary {i.trace} --json",
    "meter export": lambda i, t: (
        f"meter export {i.trace} --format sigrok --out {t / 't.sr'} --json"
    ),
    "study deadlines": lambda i, t: (
        f"study deadlines --bundle {i.compressed} --points 3 "
        "--in-process --workers 1 --episodes 1 --resamples 10 --json"
    ),
    "study schemes": lambda i, t: (
        f"study schemes --schemes rt3,width --budget test --data wikitext2:{i.corpus} "
        f"--out {t / 'schemes'} --resamples 10 --json"
    ),
    "bench distill": lambda i, t: (
        f"bench distill --budget test --data wikitext2:{i.corpus} --threads 1 --json"
    ),
    "cache info": lambda i, t: "cache info --json",
    "cache clear": lambda i, t: "cache clear --json",
    "bench train": lambda i, t: (
        "bench train --seconds 1 --size tiny --max-vocab 500 --eval-tokens 200 --threads 1 --json"
    ),
    "bench runtime": lambda i, t: (
        "bench runtime --synthetic rt3 --rounds 1 --per-round 1 "
        "--warmup 0 --switch-reps 2 --no-anchors --no-layers --json"
    ),
    "bench runner": lambda i, t: (
        f"bench runner --bundle {i.synthetic} --runs 1 --warmup 0 --rounds 1 --json"
    ),
    "bench search": lambda i, t: (
        f"bench search --budget test --seeds 1 --data "
        f"wikitext2:{i.corpus} --estimator op-count --json"
    ),
    "bench simulator": lambda i, t: (
        "bench simulator --repeats 1 --naive-capacity-mah 1 --agreement-capacity-mah 1 --json"
    ),
    "bench meter": lambda i, t: "bench meter --seconds 0.2 --repeat 1 --json",
    "bench sweep": lambda i, t: "bench sweep --cells 8 --workers 1 --repeats 1 --json",
    "bench startup": lambda i, t: "bench startup --runs 1 --json",
}
# Over ~20 s on 2 shared cores even at the smallest input: run with -m slow (CI runs them).
SLOW = {"compress", "study deadlines", "bench simulator", "study schemes", "bench distill"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Inputs:
    return Inputs(tmp_path_factory.mktemp("json-inputs"))


def json_commands() -> set[str]:
    """Every command of the real app with a ``--json`` option, as ``group name``."""
    import typer

    from lab.cli import build_app

    found: set[str] = set()

    def walk(cmd, path: list[str]) -> None:
        subs = getattr(cmd, "commands", None)
        if isinstance(subs, dict):
            for name, sub in subs.items():
                walk(sub, [*path, name])
        elif any("--json" in p.opts for p in cmd.params):
            found.add(" ".join(path))

    walk(typer.main.get_command(build_app()), [])
    return found


def test_every_json_command_is_tested():
    assert set(CASES) | set(ELSEWHERE) == json_commands()
    for command, (module, name) in ELSEWHERE.items():
        assert f"def {name}(" in (TESTS / module).read_text(), command


@pytest.mark.parametrize(
    "command",
    [pytest.param(c, marks=[pytest.mark.slow] if c in SLOW else []) for c in CASES],
)
def test_json_alone_on_stdout_from_a_cold_cache(command, inputs, tmp_path):
    """stdout parses whole as strict JSON: nothing printed before or after it, no NaN."""
    proc = run_cold(CASES[command](inputs, tmp_path).split(), tmp_path / "cold")
    doc = loads(proc.stdout, f"stdout of rt3lab {command}", ValueError)
    assert isinstance(doc, dict | list) and doc, proc.stdout[:500]
